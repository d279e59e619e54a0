#include "persona/ml/text_classifier.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "persona/core/binary_io.h"
#include "persona/core/parallel.h"
#include "persona/ml/fasttext_text_model.h"
#include "persona/ml/linear_text_model.h"
#include "persona/ml/model_file.h"
#include "persona/ml/validation.h"
#include "persona/text/language.h"
#include "persona/text/normalize.h"
#include "persona/text/tokenizer.h"

namespace persona::ml {
namespace {

// What one train() call does is decided before it starts, from the data's size, the options and
// the budget, never from a clock: the same call gives the same model on any machine, busy or
// quiet. The budget is turned into work at reference speeds (below); the plan fills about half
// of it at those speeds, so a machine twice as slow (two other busy processes on two cores) still
// finishes in time. Wall time is only a safety cap: when the budget's end passes before the plan
// is done, what is left is skipped, and the report says so loudly (the result then depends on
// the machine).
//
// Reference speeds, measured with the release build on the development machine (2-core AMD
// EPYC, quiet, one thread per model) on Banking77 (77 classes, short English) and the Chinese
// online-shopping reviews (2 and 10 classes, long): the estimates below were within 0.5-2x of
// each measured setting (docs/benchmarks.md, "Text training that is reproducible").
constexpr double kVectoriseBytesPerS = 4.0e6;           // TF-IDF fit and transform, bytes of text
constexpr double kLinearByteClassPassesPerS = 3.0e7;    // liblinear: bytes x classes x passes (see linear_cost)
constexpr double kFastTextTokenEpochsPerS = 4.0e6;      // fastText at dim 50, per input vector (token, n-gram)
constexpr double kFastTextRowClassEpochsPerS = 1.2e7;   // its softmax over the classes, per text
// Builds that run slower than the release build plan less work: the same binary still gives the
// same model every time, and the budget still holds.
#if defined(__has_feature)  // clang says so this way, GCC by the __SANITIZE_* macros
#if __has_feature(thread_sanitizer)
#define PERSONA_THREAD_SANITIZER 1
#endif
#if __has_feature(address_sanitizer)
#define PERSONA_ADDRESS_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(PERSONA_THREAD_SANITIZER)
constexpr double kBuildSpeed = 0.15;
#elif defined(__SANITIZE_ADDRESS__) || defined(PERSONA_ADDRESS_SANITIZER)
constexpr double kBuildSpeed = 0.33;
#elif !defined(NDEBUG)
constexpr double kBuildSpeed = 0.25;  // -O0: Persona's own code (the TF-IDF features) is several times slower
#else
constexpr double kBuildSpeed = 1;
#endif
constexpr double kPlannedShare = 0.5 * kBuildSpeed;     // of the budget, at the reference speeds
// The search's shares of the planned time: the linear grid first (it wins most often), then
// fastText's settings (side by side, one per thread) up to the second share; the rest is the refit's.
constexpr double kLinearShare = 0.5, kSearchShare = 0.75;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The size of a set of texts, which is all the plan looks at. Tokens as fastText sees them,
// counted roughly from the bytes: a Latin word, or one character of a three-byte UTF-8 script
// (Chinese, Japanese: fastText_tokens splits them into characters).
struct DataSize {
  double bytes = 0, tokens = 0, rows = 0, classes = 2;
  double word_chars = 0;  // characters in the tokens: a Latin word's letters, 1 per Chinese character
  static DataSize of(const LabelledTexts& d) {
    DataSize s;
    for (const auto& t : d.texts) {
      s.bytes += static_cast<double>(t.size()) + 1;
      bool in_word = false;
      for (const unsigned char c : t) {
        const bool word = std::isalnum(c) != 0;
        const bool wide = c >= 0xE0 && c <= 0xEF;
        if ((word && !in_word) || wide) s.tokens += 1;
        if (word || wide) s.word_chars += 1;
        in_word = word;
      }
    }
    s.rows = static_cast<double>(d.size());
    s.classes = static_cast<double>(d.label_names.size());
    return s;
  }
  // Character n-grams of minn..maxn per token, as fastText takes them from "<token>".
  double subwords_per_token(int minn, int maxn) const {
    if (maxn <= 0 || tokens <= 0) return 0;
    const double length = word_chars / tokens + 2;  // with the brackets
    double n_grams = 0;
    for (int n = std::max(2, minn); n <= maxn; ++n) n_grams += std::max(0.0, length - n + 1);
    return n_grams;
  }
};

// Reference seconds of each piece of work.
double vectorise_cost(const DataSize& d) { return d.bytes / kVectoriseBytesPerS; }
double linear_cost(const DataSize& d, const LinearTextParams& p) {
  // liblinear fits a weight vector per class; a larger C (weaker regularisation) takes more passes.
  const double passes = 1 + 0.5 * std::log2(1 + p.c);
  return d.bytes * d.classes * passes / kLinearByteClassPassesPerS;
}
double fasttext_cost(const DataSize& d, const FastTextParams& p) {
  const double width = p.dim / 50.0;
  // Input vectors per token: the word, its share of word n-grams, its character n-grams (about
  // 13 for an English word of 5 letters at 2-4 characters: they dominate when asked for).
  const double vectors = 1 + 0.5 * (p.word_ngrams - 1) + d.subwords_per_token(p.minn, p.maxn);
  return p.epoch * width *
         (d.tokens * vectors / kFastTextTokenEpochsPerS + d.rows * d.classes / kFastTextRowClassEpochsPerS);
}

// The budget's end: the only clock the training reads.
struct SafetyCap {
  Clock::time_point start, end;
  double total_s = 0;
  explicit SafetyCap(int seconds) : start(Clock::now()), total_s(std::max(1, seconds)) {
    end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(total_s));
  }
  bool passed() const { return Clock::now() >= end; }
};

struct Scored {
  double accuracy = 0, macro_f1 = 0;
  bool better_than(const Scored& o) const {
    return macro_f1 != o.macro_f1 ? macro_f1 > o.macro_f1 : accuracy > o.accuracy;
  }
};

Scored score(const std::vector<std::vector<float>>& probabilities, const LabelledTexts& truth) {
  std::vector<int> predicted;
  for (const auto& p : probabilities) predicted.push_back(argmax(p));
  const auto r = classification_report(truth.labels, predicted, truth.label_names);
  return {r.accuracy, r.macro.f1};
}

// liblinear's solvers draw from rand(): training one model at a time, with the C library's
// generator seeded first, keeps results reproducible.
std::mutex liblinear_mutex;

std::unique_ptr<LinearTextModel> train_linear_seeded(const std::vector<SparseVector>& x, const std::vector<int>& labels,
                                                     size_t classes,
                                                     std::shared_ptr<const text::TfidfVectorizer> vectorizer,
                                                     const LinearTextParams& params, uint64_t seed) {
  std::lock_guard lock(liblinear_mutex);
  std::srand(static_cast<unsigned>(seed));
  return LinearTextModel::train_on_features(x, labels, static_cast<int>(classes), std::move(vectorizer), params);
}

// The answer for one text's probabilities: the best class, and -1 below the threshold or when
// the best class is the out-of-scope one.
TextPrediction prediction_from(std::vector<float> probabilities, double threshold, int out_of_scope) {
  TextPrediction p;
  p.probabilities = std::move(probabilities);
  p.best = argmax(p.probabilities);
  p.confidence = p.best >= 0 ? p.probabilities[static_cast<size_t>(p.best)] : 0;
  p.label = p.confidence >= threshold && p.best != out_of_scope ? p.best : -1;
  return p;
}

int out_of_scope_index(const std::vector<std::string>& labels) {
  const auto it = std::find(labels.begin(), labels.end(), kOutOfScope);
  return it == labels.end() ? -1 : static_cast<int>(it - labels.begin());
}

// The linear grid, most promising first: a small budget plans the first settings only. The ranges
// that won on the benchmark sets: short English intents like large C, long Chinese reviews small C.
std::vector<LinearTextParams> linear_grid(bool tune) {
  if (!tune) return {LinearTextParams{}};
  return {{LinearSolver::LogisticRegression, 16.0, {}}, {LinearSolver::Svm, 1.0, {}},
          {LinearSolver::CrammerSinger, 1.0, {}},       {LinearSolver::LogisticRegression, 4.0, {}},
          {LinearSolver::Svm, 0.3, {}},                 {LinearSolver::CrammerSinger, 0.3, {}},
          {LinearSolver::LogisticRegression, 64.0, {}}, {LinearSolver::Svm, 4.0, {}}};
}

// fastText's candidate settings, most promising first (fastText's own autotune is not used: its
// timer could start late and never stop, and it could end with no model at all). Each trains on
// one thread, so that it is reproducible; candidates run side by side.
std::vector<FastTextParams> fasttext_grid(bool tune, uint64_t seed) {
  auto make = [seed](double lr, int epoch, int dim, int ngrams, int minn = 0, int maxn = 0) {
    FastTextParams p;
    p.lr = lr;
    p.epoch = epoch;
    p.dim = dim;
    p.word_ngrams = ngrams;
    p.minn = minn;
    p.maxn = maxn;
    p.threads = 1;
    p.seed = static_cast<int>(seed);
    return p;
  };
  if (!tune) return {make(0.5, 25, 50, 2)};
  return {make(0.5, 25, 50, 2), make(0.25, 10, 50, 1),  make(1.0, 50, 50, 2),
          make(0.5, 25, 100, 3), make(0.5, 25, 50, 2, 2, 4), make(0.1, 50, 100, 2)};
}

// The work one train() call will do (see kPlannedShare).
struct Plan {
  std::vector<LinearTextParams> linear;
  bool cross_validate = false;
  std::vector<FastTextParams> fasttext;
  double search_s = 0, planned_s = 0;  // reference seconds: the search planned, all of it allowed
  nlohmann::json to_json() const {
    return {{"linear_settings", linear.size()}, {"cross_validated", cross_validate},
            {"fasttext_settings", fasttext.size()}, {"planned_s", planned_s}, {"search_s", search_s}};
  }
};

// Below this many texts one validation split is too small to tell settings apart (a few hundred
// rows, a handful per class): the linear grid is then chosen by 3-fold cross-validation.
constexpr size_t kCrossValidateBelow = 5000;

Plan plan_work(const LabelledTexts& data, const DataSize& train, const TextClassifierOptions& options, bool want_linear,
               bool want_fasttext, std::vector<std::string>& notes) {
  Plan plan;
  plan.planned_s = kPlannedShare * std::max(1, options.time_budget_s);
  if (want_linear) {
    const auto grid = linear_grid(options.tune);
    const double allowed = (want_fasttext ? kLinearShare : kSearchShare) * plan.planned_s;
    double used = vectorise_cost(train);
    for (const auto& setting : grid) {
      const double cost = linear_cost(train, setting);
      if (!plan.linear.empty() && used + cost > allowed) break;  // one setting always
      plan.linear.push_back(setting);
      used += cost;
    }
    if (plan.linear.size() < grid.size())
      notes.push_back(fmt::format("the budget plans {} of the linear grid's {} settings (--budget {} s)", plan.linear.size(),
                                  grid.size(), options.time_budget_s));
    // Cross-validation: three folds of two thirds each, the same settings again.
    double fold = vectorise_cost(train);
    for (const auto& setting : plan.linear) fold += linear_cost(train, setting);
    if (options.tune && plan.linear.size() > 1 && data.size() < kCrossValidateBelow && used + 2 * fold <= allowed) {
      plan.cross_validate = true;
      used += 2 * fold;
    }
    plan.search_s += used;
  }
  if (want_fasttext) {
    const double threads = std::max(1, options.threads);
    const double allowed = std::max(0.0, kSearchShare * plan.planned_s - plan.search_s) * threads;
    double used = 0;
    const auto grid = fasttext_grid(options.tune, options.seed);
    for (const auto& setting : grid) {
      const double cost = fasttext_cost(train, setting);
      if (used + cost > allowed) break;
      plan.fasttext.push_back(setting);
      used += cost;
    }
    if (plan.fasttext.empty())
      notes.push_back(fmt::format("fastText left out: its quickest setting needs about {:.0f} s here, more than the "
                                  "budget plans for it (a larger --budget includes it)",
                                  fasttext_cost(train, grid.front()) / kPlannedShare));
    else if (plan.fasttext.size() < grid.size())
      notes.push_back(fmt::format("the budget plans {} of fastText's {} settings", plan.fasttext.size(), grid.size()));
    plan.search_s += used / threads;
  }
  return plan;
}

struct Candidate {
  CandidateResult result;
  std::shared_ptr<TextModel> model;  // trained on the training part
  std::vector<std::vector<float>> valid_probabilities;
  Scored scored;     // on the validation split: compared across model kinds
  Scored selection;  // what picks among the linear grid: cross-validated on small sets
  size_t selection_rows = 0;
  LinearTextParams linear;
  FastTextParams fasttext;
  bool blend_only = false;  // a member for the blend, never chosen alone
};

// The one-standard-error rule: among the grid's settings whose validation macro-F1 is within one
// standard error of the best, take the simplest (logistic regression before SVMs, then the
// smallest C, the strongest regularisation). Validation rows that resemble training rows
// closely (SST-2's phrases of the same sentences) reward the least regularised setting; on new
// text the simpler one generalises better, and the difference on validation is noise anyway.
Candidate pick_within_one_standard_error(std::vector<Candidate>& grid) {
  size_t best = 0;
  for (size_t i = 1; i < grid.size(); ++i)
    if (grid[i].selection.better_than(grid[best].selection)) best = i;
  const size_t validation_rows = grid[best].selection_rows;
  if (validation_rows == 0) return grid[best];
  const double f = grid[best].selection.macro_f1;
  const double band = f - std::sqrt(f * (1 - f) / static_cast<double>(validation_rows));
  auto simpler = [](const Candidate& a, const Candidate& b) {
    const bool la = a.linear.solver == LinearSolver::LogisticRegression;
    const bool lb = b.linear.solver == LinearSolver::LogisticRegression;
    if (la != lb) return la;
    return a.linear.c < b.linear.c;
  };
  size_t pick = best;
  for (size_t i = 0; i < grid.size(); ++i)
    if (grid[i].selection.macro_f1 >= band && simpler(grid[i], grid[pick])) pick = i;
  return grid[pick];
}

// Mean validation scores of every grid setting over stratified folds of all the texts; empty when
// `deadline` passes first (the single validation split then chooses).
std::vector<Scored> cross_validate_grid(const LabelledTexts& data, const std::vector<LinearTextParams>& grid,
                                        const TextClassifierOptions& options, Clock::time_point deadline) {
  std::vector<Scored> mean(grid.size());
  constexpr int kFolds = 3;
  for (const Fold& fold : kfold(data.size(), kFolds, options.seed + 1, &data.labels)) {
    const LabelledTexts train = data.subset(fold.train), test = data.subset(fold.test);
    auto vectorizer = std::make_shared<text::TfidfVectorizer>(text::TfidfOptions{});
    vectorizer->fit(train.texts, options.threads);
    const auto x_train = vectorizer->transform_all(train.texts, options.threads);
    const auto x_test = vectorizer->transform_all(test.texts, options.threads);
    for (size_t g = 0; g < grid.size(); ++g) {
      if (Clock::now() >= deadline) return {};
      const auto m = train_linear_seeded(x_train, train.labels, data.label_names.size(), vectorizer, grid[g],
                                         options.seed);
      std::vector<std::vector<float>> p;
      for (const auto& x : x_test) p.push_back(m->predict_features(x));
      const Scored s = score(p, test);
      mean[g].accuracy += s.accuracy / kFolds;
      mean[g].macro_f1 += s.macro_f1 / kFolds;
    }
  }
  return mean;
}

}  // namespace

