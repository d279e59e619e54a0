#include "persona/text/tfidf.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include <absl/container/flat_hash_map.h>
#include <xxhash.h>

#include "persona/core/binary_io.h"
#include "persona/core/parallel.h"
#include "persona/text/normalize.h"

namespace persona::text {
namespace {

// Feature prefixes keep words, bigrams and character n-grams apart in one vocabulary.
constexpr char kWord = '\x01', kBigram = '\x02', kChar = '\x03';
// The first four bytes of a vectoriser's payload: "TFV2" (the first layout, with feature texts,
// began with the word n-gram order, 0 to 3).
constexpr uint32_t kFormat = 0x32564654;

uint64_t feature_hash(std::string_view feature) { return XXH3_64bits(feature.data(), feature.size()); }

}  // namespace

std::vector<uint64_t> TfidfVectorizer::feature_hashes(std::string_view document) const {
  return feature_hashes(tokenize(normalize_for_analysis(document)));
}

std::vector<uint64_t> TfidfVectorizer::feature_hashes(const std::vector<Token>& tokens) const {
  std::vector<uint64_t> out;
  out.reserve(tokens.size() * 4);
  std::string buffer;
  auto add = [&](char kind, std::initializer_list<std::string_view> parts) {
    buffer.assign(1, kind);
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i) buffer += ' ';
      buffer += parts.begin()[i];
    }
    out.push_back(feature_hash(buffer));
  };
  if (options_.word_ngrams >= 1)
    for (const Token& t : tokens) add(kWord, {t.text});
  if (options_.word_ngrams >= 2)
    for (size_t i = 1; i < tokens.size(); ++i) add(kBigram, {tokens[i - 1].text, tokens[i].text});
  if (options_.word_ngrams >= 3)
    for (size_t i = 2; i < tokens.size(); ++i) add(kBigram, {tokens[i - 2].text, tokens[i - 1].text, tokens[i].text});
  if (options_.use_chars) {
    std::vector<std::string> grams;
    char_ngrams(tokens, options_.chars, grams);
    for (const auto& g : grams) add(kChar, {g});
  }
  return out;
}

void TfidfVectorizer::fit(const std::vector<std::string>& documents, int threads) {
  // Document frequencies, counted per thread and merged.
  const int t = std::max(1, threads);
  std::vector<absl::flat_hash_map<uint64_t, int32_t>> partial(static_cast<size_t>(t));
  std::vector<std::thread> pool;
  for (int k = 0; k < t; ++k)
    pool.emplace_back([&, k] {
      auto& df = partial[static_cast<size_t>(k)];
      const size_t lo = documents.size() * static_cast<size_t>(k) / static_cast<size_t>(t);
      const size_t hi = documents.size() * static_cast<size_t>(k + 1) / static_cast<size_t>(t);
      for (size_t d = lo; d < hi; ++d) {
        auto f = feature_hashes(documents[d]);
        std::sort(f.begin(), f.end());
        f.erase(std::unique(f.begin(), f.end()), f.end());
        for (uint64_t h : f) ++df[h];
      }
    });
  for (auto& th : pool) th.join();
  for (size_t k = 1; k < partial.size(); ++k)
    for (auto& [key, n] : partial[k]) partial[0][key] += n;
  // Sorted hashes make the vocabulary (and so the model) independent of thread timing.
  std::vector<std::pair<uint64_t, int32_t>> kept;
  for (auto& [key, n] : partial[0])
    if (n >= options_.min_df) kept.emplace_back(key, n);
  std::sort(kept.begin(), kept.end());
  hashes_.clear();
  idf_.clear();
  hashes_.reserve(kept.size());
  idf_.reserve(kept.size());
  const double docs = static_cast<double>(documents.size());
  for (auto& [key, n] : kept) {
    hashes_.push_back(key);
    idf_.push_back(static_cast<float>(std::log((1 + docs) / (1 + n)) + 1));
  }
}

int32_t TfidfVectorizer::index_of(uint64_t hash) const {
  const auto it = std::lower_bound(hashes_.begin(), hashes_.end(), hash);
  return it != hashes_.end() && *it == hash ? static_cast<int32_t>(it - hashes_.begin()) : -1;
}

int32_t TfidfVectorizer::word_index(std::string_view word) const {
  return index_of(feature_hash(std::string(1, kWord) + std::string(word)));
}

SparseVector TfidfVectorizer::transform(std::string_view document) const {
  return transform(tokenize(normalize_for_analysis(document)));
}

SparseVector TfidfVectorizer::transform(const std::vector<Token>& tokens) const {
  std::vector<std::pair<int32_t, float>> counts;
  for (uint64_t h : feature_hashes(tokens))
    if (const int32_t i = index_of(h); i >= 0) counts.emplace_back(i, 1.0f);
  std::sort(counts.begin(), counts.end());
  SparseVector v;
  double norm = 0;
  for (size_t i = 0; i < counts.size();) {
    size_t j = i;
    while (j < counts.size() && counts[j].first == counts[i].first) ++j;
    const double tf = static_cast<double>(j - i);
    const double w = (options_.sublinear_tf ? 1 + std::log(tf) : tf) * idf_[static_cast<size_t>(counts[i].first)];
    v.index.push_back(counts[i].first);
    v.value.push_back(static_cast<float>(w));
    norm += w * w;
    i = j;
  }
  if (norm > 0) {
    const float inv = static_cast<float>(1 / std::sqrt(norm));
    for (auto& x : v.value) x *= inv;
  }
  return v;
}

std::vector<SparseVector> TfidfVectorizer::transform_all(const std::vector<std::string>& documents,
                                                         int threads) const {
  std::vector<SparseVector> out(documents.size());
  parallel_chunks(documents.size(), threads, 256, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) out[i] = transform(documents[i]);
  });
  return out;
}

std::string TfidfVectorizer::to_bytes() const {
  ByteWriter w;
  w.put<uint32_t>(kFormat);
  w.put<int32_t>(options_.word_ngrams);
  w.put<uint8_t>(options_.use_chars);
  w.put<int32_t>(options_.chars.han_min);
  w.put<int32_t>(options_.chars.han_max);
  w.put<int32_t>(options_.chars.latin_min);
  w.put<int32_t>(options_.chars.latin_max);
  w.put<int32_t>(options_.min_df);
  w.put<uint8_t>(options_.sublinear_tf);
  w.put_vector(hashes_);
  w.put_vector(idf_);
  return std::move(w.bytes());
}

TfidfVectorizer TfidfVectorizer::from_bytes(std::string_view bytes) {
  ByteReader r(bytes);
  if (r.get<uint32_t>() != kFormat)
    throw std::runtime_error("its TF-IDF vocabulary was written by an older Persona (feature texts, not hashes): "
                             "train or build it again");
  TfidfVectorizer v;
  v.options_.word_ngrams = r.get<int32_t>();
  v.options_.use_chars = r.get<uint8_t>() != 0;
  v.options_.chars.han_min = r.get<int32_t>();
  v.options_.chars.han_max = r.get<int32_t>();
  v.options_.chars.latin_min = r.get<int32_t>();
  v.options_.chars.latin_max = r.get<int32_t>();
  v.options_.min_df = r.get<int32_t>();
  v.options_.sublinear_tf = r.get<uint8_t>() != 0;
  v.hashes_ = r.get_vector<uint64_t>();
  v.idf_ = r.get_vector<float>();
  if (v.idf_.size() != v.hashes_.size() || !std::is_sorted(v.hashes_.begin(), v.hashes_.end()))
    throw std::runtime_error("model payload is inconsistent: vocabulary and idf sizes differ");
  return v;
}

}  // namespace persona::text
