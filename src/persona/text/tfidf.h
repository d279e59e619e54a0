#pragma once
// TF-IDF vectors over word n-grams and character n-grams, with a vocabulary fitted on a corpus.
// The features of the linear text classifier, and the weights of keyword extraction.
//
// The vocabulary is kept as the sorted 64-bit hashes (XXH3) of its features, not their text: a
// model file then holds 12 bytes per feature (hash and idf) and loads with two copies instead of
// a hash table built from millions of strings, and a lookup is a binary search. Two features
// whose hashes collide count as one, as in the hashing trick; at 64 bits that is about one pair
// in 10^7 vocabularies of a million features.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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
  SparseVector transform(const std::vector<Token>& tokens) const;  // of a text already prepared
  std::vector<SparseVector> transform_all(const std::vector<std::string>& documents, int threads = 2) const;

  // The features (before lookup) of a document, as hashes: words, bigrams and character n-grams.
  std::vector<uint64_t> feature_hashes(std::string_view document) const;
  std::vector<uint64_t> feature_hashes(const std::vector<Token>& tokens) const;

  int32_t dimension() const { return static_cast<int32_t>(idf_.size()); }
  const TfidfOptions& options() const { return options_; }
  // The feature index of a word (as the tokenizer writes it), -1 when it is not in the vocabulary.
  int32_t word_index(std::string_view word) const;

  std::string to_bytes() const;
  // Throws std::runtime_error on a truncated payload or one written by an older Persona.
  static TfidfVectorizer from_bytes(std::string_view bytes);

 private:
  int32_t index_of(uint64_t hash) const;

  TfidfOptions options_;
  std::vector<uint64_t> hashes_;  // sorted: a feature's index is its hash's position
  std::vector<float> idf_;
};

}  // namespace persona::text
