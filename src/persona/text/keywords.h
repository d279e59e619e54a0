#pragma once
// Keyword extraction for a text or a group of texts (a user's, an item's, a segment's):
// TF-IDF against document frequencies of a corpus, and TextRank (PageRank over a word
// co-occurrence graph). Stop words, numbers and one-letter Latin tokens are never keywords.
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>

namespace persona::text {

struct Keyword {
  std::string word;
  double score = 0;
};

// Word document frequencies of a corpus, for the IDF part of TF-IDF keywords.
class KeywordIndex {
 public:
  void add_document(std::string_view text);
  double idf(const std::string& word) const;  // smooth idf; unseen words get the highest
  int64_t documents() const { return documents_; }
  std::string to_bytes() const;
  static KeywordIndex from_bytes(std::string_view bytes);

 private:
  absl::flat_hash_map<std::string, int32_t> df_;
  int64_t documents_ = 0;
};

// Candidate keyword tokens of a text, in order (normalised, stop words removed).
std::vector<std::string> keyword_candidates(std::string_view text);

// Top `k` by TF-IDF over all `texts` together; with no index every idf is 1.
std::vector<Keyword> tfidf_keywords(const std::vector<std::string_view>& texts, size_t k,
                                    const KeywordIndex* index = nullptr);

// Top `k` by TextRank: words co-occurring within `window` tokens are linked; scores are PageRank
// with damping 0.85, normalised so the best is 1.
std::vector<Keyword> textrank_keywords(const std::vector<std::string_view>& texts, size_t k, int window = 5);

}  // namespace persona::text