nlohmann::json TextTrainingReport::to_json() const {
  nlohmann::json c = nlohmann::json::array();
  for (const auto& r : candidates)
    c.push_back({{"kind", r.kind}, {"params", r.params}, {"validation_accuracy", r.accuracy},
                 {"validation_macro_f1", r.macro_f1}, {"seconds", r.seconds}});
  return {{"candidates", c},
          {"chosen", chosen},
          {"chosen_params", chosen_params},
          {"validation_accuracy", validation_accuracy},
          {"validation_macro_f1", validation_macro_f1},
          {"unknown_threshold", unknown_threshold},
          {"validation_unknown_rate", validation_unknown_rate},
          {"languages", languages},
          {"min_coverage", min_coverage},
          {"train_rows", train_rows},
          {"validation_rows", validation_rows},
          {"seconds", seconds},
          {"budget_s", budget_s},
          {"refit", refit},
          {"capped", capped},
          {"reproducible", !capped},
          {"plan", plan},
          {"notes", notes}};
}

std::pair<std::vector<size_t>, std::vector<size_t>> stratified_split(const std::vector<int>& labels, double fraction,
                                                                     uint64_t seed) {
  std::map<int, std::vector<size_t>> by_class;
  for (size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(i);
  std::mt19937_64 rng(seed);
  std::vector<size_t> first, second;
  for (auto& [label, rows] : by_class) {
    std::shuffle(rows.begin(), rows.end(), rng);
    // A class with one row stays in training: it cannot be validated anyway.
    size_t take = rows.size() < 2 ? 0 : static_cast<size_t>(std::lround(fraction * static_cast<double>(rows.size())));
    take = std::min(take, rows.size() - 1);
    if (take == 0 && rows.size() >= 2 && fraction > 0) take = 1;
    second.insert(second.end(), rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(take));
    first.insert(first.end(), rows.begin() + static_cast<std::ptrdiff_t>(take), rows.end());
  }
  std::sort(first.begin(), first.end());
  std::sort(second.begin(), second.end());
  return {first, second};
}

double choose_unknown_threshold(const std::vector<int>& truth, const std::vector<TextPrediction>& predictions,
                                int out_of_scope) {
  // Sort by confidence; withholding everything below a threshold gains the wrong answers and
  // loses the right ones among them. Pick the cut with the largest net gain (ties: lowest).
  // An out-of-scope text is answered right by "unknown": withholding it gains unless the model
  // already called it out of scope.
  std::vector<size_t> order(truth.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return predictions[a].confidence < predictions[b].confidence; });
  double best_gain = 0, best = 0, gain = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const auto& p = predictions[order[k]];
    if (truth[order[k]] == out_of_scope && out_of_scope >= 0)
      gain += p.best == out_of_scope ? 0 : 1;
    else
      gain += p.best == truth[order[k]] ? -1 : 1;
    const bool boundary = k + 1 == order.size() || predictions[order[k + 1]].confidence > p.confidence;
    if (boundary && gain > best_gain) {
      best_gain = gain;
      // Halfway to the next confidence, so the threshold generalises a little.
      best = k + 1 < order.size() ? (p.confidence + predictions[order[k + 1]].confidence) / 2 : p.confidence + 1e-9;
    }
  }
  return best;
}

