#include "persona/assistant/faq.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "persona/core/binary_io.h"
#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/io/input.h"
#include "persona/ml/model_file.h"
#include "persona/text/normalize.h"
#include "persona/text/stemmer.h"
#include "persona/text/stopwords.h"
#include "persona/text/tokenizer.h"

namespace persona::assistant {
namespace {

std::string document_of(const FaqEntry& e, int question_repeats) {
  std::string doc;
  for (int i = 0; i < std::max(1, question_repeats); ++i) doc += e.question + "\n";
  return doc + e.answer;
}

double dot(const SparseVector& a, const SparseVector& b) {
  double s = 0;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a.index[i] < b.index[j]) ++i;
    else if (a.index[i] > b.index[j]) ++j;
    else s += static_cast<double>(a.value[i++]) * b.value[j++];
  }
  return s;
}

}  // namespace

nlohmann::json FaqOptions::to_json() const {
  return {{"bm25_k1", bm25_k1}, {"bm25_b", bm25_b}, {"question_repeats", question_repeats}, {"bm25_share", bm25_share},
          {"min_cosine", min_cosine}};
}

FaqOptions FaqOptions::from_json(const nlohmann::json& j) {
  FaqOptions o;
  o.bm25_k1 = j.value("bm25_k1", o.bm25_k1);
  o.bm25_b = j.value("bm25_b", o.bm25_b);
  o.question_repeats = j.value("question_repeats", o.question_repeats);
  o.bm25_share = j.value("bm25_share", o.bm25_share);
  o.min_cosine = j.value("min_cosine", o.min_cosine);
  return o;
}

std::vector<std::string> FaqIndex::bm25_terms(std::string_view text) const {
  std::vector<std::string> terms;
  for (const auto& t : text::tokenize(text::normalize_for_analysis(text))) {
    if (t.kind == text::TokenKind::Ideographic) {
      // A Chinese word, and its characters: segmentation differs between phrasings.
      terms.push_back(t.text);
      std::u32string cps;
      text::decode_utf8(t.text, cps);
      if (cps.size() > 1)
        for (char32_t cp : cps) {
          std::string one;
          text::append_utf8(cp, one);
          terms.push_back(std::move(one));
        }
      continue;
    }
    if (text::is_stop_word(t.text)) continue;
    terms.push_back(text::stem_english(t.text));
  }
  return terms;
}

void FaqIndex::index_terms() {
  postings_.clear();
  lengths_.assign(entries_.size(), 0);
  double total = 0;
  for (size_t e = 0; e < entries_.size(); ++e) {
    absl::flat_hash_map<std::string, float> tf;
    const auto terms = bm25_terms(document_of(entries_[e], options_.question_repeats));
    for (const auto& t : terms) tf[t] += 1;
    for (const auto& [term, count] : tf) postings_[term].emplace_back(static_cast<uint32_t>(e), count);
    lengths_[e] = static_cast<float>(terms.size());
    total += static_cast<double>(terms.size());
  }
  average_length_ = entries_.empty() ? 1.0f : static_cast<float>(std::max(1.0, total / static_cast<double>(entries_.size())));
  std::vector<std::string> docs;
  for (const auto& e : entries_) docs.push_back(document_of(e, options_.question_repeats));
  vectors_ = tfidf_.transform_all(docs, 1);
}

FaqIndex FaqIndex::build(std::vector<FaqEntry> entries, const FaqOptions& options) {
  if (entries.empty()) throw Error("no FAQ pairs to index", {}, "give a file of question/answer pairs");
  FaqIndex index;
  index.options_ = options;
  index.entries_ = std::move(entries);
  // Words and word pairs, and character n-grams (2-4 within Latin words; 1-2 over Han runs), all
  // kept however rare: an FAQ is small, and one rare word may be the whole point of a pair.
  text::TfidfOptions t;
  t.word_ngrams = 2;
  t.min_df = 1;
  index.tfidf_ = text::TfidfVectorizer(t);
  std::vector<std::string> docs;
  for (const auto& e : index.entries_) docs.push_back(document_of(e, options.question_repeats));
  index.tfidf_.fit(docs, 1);
  index.index_terms();
  return index;
}

