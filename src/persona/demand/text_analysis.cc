#include "persona/demand/text_analysis.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <numeric>

#include "persona/ml/model_file.h"
#include "persona/text/normalize.h"
#include "persona/text/tokenizer.h"

namespace persona::demand {

const char* text_task_name(TextTask t) {
  switch (t) {
    case TextTask::Sentiment: return "sentiment";
    case TextTask::Category: return "category";
    case TextTask::Intent: return "intent";
  }
  return "intent";
}

std::optional<TextTask> parse_text_task(std::string_view name) {
  if (name == "sentiment") return TextTask::Sentiment;
  if (name == "category" || name == "demand") return TextTask::Category;
  if (name == "intent") return TextTask::Intent;
  return std::nullopt;
}

std::string default_label_field(TextTask t) {
  switch (t) {
    case TextTask::Sentiment: return "sentiment";
    case TextTask::Category: return "category";
    case TextTask::Intent: return "label";
  }
  return "label";
}

std::string model_path(const std::string& dir, TextTask t) {
  return (std::filesystem::path(dir) / (std::string(text_task_name(t)) + ".model")).string();
}

std::string keyword_index_path(const std::string& dir) {
  return (std::filesystem::path(dir) / "keywords.model").string();
}

std::string models_dir_from(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("PERSONA_MODELS"); env && *env) return env;
  return "models";
}

TaskAnswer answer(const ml::TextClassifier& classifier, std::string_view text, TextTask task) {
  return answer(classifier, text::prepare_text(text), task);
}

TaskAnswer answer(const ml::TextClassifier& classifier, const text::PreparedText& text, TextTask task) {
  const auto p = classifier.predict(text);
  TaskAnswer a;
  a.confidence = p.confidence;
  a.best = classifier.label_name(p.best);
  // Sentiment the model is unsure of is neutral; a text it cannot read has no sentiment it knows.
  a.label = p.label >= 0                                                      ? classifier.label_name(p.label)
            : task == TextTask::Sentiment && !ml::unfamiliar(p.unknown) ? "neutral"
                                                                        : "unknown";
  a.unknown_reason = ml::unknown_reason_name(p.unknown);
  std::vector<size_t> order(p.probabilities.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return p.probabilities[x] > p.probabilities[y]; });
  for (size_t i = 0; i < order.size() && i < 3; ++i)
    a.top.emplace_back(classifier.labels()[order[i]], p.probabilities[order[i]]);
  return a;
}

TextAnalyzer TextAnalyzer::load(const std::string& dir) {
  TextAnalyzer a;
  auto load_one = [&](TextTask t, std::optional<ml::TextClassifier>& slot) {
    const std::string path = model_path(dir, t);
    if (std::filesystem::exists(path)) slot = ml::TextClassifier::load(path);
  };
  load_one(TextTask::Sentiment, a.sentiment_);
  load_one(TextTask::Category, a.category_);
  load_one(TextTask::Intent, a.intent_);
  if (std::filesystem::exists(keyword_index_path(dir))) a.keywords_ = load_keyword_index(keyword_index_path(dir));
  return a;
}

const std::optional<ml::TextClassifier>& TextAnalyzer::model(TextTask t) const {
  switch (t) {
    case TextTask::Sentiment: return sentiment_;
    case TextTask::Category: return category_;
    case TextTask::Intent: return intent_;
  }
  return intent_;
}

std::vector<std::string> TextAnalyzer::missing_tasks() const {
  std::vector<std::string> out;
  for (auto t : {TextTask::Sentiment, TextTask::Category, TextTask::Intent})
    if (!model(t)) out.push_back(text_task_name(t));
  return out;
}

Analysis TextAnalyzer::analyze(std::string_view raw) const {
  Analysis a;
  // Normalised and split once for the language, the tokens and every model.
  const text::PreparedText prepared = text::prepare_text(raw);
  a.language = text::detect_language(prepared.normalized);
  for (const auto& t : prepared.tokens) a.tokens.push_back(t.text);
  a.token_count = a.tokens.size();
  // With no words there is nothing to classify: no answers rather than the model's prior.
  if (!a.tokens.empty()) {
    if (sentiment_) a.sentiment = answer(*sentiment_, prepared, TextTask::Sentiment);
    if (category_) a.category = answer(*category_, prepared, TextTask::Category);
    if (intent_) a.intent = answer(*intent_, prepared, TextTask::Intent);
  }
  const std::vector<std::string_view> one{raw};
  a.keywords = text::tfidf_keywords(one, 5, keywords_ ? &*keywords_ : nullptr);
  a.textrank = text::textrank_keywords(one, 5);
  return a;
}

nlohmann::json Analysis::to_json(size_t max_tokens) const {
  nlohmann::json j;
  j["language"] = text::language_code(language.language);
  j["language_confidence"] = language.letters == 0 ? 0.0
                             : language.language == text::Language::Chinese ? language.han_share
                             : language.language == text::Language::English ? 1 - language.han_share
                             : language.language == text::Language::Japanese ? 1.0
                                                                             : 0.5;
  std::vector<std::string> shown(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(std::min(max_tokens, tokens.size())));
  j["tokens"] = shown;
  j["token_count"] = token_count;
  auto task = [&](const char* name, const std::optional<TaskAnswer>& t) {
    if (!t) {
      j[name] = nullptr;
      return;
    }
    nlohmann::json top = nlohmann::json::array();
    for (const auto& [l, p] : t->top) top.push_back({{"label", l}, {"probability", p}});
    j[name] = {{"label", t->label}, {"confidence", t->confidence}, {"best", t->best}, {"top", top}};
    if (!t->unknown_reason.empty()) j[name]["unknown_reason"] = t->unknown_reason;
  };
  task("sentiment", sentiment);
  task("category", category);
  task("intent", intent);
  auto kw = [](const std::vector<text::Keyword>& ks) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& k : ks) out.push_back({{"word", k.word}, {"score", k.score}});
    return out;
  };
  j["keywords"] = kw(keywords);
  j["keywords_textrank"] = kw(textrank);
  return j;
}

void save_keyword_index(const text::KeywordIndex& index, const std::string& path) {
  ml::ModelHeader h;
  h.kind = "keyword-index";
  h.task = "keywords";
  h.schema = {{"documents", index.documents()}};
  ml::write_model_file(path, h, index.to_bytes());
}

text::KeywordIndex load_keyword_index(const std::string& path) {
  const auto file = ml::read_model_file(path, "keyword-index");
  try {
    return text::KeywordIndex::from_bytes(file.payload);
  } catch (const std::exception& e) {
    throw std::runtime_error("model file " + path + ": " + e.what());
  }
}

}  // namespace persona::demand