double open_set_margin(const std::vector<int>& truth, const std::vector<TextPrediction>& predictions, int out_of_scope) {
  std::vector<double> right;
  for (size_t i = 0; i < truth.size(); ++i)
    if (truth[i] != out_of_scope && predictions[i].best == truth[i]) right.push_back(predictions[i].confidence);
  if (right.empty()) return 0;
  std::sort(right.begin(), right.end());
  return right[static_cast<size_t>(kOpenSetWithheld * static_cast<double>(right.size()))];
}

TextClassifier::TextClassifier(std::shared_ptr<const TextModel> model, std::vector<std::string> labels)
    : model_(std::move(model)), labels_(std::move(labels)), out_of_scope_(out_of_scope_index(labels_)) {}

const char* unknown_reason_name(Unknown u) {
  switch (u) {
    case Unknown::No: return "";
    case Unknown::BelowThreshold: return "below_threshold";
    case Unknown::OutOfScope: return "out_of_scope";
    case Unknown::NoWords: return "no_words";
    case Unknown::NoKnownWords: return "no_known_words";
    case Unknown::LowCoverage: return "low_coverage";
    case Unknown::OtherLanguage: return "other_language";
  }
  return "";
}

namespace {

// The words of a text are its tokens with letters or Han characters (numbers and symbols alone
// say nothing a model can classify): how many it has, and the share the model knows.
struct WordCoverage {
  size_t words = 0, known = 0;
  double share() const { return words == 0 ? 0 : static_cast<double>(known) / static_cast<double>(words); }
};

WordCoverage word_coverage(const TextModel& model, const std::vector<text::Token>& tokens) {
  WordCoverage c;
  for (const auto& t : tokens)
    if (t.kind == text::TokenKind::Word || t.kind == text::TokenKind::Ideographic) {
      ++c.words;
      c.known += model.knows_word(t.text);
    }
  return c;
}

}  // namespace

