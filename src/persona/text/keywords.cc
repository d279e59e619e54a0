#include "persona/text/keywords.h"

#include <algorithm>
#include <cmath>

#include "persona/core/binary_io.h"
#include "persona/text/normalize.h"
#include "persona/text/stopwords.h"
#include "persona/text/tokenizer.h"

namespace persona::text {
namespace {

bool keyword_like(const Token& t) {
  if (t.kind == TokenKind::Number || t.kind == TokenKind::Other) return false;
  if (is_stop_word(t.text)) return false;
  if (t.kind == TokenKind::Word && t.text.size() < 2) return false;
  // A single Chinese character is rarely a keyword on its own (jieba keeps two or more too).
  if (t.kind == TokenKind::Ideographic && t.text.size() <= 3) return false;
  return true;
}

std::vector<Keyword> top(absl::flat_hash_map<std::string, double>& scores, size_t k) {
  std::vector<Keyword> out;
  out.reserve(scores.size());
  for (auto& [w, s] : scores) out.push_back({w, s});
  // Ties broken by the word, so the answer does not depend on hash order.
  std::sort(out.begin(), out.end(),
            [](const Keyword& a, const Keyword& b) { return a.score != b.score ? a.score > b.score : a.word < b.word; });
  if (out.size() > k) out.resize(k);
  return out;
}

}  // namespace

std::vector<std::string> keyword_candidates(std::string_view text) {
  std::vector<std::string> out;
  for (auto& t : tokenize(normalize_for_analysis(text)))
    if (keyword_like(t)) out.push_back(std::move(t.text));
  return out;
}

void KeywordIndex::add_document(std::string_view text) {
  auto words = keyword_candidates(text);
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  for (auto& w : words) ++df_[std::move(w)];
  ++documents_;
}

double KeywordIndex::idf(const std::string& word) const {
  auto it = df_.find(word);
  const double df = it == df_.end() ? 0 : it->second;
  return std::log((1.0 + static_cast<double>(documents_)) / (1.0 + df)) + 1;
}

std::string KeywordIndex::to_bytes() const {
  ByteWriter w;
  w.put<int64_t>(documents_);
  std::vector<std::pair<std::string, int32_t>> rows(df_.begin(), df_.end());
  std::sort(rows.begin(), rows.end());
  w.put<uint64_t>(rows.size());
  for (auto& [word, n] : rows) {
    w.put_string(word);
    w.put<int32_t>(n);
  }
  return std::move(w.bytes());
}

KeywordIndex KeywordIndex::from_bytes(std::string_view bytes) {
  ByteReader r(bytes);
  KeywordIndex index;
  index.documents_ = r.get<int64_t>();
  const auto n = r.get<uint64_t>();
  if (n > bytes.size()) throw std::runtime_error("model payload is truncated");
  for (uint64_t i = 0; i < n; ++i) {
    std::string word = r.get_string();
    index.df_[std::move(word)] = r.get<int32_t>();
  }
  return index;
}

std::vector<Keyword> tfidf_keywords(const std::vector<std::string_view>& texts, size_t k, const KeywordIndex* index) {
  absl::flat_hash_map<std::string, double> tf;
  for (auto text : texts)
    for (auto& w : keyword_candidates(text)) tf[std::move(w)] += 1;
  for (auto& [w, s] : tf) s = (1 + std::log(s)) * (index ? index->idf(w) : 1.0);
  return top(tf, k);
}

std::vector<Keyword> textrank_keywords(const std::vector<std::string_view>& texts, size_t k, int window) {
  absl::flat_hash_map<std::string, int> id;
  std::vector<std::string> words;
  std::vector<absl::flat_hash_map<int, double>> edges;
  for (auto text : texts) {
    std::vector<int> seq;
    for (auto& w : keyword_candidates(text)) {
      auto [it, added] = id.emplace(w, static_cast<int>(words.size()));
      if (added) {
        words.push_back(w);
        edges.emplace_back();
      }
      seq.push_back(it->second);
    }
    for (size_t i = 0; i < seq.size(); ++i)
      for (size_t j = i + 1; j < seq.size() && j < i + static_cast<size_t>(window); ++j)
        if (seq[i] != seq[j]) {
          edges[static_cast<size_t>(seq[i])][seq[j]] += 1;
          edges[static_cast<size_t>(seq[j])][seq[i]] += 1;
        }
  }
  const size_t n = words.size();
  if (n == 0) return {};
  std::vector<double> out_weight(n, 0), score(n, 1.0), next(n);
  for (size_t i = 0; i < n; ++i)
    for (auto& [j, w] : edges[i]) out_weight[i] += w;
  constexpr double d = 0.85;
  for (int iter = 0; iter < 50; ++iter) {
    double change = 0;
    for (size_t i = 0; i < n; ++i) {
      double sum = 0;
      for (auto& [j, w] : edges[i]) sum += w / out_weight[static_cast<size_t>(j)] * score[static_cast<size_t>(j)];
      next[i] = (1 - d) + d * sum;
      change += std::abs(next[i] - score[i]);
    }
    score.swap(next);
    if (change < 1e-6 * static_cast<double>(n)) break;
  }
  const double best = *std::max_element(score.begin(), score.end());
  absl::flat_hash_map<std::string, double> scores;
  for (size_t i = 0; i < n; ++i) scores[words[i]] = score[i] / best;
  return top(scores, k);
}

}  // namespace persona::text
