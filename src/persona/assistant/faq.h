#pragma once
// FAQ retrieval: question/answer pairs indexed so that a reworded question, in English or
// Chinese, finds the pair that answers it. Two views of each pair are fused: BM25 over stemmed
// words without stop words (exact vocabulary) and TF-IDF cosine over words and character n-grams
// (near spellings, Chinese without segmentation). Each ranks the pairs; their scores, each scaled
// by the query's best, are averaged. The cosine of the best pair says how well it matches.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <nlohmann/json.hpp>

#include "persona/text/tfidf.h"

namespace persona::assistant {

struct FaqEntry {
  std::string id, question, answer;
};

struct FaqOptions {
  double bm25_k1 = 1.2, bm25_b = 0.75;
  int question_repeats = 2;   // the question counts this many times against the answer's once
  double bm25_share = 0.5;    // weight of BM25 in the fused score (the rest: TF-IDF cosine)
  // A pair answers well enough when it shares a content word with the question (BM25 above 0:
  // stop words and shared character n-grams alone are not enough) and its cosine reaches this.
  double min_cosine = 0.3;
  nlohmann::json to_json() const;
  static FaqOptions from_json(const nlohmann::json& j);
};

struct FaqMatch {
  size_t entry = 0;
  double score = 0;   // fused, 0..1 (1: best under both views)
  double bm25 = 0, cosine = 0;
};

class FaqIndex {
 public:
  static FaqIndex build(std::vector<FaqEntry> entries, const FaqOptions& options = {});
  // The k best pairs, best first (ties by position in the FAQ).
  std::vector<FaqMatch> search(std::string_view question, size_t k = 5) const;
  // The best pair when it matches well enough (see FaqOptions::min_cosine).
  std::optional<FaqMatch> answer(std::string_view question) const;

  const FaqEntry& entry(size_t i) const { return entries_.at(i); }
  size_t size() const { return entries_.size(); }
  const FaqOptions& options() const { return options_; }

  void save(const std::string& path) const;  // model file of kind "faq-index"
  static FaqIndex load(const std::string& path);

 private:
  std::vector<std::string> bm25_terms(std::string_view text) const;
  void index_terms();

  FaqOptions options_;
  std::vector<FaqEntry> entries_;
  text::TfidfVectorizer tfidf_;
  std::vector<SparseVector> vectors_;
  // BM25 postings: term -> (entry, term frequency).
  absl::flat_hash_map<std::string, std::vector<std::pair<uint32_t, float>>> postings_;
  std::vector<float> lengths_;
  float average_length_ = 1;
};

// Reads FAQ pairs from JSON (an array of {question, answer, id?}, or {"questions": [...]}) or
// JSON Lines. Pairs without a question or an answer are errors naming the file and the pair.
std::vector<FaqEntry> read_faq_file(const std::string& path);

}  // namespace persona::assistant