std::vector<std::string> text_languages(const std::vector<std::string>& texts) {
  std::map<std::string, size_t> counts;
  size_t counted = 0;
  for (const auto& t : texts) {
    const auto guess = text::detect_language(text::normalize_for_analysis(t));
    if (guess.letters == 0) continue;
    ++counts[text::language_code(guess.language)];
    ++counted;
  }
  std::vector<std::string> out;
  for (const auto& [code, n] : counts)
    if (static_cast<double>(n) >= kLanguageShare * static_cast<double>(counted)) out.push_back(code);
  return out;
}

bool language_served(const std::string& language, const std::vector<std::string>& languages) {
  if (languages.empty() || language == "unknown") return true;
  auto has = [&](const char* code) { return std::find(languages.begin(), languages.end(), code) != languages.end(); };
  return has(language.c_str()) || (language == "mixed" && (has("zh") || has("en")));
}

double choose_min_coverage(std::vector<double> validation_coverage) {
  if (validation_coverage.empty()) return 0;
  std::sort(validation_coverage.begin(), validation_coverage.end());
  const auto at = static_cast<size_t>(kCoverageWithheld * static_cast<double>(validation_coverage.size()));
  return std::min(0.5, validation_coverage[std::min(at, validation_coverage.size() - 1)]);
}

// Whether `single` beats `blend` on the validation rows by more than chance: the rows one answers
// right and the other wrong (b for the single model, c for the blend) differ by more than one
// standard error of that difference, sqrt(b + c) (McNemar's paired comparison). A blend of
// models whose mistakes differ rarely does worse on new data; the single best of several
// settings is overrated by the split that chose it, most of all on a small one (SMP2019: 0.9006
// alone against 0.9201 as a blend on its test set, after a near tie on validation).
bool clearly_better_alone(const std::vector<std::vector<float>>& single, const std::vector<std::vector<float>>& blend,
                          const LabelledTexts& truth) {
  double b = 0, c = 0;
  for (size_t r = 0; r < truth.size(); ++r) {
    const bool single_right = argmax(single[r]) == truth.labels[r], blend_right = argmax(blend[r]) == truth.labels[r];
    b += single_right && !blend_right;
    c += blend_right && !single_right;
  }
  return b - c > std::sqrt(b + c);
}

