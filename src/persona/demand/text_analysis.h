#pragma once
// What a text says: language, tokens, sentiment, demand category, intent and keywords, each
// answer with its confidence. The trained models live in one directory, one file per task
// (sentiment.model, category.model, intent.model, keywords.model); a task without a model is
// reported as not trained, never guessed.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/ml/text_classifier.h"
#include "persona/text/keywords.h"
#include "persona/text/language.h"

namespace persona::demand {

enum class TextTask { Sentiment, Category, Intent };
const char* text_task_name(TextTask t);
std::optional<TextTask> parse_text_task(std::string_view name);
// The text field each task learns from: sentiment, category, label.
std::string default_label_field(TextTask t);
std::string model_path(const std::string& models_dir, TextTask t);
std::string keyword_index_path(const std::string& models_dir);
// --models, else $PERSONA_MODELS, else "models".
std::string models_dir_from(const std::string& given);

struct TaskAnswer {
  std::string label;         // the class, or "unknown" ("neutral" for sentiment) below the threshold
  double confidence = 0;     // probability of the most probable class
  std::string best;          // the most probable class even when unknown
  std::string unknown_reason;  // why there is no class (ml::unknown_reason_name); empty when there is
  std::vector<std::pair<std::string, double>> top;  // up to three classes with probabilities
};

struct Analysis {
  text::LanguageGuess language;
  std::vector<std::string> tokens;
  size_t token_count = 0;
  std::optional<TaskAnswer> sentiment, category, intent;
  std::vector<text::Keyword> keywords, textrank;
  nlohmann::json to_json(size_t max_tokens = 200) const;
};

class TextAnalyzer {
 public:
  // Loads whichever models the directory holds. A model file that exists but is corrupt or of
  // another kind is an error (std::runtime_error naming it).
  static TextAnalyzer load(const std::string& models_dir);
  Analysis analyze(std::string_view text) const;
  std::vector<std::string> missing_tasks() const;
  const std::optional<ml::TextClassifier>& model(TextTask t) const;

 private:
  std::optional<ml::TextClassifier> sentiment_, category_, intent_;
  std::optional<text::KeywordIndex> keywords_;
};

// Answer of one classifier for one text (label "neutral" instead of "unknown" for sentiment).
TaskAnswer answer(const ml::TextClassifier& classifier, std::string_view text, TextTask task);
TaskAnswer answer(const ml::TextClassifier& classifier, const text::PreparedText& text, TextTask task);

// Saves / loads the keyword index as a model file of kind "keyword-index".
void save_keyword_index(const text::KeywordIndex& index, const std::string& path);
text::KeywordIndex load_keyword_index(const std::string& path);

}  // namespace persona::demand