std::vector<FaqMatch> FaqIndex::search(std::string_view question, size_t k) const {
  std::vector<FaqMatch> all(entries_.size());
  for (size_t e = 0; e < entries_.size(); ++e) all[e].entry = e;
  // BM25 (Robertson's IDF, floored at a small positive value as Lucene does).
  const double n = static_cast<double>(entries_.size());
  absl::flat_hash_map<std::string, int> query_terms;
  for (const auto& t : bm25_terms(question)) query_terms[t] += 1;
  for (const auto& [term, count] : query_terms) {
    const auto it = postings_.find(term);
    if (it == postings_.end()) continue;
    const double df = static_cast<double>(it->second.size());
    const double idf = std::log(1 + (n - df + 0.5) / (df + 0.5));
    for (const auto& [e, tf] : it->second) {
      const double norm = options_.bm25_k1 * (1 - options_.bm25_b + options_.bm25_b * lengths_[e] / average_length_);
      all[e].bm25 += count * idf * tf * (options_.bm25_k1 + 1) / (tf + norm);
    }
  }
  const auto q = tfidf_.transform(question);
  double best_bm25 = 0, best_cosine = 0;
  for (auto& m : all) {
    m.cosine = dot(q, vectors_[m.entry]);
    best_bm25 = std::max(best_bm25, m.bm25);
    best_cosine = std::max(best_cosine, m.cosine);
  }
  for (auto& m : all)
    m.score = options_.bm25_share * (best_bm25 > 0 ? m.bm25 / best_bm25 : 0) +
              (1 - options_.bm25_share) * (best_cosine > 0 ? m.cosine / best_cosine : 0);
  const size_t keep = std::min(k, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<long>(keep), all.end(), [](const FaqMatch& a, const FaqMatch& b) {
    return a.score != b.score ? a.score > b.score : a.entry < b.entry;
  });
  all.resize(keep);
  return all;
}

std::optional<FaqMatch> FaqIndex::answer(std::string_view question) const {
  const auto best = search(question, 1);
  if (best.empty() || best.front().bm25 <= 0 || best.front().cosine < options_.min_cosine) return std::nullopt;
  return best.front();
}

void FaqIndex::save(const std::string& path) const {
  ByteWriter w;
  w.put_string(options_.to_json().dump());
  w.put<uint64_t>(entries_.size());
  for (const auto& e : entries_) {
    w.put_string(e.id);
    w.put_string(e.question);
    w.put_string(e.answer);
  }
  w.put_string(tfidf_.to_bytes());
  ml::ModelHeader header;
  header.kind = "faq-index";
  header.task = "faq";
  header.schema = {{"entries", entries_.size()}, {"options", options_.to_json()}};
  ml::write_model_file(path, header, w.bytes());
}

FaqIndex FaqIndex::load(const std::string& path) {
  const auto file = ml::read_model_file(path, "faq-index");
  try {
    ByteReader r(file.payload);
    FaqIndex index;
    index.options_ = FaqOptions::from_json(parse_json_or_throw(r.get_string(), {}));
    const auto n = r.get<uint64_t>();
    if (n > file.payload.size()) throw std::runtime_error("implausible number of pairs");
    for (uint64_t i = 0; i < n; ++i) {
      FaqEntry e;
      e.id = r.get_string();
      e.question = r.get_string();
      e.answer = r.get_string();
      index.entries_.push_back(std::move(e));
    }
    index.tfidf_ = text::TfidfVectorizer::from_bytes(r.get_string());
    index.index_terms();
    return index;
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: not a usable FAQ index: {}", path, e.what()));
  }
}

std::vector<FaqEntry> read_faq_file(const std::string& path) {
  const std::string bytes = io::read_small_input(path, "FAQ file");
  std::vector<nlohmann::json> items;
  const auto first = bytes.find_first_not_of(" \t\r\n\xef\xbb\xbf");
  try {
    std::optional<nlohmann::json> whole;
    if (first != std::string::npos && (bytes[first] == '[' || bytes[first] == '{')) whole = parse_json(bytes);
    if (first != std::string::npos && (bytes[first] == '[' || bytes[first] == '{') && !whole) {
      // Not one JSON document: JSON Lines.
      std::istringstream lines(bytes);
      size_t line_no = 0;
      for (std::string line; std::getline(lines, line);) {
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        items.push_back(parse_json_or_throw(line, {path, static_cast<int64_t>(line_no)}));
      }
    } else {
      const auto j = whole ? std::move(*whole) : parse_json_or_throw(bytes, {path});
      const auto& list = j.is_object() && j.contains("questions") ? j.at("questions") : j;
      if (!list.is_array()) throw Error("expected a JSON array of question/answer pairs (or {\"questions\": [...]})", {path});
      items.assign(list.begin(), list.end());
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("not valid JSON: {}", e.what()), {path});
  }
  std::vector<FaqEntry> out;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& it = items[i];
    auto text = [&](const char* key) -> std::string {
      if (!it.is_object() || !it.contains(key) || !it[key].is_string()) return "";
      return it[key].get<std::string>();
    };
    FaqEntry e{text("id"), text("question"), text("answer")};
    if (e.id.empty()) e.id = fmt::format("faq-{}", i + 1);
    if (e.question.empty() || e.answer.empty())
      throw Error(fmt::format("FAQ pair {} has no {}", i + 1, e.question.empty() ? "question" : "answer"), {path},
                  "each pair needs \"question\" and \"answer\" strings");
    out.push_back(std::move(e));
  }
  if (out.empty()) throw Error("the FAQ file has no question/answer pairs", {path});
  return out;
}

}  // namespace persona::assistant