TextPrediction TextClassifier::screened(const text::PreparedText& text, std::vector<float> probabilities) const {
  TextPrediction p = prediction_from(std::move(probabilities), threshold_, out_of_scope_);
  if (p.label < 0) p.unknown = p.best == out_of_scope_ ? Unknown::OutOfScope : Unknown::BelowThreshold;
  p.language = text::language_code(text::detect_language(text.normalized).language);
  const WordCoverage words = word_coverage(*model_, text.tokens);
  p.coverage = words.share();
  const Unknown screen = words.words == 0                           ? Unknown::NoWords
                         : !language_served(p.language, languages_) ? Unknown::OtherLanguage
                         : p.coverage == 0                          ? Unknown::NoKnownWords
                         : p.coverage < min_coverage_               ? Unknown::LowCoverage
                                                                    : Unknown::No;
  if (screen != Unknown::No) {
    p.label = -1;
    p.unknown = screen;
  }
  return p;
}

namespace {

void tell(const TextClassifierOptions& options, const std::string& stage) {
  if (options.on_stage) options.on_stage(stage);
}

// The safety cap was reached: what it cut is said in the report, loudly.
void capped(TextTrainingReport* report, const std::string& what) {
  report->capped = true;
  report->notes.push_back("SAFETY CAP: " + what +
                          " (the budget's wall time ran out before the planned work was done: this model depends "
                          "on the machine's speed; a larger --budget gives a reproducible one)");
}

// The planned linear settings on the training part, scored on the validation part (or by
// cross-validation on small sets, when planned); the chosen setting, plus each other solver's
// best as a blend-only member, go into `done`. Always trains one setting.
void train_linear_candidates(const LabelledTexts& data, const LabelledTexts& train_part,
                             const LabelledTexts& valid_part, const TextClassifierOptions& options, const Plan& plan,
                             const SafetyCap& cap, std::vector<Candidate>& done, TextTrainingReport* report) {
  const bool validate = !valid_part.texts.empty();
  tell(options, "TF-IDF features");
  auto vectorizer = std::make_shared<text::TfidfVectorizer>(text::TfidfOptions{});
  vectorizer->fit(train_part.texts, options.threads);
  const auto x_train = vectorizer->transform_all(train_part.texts, options.threads);
  const auto x_valid = vectorizer->transform_all(valid_part.texts, options.threads);
  const auto& settings = plan.linear;
  std::vector<Scored> cv;
  if (plan.cross_validate && validate) {
    tell(options, "linear grid, 3-fold cross-validation");
    cv = cross_validate_grid(data, settings, options, cap.end);
    if (cv.empty()) capped(report, "the linear grid's cross-validation was cut short; chosen on the validation split");
  }
  const bool small = !cv.empty();
  std::vector<Candidate> grid;
  for (size_t g = 0; g < settings.size(); ++g) {
    if (!grid.empty() && cap.passed()) {
      capped(report, fmt::format("the linear grid stopped after {} of {} planned settings", grid.size(), settings.size()));
      break;
    }
    tell(options, fmt::format("linear grid {}/{}", g + 1, settings.size()));
    const auto& params = settings[g];
    const auto t0 = Clock::now();
    std::shared_ptr<LinearTextModel> m =
        train_linear_seeded(x_train, train_part.labels, data.label_names.size(), vectorizer, params, options.seed);
    Candidate c;
    if (validate) {
      m->fit_temperature(x_valid, valid_part.labels);
      for (const auto& x : x_valid) c.valid_probabilities.push_back(m->predict_features(x));
      c.scored = score(c.valid_probabilities, valid_part);
    }
    c.result = {"tfidf-linear", params.to_json(), c.scored.accuracy, c.scored.macro_f1, seconds_since(t0)};
    c.model = m;
    c.linear = params;
    c.selection = small ? cv[g] : c.scored;
    c.selection_rows = small ? data.size() : valid_part.size();
    if (small) c.result.params["cv3_macro_f1"] = cv[g].macro_f1;
    report->candidates.push_back(c.result);
    grid.push_back(std::move(c));
  }
  Candidate best = pick_within_one_standard_error(grid);
  // The best setting of each other solver joins the blend: their errors differ.
  for (LinearSolver solver : {LinearSolver::CrammerSinger, LinearSolver::LogisticRegression, LinearSolver::Svm}) {
    if (solver == best.linear.solver || !validate) continue;
    const Candidate* family = nullptr;
    for (const auto& c : grid)
      if (c.linear.solver == solver && (!family || c.selection.better_than(family->selection))) family = &c;
    if (!family) continue;
    done.push_back(*family);
    done.back().blend_only = true;
  }
  done.push_back(std::move(best));
}

// Runs fn(0..n-1) on up to `threads` threads; each index once. Exceptions stay with their index
// (fn catches them).
void run_side_by_side(size_t n, int threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, std::min<int>(threads, static_cast<int>(n))); ++t)
    pool.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) fn(i);
    });
  for (auto& t : pool) t.join();
}

