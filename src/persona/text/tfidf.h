#pragma once
// TF-IDF vectors over word n-grams and character n-grams, with a vocabulary fitted on a corpus.
// The features of the linear text classifier, and the weights of keyword extraction.
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "persona/core/sparse.h"
#include "persona/text/tokenizer.h"

namespace persona::text {

struct TfidfOptions {
  int word_ngrams = 2;  // 0: no word features; 1: words; 2: and word bigrams; 3: and trigrams
  NgramOptions chars;   // character n-grams (han_max = 0 and latin_max = 0: none)
  bool use_chars = true;
  int min_df = 2;       // a feature must occur in this many documents
  bool sublinear_tf = true;  // 1 + log(tf)
};

class TfidfVectorizer {
 public:
  TfidfVectorizer() = default;
  explicit TfidfVectorizer(TfidfOptions options) : options_(options) {}

  // Builds the vocabulary and inverse document frequencies (smooth idf, as scikit-learn).
  void fit(const std::vector<std::string>& documents, int threads = 2);
  // L2-normalised TF-IDF vector of one document. Unknown features are ignored.
  SparseVector transform(std::string_view document) const;
  std::vector<SparseVector> transform_all(const std::vector<std::string>& documents, int threads = 2) const;

  // The features (before lookup) of a document: prefixed words, bigrams and character n-grams.
  std::vector<std::string> features(std::string_view document) const;

  int32_t dimension() const { return static_cast<int32_t>(idf_.size()); }
  const TfidfOptions& options() const { return options_; }
  // Index -> feature text (for explanations and keyword listings).
  std::vector<std::string> feature_names() const;

  std::string to_bytes() const;
  static TfidfVectorizer from_bytes(std::string_view bytes);

 private:
  TfidfOptions options_;
  absl::flat_hash_map<std::string, int32_t> vocabulary_;
  std::vector<float> idf_;
};

}  // namespace persona::text
