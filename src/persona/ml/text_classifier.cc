#include "persona/ml/text_classifier.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "persona/core/binary_io.h"
#include "persona/ml/fasttext_text_model.h"
#include "persona/ml/linear_text_model.h"
#include "persona/ml/model_file.h"
#include "persona/ml/validation.h"

namespace persona::ml {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The wall-time budget of one train() call, in phases (fractions of the budget from the start):
// the linear grid until 30% (60% when fastText is not a candidate), fastText's search until 60%
// (autotune for half of what is left, its final training stopped at 60%), and the refit on all
// the texts in the rest, each member stopped at the end or skipped when its measured training
// time says it would not fit. Measured times adapt to a loaded machine; fixed splits would not.
struct Budget {
  Clock::time_point start, linear_end, search_end, end;
  double total_s = 0;
  Budget(int seconds, bool with_fasttext) : start(Clock::now()), total_s(std::max(1, seconds)) {
    auto at = [&](double share) {
      return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(share * total_s));
    };
    linear_end = at(with_fasttext ? 0.3 : 0.6);
    search_end = at(0.6);
    end = at(1.0);
  }
  static double seconds_to(Clock::time_point t) { return std::chrono::duration<double>(t - Clock::now()).count(); }
  bool fits(double seconds, Clock::time_point by) const { return seconds <= seconds_to(by); }
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

std::vector<LinearTextParams> linear_grid(bool tune) {
  if (!tune) return {LinearTextParams{}};
  std::vector<LinearTextParams> grid;
  // The ranges that won on the benchmark sets: short English intents like large C, long Chinese
  // reviews small C.
  for (double c : {0.3, 1.0}) grid.push_back({LinearSolver::CrammerSinger, c, {}});
  for (double c : {4.0, 16.0, 64.0}) grid.push_back({LinearSolver::LogisticRegression, c, {}});
  for (double c : {0.3, 1.0, 4.0}) grid.push_back({LinearSolver::Svm, c, {}});
  return grid;
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

// Below this many texts one validation split is too small to tell settings apart (a few hundred
// rows, a handful per class): the linear grid is then chosen by 3-fold cross-validation.
constexpr size_t kCrossValidateBelow = 5000;

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
          {"train_rows", train_rows},
          {"validation_rows", validation_rows},
          {"seconds", seconds},
          {"budget_s", budget_s},
          {"refit", refit},
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

namespace {

void tell(const TextClassifierOptions& options, const std::string& stage) {
  if (options.on_stage) options.on_stage(stage);
}

// The linear grid on the training part, scored on the validation part (or by cross-validation on
// small sets when time allows); the chosen setting, plus each other solver's best as a blend-only
// member, go into `done`. Stops at budget.linear_end, but always trains one setting.
void train_linear_candidates(const LabelledTexts& data, const LabelledTexts& train_part,
                             const LabelledTexts& valid_part, const TextClassifierOptions& options,
                             const Budget& budget, std::vector<Candidate>& done, TextTrainingReport* report,
                             double* vectorise_s) {
  const bool validate = !valid_part.texts.empty();
  tell(options, "TF-IDF features");
  const auto v0 = Clock::now();
  auto vectorizer = std::make_shared<text::TfidfVectorizer>(text::TfidfOptions{});
  vectorizer->fit(train_part.texts, options.threads);
  const auto x_train = vectorizer->transform_all(train_part.texts, options.threads);
  const auto x_valid = vectorizer->transform_all(valid_part.texts, options.threads);
  *vectorise_s = seconds_since(v0);
  const auto settings = linear_grid(options.tune);
  std::vector<Scored> cv;
  if (options.tune && settings.size() > 1 && data.size() < kCrossValidateBelow && validate) {
    tell(options, "linear grid, 3-fold cross-validation");
    cv = cross_validate_grid(data, settings, options, budget.linear_end);
    if (cv.empty() && report) report->notes.push_back("the linear grid's cross-validation did not fit the budget: "
                                                      "chosen on the validation split alone");
  }
  const bool small = !cv.empty();
  std::vector<Candidate> grid;
  double last_fit_s = 0;
  for (size_t g = 0; g < settings.size(); ++g) {
    // A setting that would end past the linear phase is not started (the last one took last_fit_s).
    if (!grid.empty() && !budget.fits(last_fit_s, budget.linear_end)) {
      if (report)
        report->notes.push_back(fmt::format("the linear grid stopped after {} of {} settings to stay within the budget",
                                            grid.size(), settings.size()));
      break;
    }
    tell(options, fmt::format("linear grid {}/{}", g + 1, settings.size()));
    const auto& params = settings[g];
    const auto t0 = Clock::now();
    std::shared_ptr<LinearTextModel> m =
        train_linear_seeded(x_train, train_part.labels, data.label_names.size(), vectorizer, params, options.seed);
    last_fit_s = seconds_since(t0);
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
    if (report) report->candidates.push_back(c.result);
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

// fastText on the training part: autotune on the validation part for half of what is left of the
// search phase, its final training stopped at budget.search_end (without tuning, one run stopped
// there). False when nothing finished in time: the caller goes on without fastText.
bool train_fasttext_candidate(const LabelledTexts& train_part,
                              const LabelledTexts& valid_part, const TextClassifierOptions& options,
                              const Budget& budget, std::vector<Candidate>& done, TextTrainingReport* report) {
  const bool validate = !valid_part.texts.empty();
  FastTextParams params;
  params.threads = options.threads;
  params.seed = static_cast<int>(options.seed);
  const double left = Budget::seconds_to(budget.search_end);
  if (options.tune && validate) params.autotune_seconds = static_cast<int>(left / 2);
  if (params.autotune_seconds < 2) params.autotune_seconds = 0;  // too little to search: one run at the defaults
  tell(options, params.autotune_seconds > 0 ? "fastText search" : "fastText");
  const auto t0 = Clock::now();
  std::unique_ptr<FastTextModel> m;
  try {
    m = FastTextModel::train(train_part, params, validate ? &valid_part : nullptr, budget.search_end);
  } catch (const TrainingTimedOut&) {
    if (report)
      report->notes.push_back(fmt::format("fastText did not finish a training run within the {:.0f} s it had: "
                                          "left out (a larger --budget gives it time)", seconds_since(t0)));
    return false;
  }
  Candidate c;
  if (validate) {
    c.valid_probabilities = m->predict_all(valid_part.texts, options.threads);
    c.scored = score(c.valid_probabilities, valid_part);
  }
  c.fasttext = m->used_params();
  c.fasttext.autotune_seconds = 0;
  c.result = {"fasttext", m->params(), c.scored.accuracy, c.scored.macro_f1, seconds_since(t0)};
  c.model = std::move(m);
  if (report) report->candidates.push_back(c.result);
  done.push_back(std::move(c));
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
  const Budget budget(options.time_budget_s, want_fasttext && want_linear);
  if (report) report->budget_s = budget.total_s;

  auto [train_rows, valid_rows] = stratified_split(data.labels, options.validation_fraction, options.seed);
  const LabelledTexts train_part = data.subset(train_rows), valid_part = data.subset(valid_rows);
  const bool validate = !valid_part.texts.empty();
  std::vector<Candidate> done;
  double vectorise_s = 0;
  if (want_linear) train_linear_candidates(data, train_part, valid_part, options, budget, done, report, &vectorise_s);
  if (want_fasttext && !train_fasttext_candidate(train_part, valid_part, options, budget, done, report) &&
      done.empty())
    throw TrainingTimedOut(fmt::format("fastText could not train within the budget of {:.0f} s: give a larger budget, "
                                       "or let the linear model be a candidate",
                                       budget.total_s));
  size_t best = done.size();
  for (size_t i = 0; i < done.size(); ++i)
    if (!done[i].blend_only && (best == done.size() || done[i].scored.better_than(done[best].scored))) best = i;

  // Blends (averaged probabilities) of the linear solvers' best settings, and of those with
  // fastText: chosen when validation prefers one to the best model alone.
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
    if (report) report->candidates.push_back({"ensemble", {{"members", listed}}, s.accuracy, s.macro_f1, 0});
    if (s.better_than(blend_members.empty() ? done[best].scored : blend_scored)) {
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
  const bool blend = !blend_members.empty();

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

  // Retrain the chosen configuration(s) on all the data, linear members first (sharing one
  // vectoriser) and only when their measured training time fits what is left; fastText is
  // stopped at the end of the budget. A member not refitted stays as validated.
  tell(options, "refit on all texts");
  const std::vector<size_t> chosen_members = blend ? blend_members : std::vector<size_t>{best};
  const double scale = static_cast<double>(data.size()) / static_cast<double>(std::max<size_t>(1, train_part.size()));
  std::shared_ptr<text::TfidfVectorizer> all_vectorizer;
  std::vector<SparseVector> all_x;
  bool refit_all = true;
  auto refit = [&](const Candidate& c) -> std::shared_ptr<const TextModel> {
    if (c.result.kind == "fasttext") {
      try {
        return FastTextModel::train(data, c.fasttext, nullptr, budget.end);
      } catch (const TrainingTimedOut&) {
        refit_all = false;
        return c.model;
      }
    }
    // 1.25: liblinear's time grows a little faster than the rows, and a loaded machine varies.
    const double estimate = 1.25 * scale * ((all_vectorizer ? 0 : vectorise_s) + c.result.seconds);
    if (!budget.fits(estimate, budget.end)) {
      refit_all = false;
      return c.model;
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
    return m;
  };
  std::vector<std::shared_ptr<const TextModel>> members(chosen_members.size());
  // Linear members first: fastText, which can be stopped, takes whatever time is left.
  for (int pass = 0; pass < 2; ++pass)
    for (size_t i = 0; i < chosen_members.size(); ++i)
      if ((done[chosen_members[i]].result.kind == "fasttext") == (pass == 1)) members[i] = refit(done[chosen_members[i]]);
  std::shared_ptr<const TextModel> final_model =
      blend ? std::make_shared<EnsembleTextModel>(std::move(members)) : members.front();
  const Scored chosen = blend ? blend_scored : done[best].scored;
  const std::string chosen_kind = blend ? "ensemble" : done[best].result.kind;
  TextClassifier out(final_model, data.label_names);
  out.threshold_ = threshold;
  if (report) {
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
    if (!refit_all)
      report->notes.push_back(fmt::format("kept as validated (trained on {} of {} texts): the refit on all of them "
                                          "did not fit the budget",
                                          train_part.size(), data.size()));
    report->seconds = seconds_since(budget.start);
  }
  return out;
}

const std::string& TextClassifier::label_name(int label) const {
  static const std::string unknown = "unknown";
  return label >= 0 && static_cast<size_t>(label) < labels_.size() ? labels_[static_cast<size_t>(label)] : unknown;
}

TextPrediction TextClassifier::predict(std::string_view text) const {
  return prediction_from(model_->predict(text), threshold_, out_of_scope_);
}

std::vector<TextPrediction> TextClassifier::predict_all(const std::vector<std::string>& texts, int threads) const {
  std::vector<TextPrediction> out;
  for (auto& p : model_->predict_all(texts, threads)) out.push_back(prediction_from(std::move(p), threshold_, out_of_scope_));
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

void TextClassifier::save(const std::string& path, const std::string& task, const nlohmann::json& metrics) const {
  ModelHeader h;
  h.kind = "text-classifier";
  h.task = task;
  h.schema = {{"model", model_->kind()}, {"labels", labels_}, {"unknown_threshold", threshold_},
              {"params", model_->params()}, {"input", "text (UTF-8)"}};
  h.metrics = metrics.is_null() ? nlohmann::json::object() : metrics;
  ByteWriter w;
  w.put_string(model_->kind());
  w.put<double>(threshold_);
  w.put<uint32_t>(static_cast<uint32_t>(labels_.size()));
  for (const auto& l : labels_) w.put_string(l);
  w.put_string(model_->to_bytes());
  write_model_file(path, h, w.bytes());
}

TextClassifier TextClassifier::load(const std::string& path) { return load(path, nullptr); }

TextClassifier TextClassifier::load(const std::string& path, std::string* task) {
  const ModelFile file = read_model_file(path, "text-classifier");
  try {
    ByteReader r(file.payload);
    const std::string kind = r.get_string();
    const double threshold = r.get<double>();
    const auto n = r.get<uint32_t>();
    if (n > file.payload.size()) throw std::runtime_error("model payload is truncated");
    std::vector<std::string> labels;
    for (uint32_t i = 0; i < n; ++i) labels.push_back(r.get_string());
    auto model = text_model_from_bytes(kind, r.get_string());
    if (model->classes() != static_cast<int>(labels.size()))
      throw std::runtime_error("model payload is inconsistent: class count differs from the labels");
    TextClassifier out(std::move(model), std::move(labels));
    out.threshold_ = threshold;
    if (task) *task = file.header.task;
    return out;
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("model file {}: {}", path, e.what()));
  }
}

}  // namespace persona::ml