// The planned fastText settings on the training part, side by side (one thread each), each
// stopped at the safety cap; the best by validation goes into `done`. False when none finished:
// the caller goes on without fastText.
bool train_fasttext_candidates(const LabelledTexts& train_part, const LabelledTexts& valid_part,
                               const TextClassifierOptions& options, const Plan& plan, const SafetyCap& cap,
                               std::vector<Candidate>& done, TextTrainingReport* report) {
  const bool validate = !valid_part.texts.empty();
  const auto& settings = plan.fasttext;
  if (settings.empty()) return false;
  tell(options, fmt::format("fastText, {} setting{}", settings.size(), settings.size() == 1 ? "" : "s"));
  std::vector<std::optional<Candidate>> trained(settings.size());
  std::vector<std::string> failed(settings.size());
  run_side_by_side(settings.size(), options.threads, [&](size_t i) {
    const auto t0 = Clock::now();
    if (cap.passed()) {  // not started: reading the texts and sizing the model cannot be stopped
      failed[i] = "cap";
      return;
    }
    try {
      auto m = FastTextModel::train(train_part, settings[i], cap.end);
      Candidate c;
      if (validate) {
        c.valid_probabilities = m->predict_all(valid_part.texts, 1);
        c.scored = score(c.valid_probabilities, valid_part);
      }
      c.fasttext = m->used_params();
      c.result = {"fasttext", m->params(), c.scored.accuracy, c.scored.macro_f1, seconds_since(t0)};
      c.model = std::move(m);
      trained[i] = std::move(c);
    } catch (const TrainingTimedOut&) {
      failed[i] = "cap";
    } catch (const std::exception& e) {
      failed[i] = e.what();  // fastText failed: the linear model goes on without it
    }
  });
  std::optional<size_t> best;
  for (size_t i = 0; i < settings.size(); ++i) {
    if (failed[i] == "cap") {
      capped(report, fmt::format("fastText setting {} of {} was stopped", i + 1, settings.size()));
      continue;
    }
    if (!failed[i].empty()) {
      report->notes.push_back(fmt::format("fastText setting {} failed and was left out: {}", i + 1, failed[i]));
      continue;
    }
    report->candidates.push_back(trained[i]->result);
    if (!best || trained[i]->scored.better_than(trained[*best]->scored)) best = i;
  }
  if (!best) return false;
  done.push_back(std::move(*trained[*best]));
  return true;
}

}  // namespace

