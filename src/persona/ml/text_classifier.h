#pragma once
// A trained text classifier for one task: the model chosen by validation score among the
// candidates (TF-IDF + linear, fastText), its class names, and the confidence threshold below
// which it answers "unknown" (for sentiment: "neutral"), chosen on the same validation data.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/ml/metrics.h"
#include "persona/ml/text_model.h"

namespace persona::ml {

// Training texts labelled with this class are examples of what the task does not cover (for an
// assistant's intents: chit-chat, other domains). The classifier learns them as a class, answers
// "unknown" (-1) for them, and its threshold is chosen counting "unknown" right for them.
inline constexpr const char* kOutOfScope = "out_of_scope";

struct TextClassifierOptions {
  std::vector<std::string> candidates{"tfidf-linear", "fasttext"};
  double validation_fraction = 0.15;
  // The budget, in seconds: it decides how much work is planned (from the data's size, at
  // reference speeds: the same on any machine), and caps the wall time of the whole call.
  int time_budget_s = 60;
  bool tune = true;         // false: default parameters of each candidate, no search
  bool abstain = true;      // choose an "unknown" threshold on validation data
  int threads = 2;
  uint64_t seed = 1;
  // Told each stage as it starts ("linear grid 3/8", "fastText search", "refit on all texts").
  std::function<void(const std::string& stage)> on_stage;
};

struct CandidateResult {
  std::string kind;
  nlohmann::json params;
  double accuracy = 0, macro_f1 = 0, seconds = 0;
};

struct TextTrainingReport {
  std::vector<CandidateResult> candidates;
  std::string chosen;
  nlohmann::json chosen_params;
  double validation_accuracy = 0, validation_macro_f1 = 0;
  double majority_accuracy = 0;  // the baseline: always the most common class of the validation texts
  double unknown_threshold = 0, validation_unknown_rate = 0;
  std::vector<std::string> languages;  // the languages of the training texts (see TextClassifier)
  double min_coverage = 0;             // below it, a text is too unfamiliar to classify
  size_t train_rows = 0, validation_rows = 0;
  double seconds = 0, budget_s = 0;
  bool refit = true;               // false: some member is kept as validated (trained on the training part)
  bool capped = false;             // the wall-time cap cut the planned work: not reproducible
  nlohmann::json plan;             // the work planned: settings of each model, cross-validation
  std::vector<std::string> notes;  // what the budget left out or cut short, in words
  nlohmann::json to_json() const;
};

// Why a text got no class. A model answers only texts like those it learnt from: a text with no
// words, none the model knows, too few it knows, or in a language it was not trained on is
// unknown whatever its probabilities say (a linear model or fastText is confident far from its
// data, where it has seen nothing to doubt).
enum class Unknown { No, BelowThreshold, OutOfScope, NoWords, NoKnownWords, LowCoverage, OtherLanguage };
const char* unknown_reason_name(Unknown u);  // "", "below_threshold", "out_of_scope", "no_words", ...
// The text itself is outside what the model knows (no words, unknown words, another language), as
// opposed to the model being unsure between its classes.
inline bool unfamiliar(Unknown u) { return u >= Unknown::NoWords; }

struct TextPrediction {
  int label = -1;         // -1: unknown (see `unknown`)
  int best = -1;          // the most probable class even when unknown
  double confidence = 0;  // probability of `best`
  std::vector<float> probabilities;
  Unknown unknown = Unknown::No;
  double coverage = 1;    // share of the text's words the model knows
  std::string language;   // the text's language ("zh", "en", "mixed", "ja", "unknown")
};

class TextClassifier {
 public:
  // Selects, tunes and trains on `data` (a validation split is carved from it). The work is
  // planned from the data's size, the options and the budget, so the same call gives the same
  // model on any machine; options.time_budget_s of wall time is a safety cap on top (when it cuts
  // the plan short, report->capped says so). One linear model is always trained, however small
  // the budget: liblinear cannot be interrupted.
  static TextClassifier train(const LabelledTexts& data, const TextClassifierOptions& options,
                              TextTrainingReport* report = nullptr);
  // Wraps a model already trained (no threshold).
  TextClassifier(std::shared_ptr<const TextModel> model, std::vector<std::string> labels);