TextClassifier TextClassifier::train(const LabelledTexts& data, const TextClassifierOptions& options,
                                     TextTrainingReport* report) {
  if (data.size() < 2) throw std::invalid_argument("need at least two labelled texts to train");
  if (data.label_names.size() < 2) throw std::invalid_argument("need at least two classes to train a classifier");
  if (data.labels.size() != data.texts.size()) throw std::invalid_argument("texts and labels differ in number");
  for (int l : data.labels)
    if (l < 0 || static_cast<size_t>(l) >= data.label_names.size()) throw std::invalid_argument("label index out of range");
  for (const auto& kind : options.candidates)
    if (kind != "tfidf-linear" && kind != "fasttext")
      throw std::invalid_argument("unknown text model '" + kind + "' (use tfidf-linear or fasttext)");
  if (options.candidates.empty()) throw std::invalid_argument("no candidate text model to train");
  const bool want_linear = std::count(options.candidates.begin(), options.candidates.end(), "tfidf-linear") > 0;
  const bool want_fasttext = std::count(options.candidates.begin(), options.candidates.end(), "fasttext") > 0;
  const SafetyCap cap(options.time_budget_s);
  TextTrainingReport scratch;
  if (!report) report = &scratch;  // the notes and the cap are read below
  report->budget_s = cap.total_s;

  auto [train_rows, valid_rows] = stratified_split(data.labels, options.validation_fraction, options.seed);
  const LabelledTexts train_part = data.subset(train_rows), valid_part = data.subset(valid_rows);
  const bool validate = !valid_part.texts.empty();
  const Plan plan = plan_work(data, DataSize::of(train_part), options, want_linear, want_fasttext, report->notes);
  report->plan = plan.to_json();
  std::vector<Candidate> done;
  if (want_linear) train_linear_candidates(data, train_part, valid_part, options, plan, cap, done, report);
  if (want_fasttext && !train_fasttext_candidates(train_part, valid_part, options, plan, cap, done, report) &&
      done.empty())
    throw TrainingTimedOut(fmt::format("fastText could not train within the budget of {:.0f} s: give a larger budget, "
                                       "or let the linear model be a candidate",
                                       cap.total_s));
  size_t best = done.size();
  for (size_t i = 0; i < done.size(); ++i)
    if (!done[i].blend_only && (best == done.size() || done[i].scored.better_than(done[best].scored))) best = i;

  // Blends (averaged probabilities) of the linear solvers' best settings, and of those with
  // fastText: the better of them is chosen unless the best model alone is clearly better on
  // validation (clearly_better_alone).
  std::vector<size_t> blend_members;
  std::vector<std::vector<float>> blend_probabilities;
  Scored blend_scored;
  auto try_blend = [&](const std::vector<size_t>& members) {
    if (!validate || members.size() < 2) return;
    std::vector<std::vector<float>> p = done[members[0]].valid_probabilities;
    for (size_t m = 1; m < members.size(); ++m)
      for (size_t r = 0; r < p.size(); ++r)
        for (size_t c = 0; c < p[r].size(); ++c) p[r][c] += done[members[m]].valid_probabilities[r][c];
    for (auto& row : p)
      for (auto& x : row) x /= static_cast<float>(members.size());
    const Scored s = score(p, valid_part);
    nlohmann::json listed = nlohmann::json::array();
    for (size_t m : members) listed.push_back({{"kind", done[m].result.kind}, {"params", done[m].result.params}});
    report->candidates.push_back({"ensemble", {{"members", listed}}, s.accuracy, s.macro_f1, 0});
    if (blend_members.empty() || s.better_than(blend_scored)) {
      blend_members = members;
      blend_probabilities = std::move(p);
      blend_scored = s;
    }
  };
  std::vector<size_t> linear_members, all_members;
  for (size_t i = 0; i < done.size(); ++i) {
    all_members.push_back(i);
    if (done[i].result.kind == "tfidf-linear") linear_members.push_back(i);
  }
  try_blend(linear_members);
  if (all_members.size() > linear_members.size()) try_blend(all_members);
  const bool blend = !blend_members.empty() &&
                     (blend_scored.better_than(done[best].scored) ||
                      !clearly_better_alone(done[best].valid_probabilities, blend_probabilities, valid_part));

  // The unknown threshold, from the chosen model's validation answers.
  double threshold = 0, unknown_rate = 0;
  if (validate && options.abstain) {
    const auto& probabilities = blend ? blend_probabilities : done[best].valid_probabilities;
    std::vector<TextPrediction> predictions;
    const int oos = out_of_scope_index(data.label_names);
    for (const auto& p : probabilities) predictions.push_back(prediction_from(p, 0, oos));
    threshold = choose_unknown_threshold(valid_part.labels, predictions, oos);
    if (oos >= 0) threshold = std::max(threshold, open_set_margin(valid_part.labels, predictions, oos));
    size_t unknown = 0;
    for (const auto& p : predictions) unknown += p.confidence < threshold || p.best == oos;
    unknown_rate = static_cast<double>(unknown) / static_cast<double>(predictions.size());
  }

  // How familiar the validation texts are to the validated model(s): the least share of known
  // words to accept; and the languages trained on.
  std::vector<std::string> languages;
  double min_coverage = 0;
  if (validate && options.abstain) {
    const int oos = out_of_scope_index(data.label_names);
    std::vector<std::shared_ptr<const TextModel>> validated;
    for (size_t m : blend ? blend_members : std::vector<size_t>{best}) validated.push_back(done[m].model);
    const EnsembleTextModel known(validated);
    std::vector<double> coverage;
    for (size_t r = 0; r < valid_part.size(); ++r) {
      if (valid_part.labels[r] == oos) continue;
      const WordCoverage words = word_coverage(known, text::prepare_text(valid_part.texts[r]).tokens);
      if (words.words > 0) coverage.push_back(words.share());
    }
    min_coverage = choose_min_coverage(std::move(coverage));
    languages = text_languages(data.texts);
  }

  // Retrain the chosen configuration(s) on all the data when the plan has room for it (decided
  // from the data's size, like the search); linear members one after another (sharing one
  // vectoriser) beside fastText's. A member not refitted stays as validated.
  tell(options, "refit on all texts");
  const std::vector<size_t> chosen_members = blend ? blend_members : std::vector<size_t>{best};
  const DataSize all = DataSize::of(data);
  double linear_refit_s = 0, fasttext_refit_s = 0;
  for (size_t m : chosen_members) {
    const auto& c = done[m];
    if (c.result.kind == "fasttext") fasttext_refit_s = std::max(fasttext_refit_s, fasttext_cost(all, c.fasttext));
    else linear_refit_s += linear_cost(all, c.linear);
  }
  if (linear_refit_s > 0) linear_refit_s += vectorise_cost(all);
  const bool refit_planned = plan.search_s + std::max(linear_refit_s, fasttext_refit_s) <= plan.planned_s;
  bool refit_all = refit_planned;
  std::shared_ptr<text::TfidfVectorizer> all_vectorizer;
  std::vector<SparseVector> all_x;
  std::vector<std::shared_ptr<const TextModel>> members(chosen_members.size());
  for (size_t i = 0; i < chosen_members.size(); ++i) members[i] = done[chosen_members[i]].model;
  if (refit_planned) {
    std::vector<size_t> fasttext_members, linear_members_chosen;
    for (size_t i = 0; i < chosen_members.size(); ++i)
      (done[chosen_members[i]].result.kind == "fasttext" ? fasttext_members : linear_members_chosen).push_back(i);
    std::thread fasttext_refit([&] {
      for (size_t i : fasttext_members) {
        try {
          members[i] = FastTextModel::train(data, done[chosen_members[i]].fasttext, cap.end);
        } catch (const TrainingTimedOut&) {
          refit_all = false;
          capped(report, "fastText's refit on all texts was stopped; the validated one is kept");
        } catch (const std::exception& e) {
          refit_all = false;
          report->notes.push_back(std::string("fastText's refit failed; the validated one is kept: ") + e.what());
        }
      }
    });
    for (size_t i : linear_members_chosen) {
      const Candidate& c = done[chosen_members[i]];
      if (cap.passed()) {
        refit_all = false;
        capped(report, "the linear refit on all texts was skipped; the validated model is kept");
        break;
      }
      const float temperature = static_cast<const LinearTextModel&>(*c.model).temperature();
      if (!all_vectorizer) {
        all_vectorizer = std::make_shared<text::TfidfVectorizer>(c.linear.tfidf);
        all_vectorizer->fit(data.texts, options.threads);
        all_x = all_vectorizer->transform_all(data.texts, options.threads);
      }
      auto m = train_linear_seeded(all_x, data.labels, data.label_names.size(), all_vectorizer, c.linear, options.seed);
      // The temperature of the validated model carries over (same loss and C, a little more data).
      m->set_temperature(temperature);
      members[i] = std::move(m);
    }
    fasttext_refit.join();
  }
  std::shared_ptr<const TextModel> final_model =
      blend ? std::make_shared<EnsembleTextModel>(std::move(members)) : members.front();
  const Scored chosen = blend ? blend_scored : done[best].scored;
  const std::string chosen_kind = blend ? "ensemble" : done[best].result.kind;
  TextClassifier out(final_model, data.label_names);
  out.threshold_ = threshold;
  out.languages_ = languages;
  out.min_coverage_ = min_coverage;
  report->languages = languages;
  report->min_coverage = min_coverage;
  report->chosen = chosen_kind;
  report->chosen_params = final_model->params();
  report->validation_accuracy = chosen.accuracy;
  report->validation_macro_f1 = chosen.macro_f1;
  report->unknown_threshold = threshold;
  report->validation_unknown_rate = unknown_rate;
  report->train_rows = train_part.size();
  report->validation_rows = valid_part.size();
  std::vector<size_t> per_class(data.label_names.size(), 0);
  for (int l : valid_part.labels) ++per_class[static_cast<size_t>(l)];
  if (!valid_part.labels.empty())
    report->majority_accuracy = static_cast<double>(*std::max_element(per_class.begin(), per_class.end())) /
                                static_cast<double>(valid_part.labels.size());
  report->refit = refit_all;
  if (!refit_planned)
    report->notes.push_back(fmt::format("kept as validated (trained on {} of {} texts): the budget plans no refit on "
                                        "all of them (a larger --budget does)",
                                        train_part.size(), data.size()));
  report->seconds = seconds_since(cap.start);
  return out;
}

const std::string& TextClassifier::label_name(int label) const {
  static const std::string unknown = "unknown";
  return label >= 0 && static_cast<size_t>(label) < labels_.size() ? labels_[static_cast<size_t>(label)] : unknown;
}

TextPrediction TextClassifier::predict(std::string_view text) const { return predict(text::prepare_text(text)); }

TextPrediction TextClassifier::predict(const text::PreparedText& text) const {
  return screened(text, model_->predict(text));
}

std::vector<TextPrediction> TextClassifier::predict_all(const std::vector<std::string>& texts, int threads) const {
  std::vector<TextPrediction> out(texts.size());
  parallel_chunks(texts.size(), threads, 64, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) out[i] = predict(texts[i]);
  });
  return out;
}

ClassificationReport TextClassifier::evaluate(const LabelledTexts& data, int threads, bool allow_unknown) const {
  std::vector<int> predicted;
  // With abstention, "unknown" is the right answer for an out-of-scope text.
  for (const auto& p : predict_all(data.texts, threads))
    predicted.push_back(!allow_unknown ? p.best : p.label < 0 && out_of_scope_ >= 0 ? out_of_scope_ : p.label);
  // Map the data's label names onto the model's.
  std::vector<int> truth;
  for (int l : data.labels) {
    const auto& name = data.label_names[static_cast<size_t>(l)];
    const auto it = std::find(labels_.begin(), labels_.end(), name);
    truth.push_back(it == labels_.end() ? -1 : static_cast<int>(it - labels_.begin()));
  }
  std::vector<std::string> names = labels_;
  // Labels the model never saw become extra classes (always wrong).
  for (size_t i = 0; i < truth.size(); ++i)
    if (truth[i] < 0) {
      const auto& name = data.label_names[static_cast<size_t>(data.labels[i])];
      auto it = std::find(names.begin(), names.end(), name);
      if (it == names.end()) {
        names.push_back(name);
        it = names.end() - 1;
      }
      truth[i] = static_cast<int>(it - names.begin());
    }
  return classification_report(truth, predicted, names);
}

// The payload's first field. The first layout began with the model kind instead.
constexpr const char* kPayloadFormat = "text-classifier/2";

void TextClassifier::save(const std::string& path, const std::string& task, const nlohmann::json& metrics) const {
  ModelHeader h;
  h.kind = "text-classifier";
  h.task = task;
  h.schema = {{"model", model_->kind()}, {"labels", labels_}, {"unknown_threshold", threshold_},
              {"languages", languages_}, {"min_coverage", min_coverage_},
              {"params", model_->params()}, {"input", "text (UTF-8)"}};
  h.metrics = metrics.is_null() ? nlohmann::json::object() : metrics;
  ByteWriter w;
  w.put_string(kPayloadFormat);
  w.put_string(model_->kind());
  w.put<double>(threshold_);
  w.put<uint32_t>(static_cast<uint32_t>(labels_.size()));
  for (const auto& l : labels_) w.put_string(l);
  w.put<uint32_t>(static_cast<uint32_t>(languages_.size()));
  for (const auto& l : languages_) w.put_string(l);
  w.put<double>(min_coverage_);
  w.put_string(model_->to_bytes());
  write_model_file(path, h, w.bytes());
}

TextClassifier TextClassifier::load(const std::string& path) { return load(path, nullptr); }

TextClassifier TextClassifier::load(const std::string& path, std::string* task) {
  const ModelFile file = read_model_file(path, "text-classifier");
  try {
    ByteReader r(file.payload);
    if (r.get_string() != kPayloadFormat)
      throw std::runtime_error("it was written by an older Persona (float weights, a vectoriser per member): train it "
                               "again with `persona train text`");
    const std::string kind = r.get_string();
    const double threshold = r.get<double>();
    const auto n = r.get<uint32_t>();
    if (n > file.payload.size()) throw std::runtime_error("model payload is truncated");
    std::vector<std::string> labels;
    for (uint32_t i = 0; i < n; ++i) labels.push_back(r.get_string());
    const auto l = r.get<uint32_t>();
    if (l > 16) throw std::runtime_error("model payload is inconsistent: languages");
    std::vector<std::string> languages;
    for (uint32_t i = 0; i < l; ++i) languages.push_back(r.get_string());
    const double min_coverage = r.get<double>();
    auto model = text_model_from_bytes(kind, r.get_view());
    if (model->classes() != static_cast<int>(labels.size()))
      throw std::runtime_error("model payload is inconsistent: class count differs from the labels");
    TextClassifier out(std::move(model), std::move(labels));
    out.threshold_ = threshold;
    out.languages_ = std::move(languages);
    out.min_coverage_ = min_coverage;
    if (task) *task = file.header.task;
    return out;
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("model file {}: {}", path, e.what()));
  }
}

}  // namespace persona::ml