  TextPrediction predict(std::string_view text) const;
  TextPrediction predict(const text::PreparedText& text) const;  // one text for several classifiers
  std::vector<TextPrediction> predict_all(const std::vector<std::string>& texts, int threads = 2) const;
  // Report on labelled texts; with allow_unknown, "unknown" answers count wrong, except for
  // out-of-scope texts when the model has that class (they are then reported as that class).
  ClassificationReport evaluate(const LabelledTexts& data, int threads = 2, bool allow_unknown = false) const;

  const std::vector<std::string>& labels() const { return labels_; }
  const std::string& label_name(int label) const;
  double unknown_threshold() const { return threshold_; }
  void set_unknown_threshold(double t) { threshold_ = t; }
  // The languages of the training texts: a text in another is unknown. Empty: any language.
  const std::vector<std::string>& languages() const { return languages_; }
  void set_languages(std::vector<std::string> languages) { languages_ = std::move(languages); }
  // The least share of a text's words the model must know (chosen on validation data).
  double min_coverage() const { return min_coverage_; }
  void set_min_coverage(double c) { min_coverage_ = c; }
  const TextModel& model() const { return *model_; }

  // Model file of kind "text-classifier"; `task` and `metrics` go into its header.
  void save(const std::string& path, const std::string& task, const nlohmann::json& metrics = {}) const;
  static TextClassifier load(const std::string& path);
  static TextClassifier load(const std::string& path, std::string* task);

 private:
  std::shared_ptr<const TextModel> model_;
  std::vector<std::string> labels_;
  TextPrediction screened(const text::PreparedText& text, std::vector<float> probabilities) const;

  double threshold_ = 0;
  std::vector<std::string> languages_;
  double min_coverage_ = 0;
  int out_of_scope_ = -1;  // the index of kOutOfScope among the labels, -1 when absent
};

// Stratified split of row indices: about `fraction` of each class goes to the second part.
std::pair<std::vector<size_t>, std::vector<size_t>> stratified_split(const std::vector<int>& labels,
                                                                     double fraction, uint64_t seed);

// With out-of-scope examples, the threshold is at least the confidence below which the least
// confident 1% of right in-scope validation answers fall: out-of-scope messages in use differ from
// the examples, and a model that separates its validation perfectly would otherwise keep no margin
// (the threshold that maximises right answers is then 0).
inline constexpr double kOpenSetWithheld = 0.01;
double open_set_margin(const std::vector<int>& truth, const std::vector<TextPrediction>& predictions, int out_of_scope);

// The confidence threshold that maximises right answers plus wrong answers withheld; texts of the
// `out_of_scope` class (-1: none) are right when withheld.
// The languages that hold at least kLanguageShare of the texts (by text::detect_language; texts
// without letters are not counted), in code order.
inline constexpr double kLanguageShare = 0.01;
std::vector<std::string> text_languages(const std::vector<std::string>& texts);

// Whether a text in `language` is one a model trained on `languages` can read: its own language,
// or mixed Chinese and English when the model knows either.
bool language_served(const std::string& language, const std::vector<std::string>& languages);

// The least coverage to accept: the share of words known below which the least familiar 1% of the
// validation texts (in scope, with words) fall, at most 0.5.
inline constexpr double kCoverageWithheld = 0.01;
double choose_min_coverage(std::vector<double> validation_coverage);

// Whether the single model's validation answers beat the blend's by more than chance (McNemar's
// paired comparison: the rows only it gets right outnumber those only the blend gets right by
// more than one standard error); otherwise the blend is kept.
bool clearly_better_alone(const std::vector<std::vector<float>>& single, const std::vector<std::vector<float>>& blend,
                          const LabelledTexts& truth);

double choose_unknown_threshold(const std::vector<int>& truth, const std::vector<TextPrediction>& predictions,
                                int out_of_scope = -1);

}  // namespace persona::ml
