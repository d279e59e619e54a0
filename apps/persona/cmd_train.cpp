// persona train / predict / forecast: the demand models — text classifiers, keyword weights,
// purchase propensity, next category — and demand forecasts.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include <fmt/format.h>

#include "commands.h"
#include "persona/pipeline/erasure.h"
#include "persona/core/error.h"
#include "persona/core/progress.h"
#include "persona/core/time.h"
#include "persona/demand/forecast.h"
#include "persona/demand/next_category.h"
#include "persona/demand/propensity.h"
#include "persona/demand/text_analysis.h"
#include "persona/ml/metrics.h"
#include "persona/ml/text_classifier.h"
#include "persona/ml/validation.h"
#include "persona/pipeline/labelled_texts.h"
#include "persona/pipeline/tabular_file.h"

namespace persona::cli {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Where labelled texts come from: a file read with a preset, or the store.
struct TextSource {
  std::string file, preset, store, config, text_column, label_column;
};

void add_text_source(CLI::App* sub, TextSource& s) {
  sub->add_option("file", s.file, "Labelled file (omit to train on the store's texts)");
  sub->add_option("-p,--preset", s.preset,
                  "How to read the file (see `persona presets`); without one: any .csv/.tsv/.jsonl/.json file with "
                  "the columns text and label");
  sub->add_option("--text-column", s.text_column, "The column (JSON key) that holds the text");
  sub->add_option("--label-column", s.label_column, "The column (JSON key) that holds the label");
  sub->add_option("-s,--store", s.store, "Store: a file, or a postgresql:// URL (when no file is given)");
  sub->add_option("-c,--config", s.config, "Config file (for its store path)");
}

ml::LabelledTexts read_texts(const TextSource& s, const std::string& field, pipeline::LabelledTextReport& report) {
  if (!s.file.empty()) {
    const auto source = pipeline::labelled_text_source(s.preset, s.file, field, s.text_column, s.label_column);
    return pipeline::read_labelled_texts(source, source.rules, field, &report);
  }
  auto store = open_existing_store(store_path_from(s.store, s.config));
  return pipeline::read_store_texts(*store, field, &report);
}

void warn_rejects(const pipeline::LabelledTextReport& r, bool quiet) {
  if (quiet || (r.rejected == 0 && r.without_label == 0)) return;
  fmt::print(stderr, "{}: {} of {} rows left out ({} rejected, {} without a label)\n", r.path.empty() ? r.source : r.path,
             r.rejected + r.without_label, r.rows, r.rejected, r.without_label);
  for (size_t i = 0; i < r.problems.size() && i < 5; ++i) fmt::print(stderr, "  {}\n", r.problems[i]);
}

struct TextTrainArgs {
  TextSource source;
  std::string task, label, test, models, out, model = "auto";
  int budget = 120, threads = 2;
  uint64_t seed = 1;
  bool no_tune = false, no_unknown = false;
};

CLI::App* add_text_training(CLI::App* train, const std::string& name, const std::string& help,
                            std::shared_ptr<TextTrainArgs> args) {
  auto* sub = train->add_subcommand(name, help);
  sub->fallthrough();
  add_text_source(sub, args->source);
  if (name == "text") {
    sub->add_option("--task", args->task, "Task name: the model is saved as <models>/<task>.model")->required();
    sub->add_option("--label", args->label, "label, category, sentiment or category/label")->required();
  } else {
    sub->add_option("--label", args->label, "Override the label field (label, category, sentiment or category/label)");
  }
  sub->add_option("--test", args->test, "A test file (same preset): report accuracy and macro-F1 on it");
  sub->add_option("--models", args->models, "Model directory (default $PERSONA_MODELS or ./models)");
  sub->add_option("-o,--out", args->out, "Model file (default <models>/<task>.model)");
  sub->add_option("--model", args->model, "auto (pick by validation score), tfidf-linear or fasttext")
      ->check(CLI::IsMember({"auto", "tfidf-linear", "fasttext"}));
  sub->add_option("--budget", args->budget, "Seconds for the whole training: plans the search from the data's size (the same model on any machine) and caps the wall time")->check(CLI::Range(1, 86400));
  sub->add_flag("--no-tune", args->no_tune, "Default parameters, no search");
  sub->add_flag("--no-unknown", args->no_unknown, "Never answer unknown (no confidence threshold)");
  sub->add_option("--seed", args->seed, "Random seed");
  sub->add_option("--threads", args->threads, "Threads")->check(CLI::Range(1, 256));
  return sub;
}

int run_text_training(const TextTrainArgs& a, const std::string& task_name, const std::string& field, Common& common) {
  pipeline::LabelledTextReport read;
  const auto data = read_texts(a.source, field, read);
  warn_rejects(read, common.quiet || common.json);
  if (data.size() < 2 || data.label_names.size() < 2)
    throw Error(fmt::format("not enough labelled texts to train: {} texts, {} classes", data.size(), data.label_names.size()),
                {a.source.file}, fmt::format("check the preset and the label field ({})", field));
  ml::TextClassifierOptions options;
  if (a.model != "auto") options.candidates = {a.model};
  options.tune = !a.no_tune;
  options.abstain = !a.no_unknown;
  options.time_budget_s = a.budget;
  options.threads = a.threads;
  options.seed = a.seed;
  if (!common.quiet && !common.json)
    fmt::print(stderr, "training {} on {} texts, {} classes ...\n", task_name, data.size(), data.label_names.size());
  ml::TextTrainingReport report;
  const auto t0 = Clock::now();
  std::optional<ml::TextClassifier> trained;
  {
    StatusLine status(fmt::format("training {}", task_name), a.budget, !common.quiet && !common.json);
    options.on_stage = [&status](const std::string& stage) { status.stage(stage); };
    try {
      trained = ml::TextClassifier::train(data, options, &report);
    } catch (const ml::TrainingTimedOut& e) {
      throw Error(e.what(), {a.source.file}, fmt::format("--budget {} was too short for --model {}", a.budget, a.model));
    }
  }
  const auto& classifier = *trained;
  const double train_s = since(t0);
  if (report.capped && !common.quiet)
    fmt::print(stderr, "warning: the --budget {} s ran out before the planned training was done: this model depends on "
               "this machine's speed and is not reproducible; a larger --budget gives a reproducible one\n", a.budget);
  nlohmann::json result = {{"task", task_name}, {"label_field", field}, {"read", read.to_json()},
                           {"training", report.to_json()}, {"train_s", train_s}};
  nlohmann::json metrics = {{"validation_accuracy", report.validation_accuracy},
                            {"validation_macro_f1", report.validation_macro_f1},
                            {"majority_accuracy", report.majority_accuracy}, {"validation_texts", report.validation_rows}};
  ml::ClassificationReport test_report;
  if (!a.test.empty()) {
    const auto source =
        pipeline::labelled_text_source(a.source.preset, a.test, field, a.source.text_column, a.source.label_column);
    pipeline::LabelledTextReport test_read;
    const auto test = pipeline::read_labelled_texts(source, source.rules, field, &test_read);
    warn_rejects(test_read, common.quiet || common.json);
    const auto p0 = Clock::now();
    test_report = classifier.evaluate(test, a.threads);
    const double pred_s = since(p0);
    result["test"] = test_report.to_json();
    result["test"]["read"] = test_read.to_json();
    result["test"]["pred_per_s"] = pred_s > 0 ? static_cast<double>(test.size()) / pred_s : 0;
    metrics["test_accuracy"] = test_report.accuracy;
    metrics["test_macro_f1"] = test_report.macro.f1;
  }
  const std::string path =
      !a.out.empty() ? a.out
                     : (std::filesystem::path(demand::models_dir_from(a.models)) / (task_name + ".model")).string();
  classifier.save(path, task_name, metrics);
  result["model_file"] = path;
  if (common.json) {
    print_json(result);
    return 0;
  }
  fmt::print("{}: {} texts, {} classes; chose {} {} (validation accuracy {:.4f}, macro-F1 {:.4f})\n", task_name,
             data.size(), data.label_names.size(), report.chosen, report.chosen_params.dump(), report.validation_accuracy,
             report.validation_macro_f1);
  for (const auto& c : report.candidates)
    fmt::print("  tried {:<13} {:<60} accuracy {:.4f} macro-F1 {:.4f} ({:.1f} s)\n", c.kind, c.params.dump(), c.accuracy,
               c.macro_f1, c.seconds);
  for (const auto& note : report.notes) fmt::print("note: {}\n", note);
  if (options.abstain)
    fmt::print("unknown below confidence {:.3f} ({:.1f}% of validation texts)\n", report.unknown_threshold,
               100 * report.validation_unknown_rate);
  if (!a.test.empty()) fmt::print("\ntest set {}:\n{}", a.test, test_report.to_text());
  fmt::print("trained in {:.1f} s (budget {} s); saved {}\n", train_s, a.budget, path);
  return 0;
}

struct PropensityArgs {
  std::string store, config, snapshot, test_snapshot, learner = "auto", search = "grid", out, models, home_region;
  int horizon = 90, folds = 5, trials = 8, threads = 2;
  uint64_t seed = 1;
};

// The small search spaces `persona train propensity` tries per learner.
ml::ParamSpace search_space(const std::string& learner) {
  if (learner == "logistic") return {{"C", {0.01, 0.1, 1.0, 10.0}}};
  if (learner == "mlp") return {{"alpha", {1e-4, 1e-2, 1e-1}}, {"hidden1", {32, 64}}, {"hidden2", {0, 32}}};
  return {{"max_depth", {2, 3, 4}}, {"eta", {0.03, 0.1}}, {"min_child_weight", {1, 5}}};
}

struct LearnerChoice {
  std::string learner;
  ml::Params params;
  double score = -INFINITY;
  nlohmann::json search = nlohmann::json::object();
};

// Cross-validates each candidate learner (with a grid or random search over its small space),
// then their ensemble when `learner` is auto or ensemble, and keeps the best by `metric`.
LearnerChoice choose_learner(const ml::TabularData& data, const std::vector<ml::Fold>& folds, const std::string& learner,
                             const std::string& search, int trials, uint64_t seed, int threads, const std::string& metric) {
  const bool several = learner == "auto" || learner == "ensemble";
  const std::vector<std::string> learners =
      several ? std::vector<std::string>{"logistic", "mlp", "xgboost"} : std::vector<std::string>{learner};
  LearnerChoice best;
  ml::Params tuned;  // every learner's best parameters, as learner.name (the ensemble's)
  for (const auto& l : learners) {
    ml::Params fixed;
    if (l != "logistic") fixed["seed"] = static_cast<double>(seed);
    if (l == "xgboost") fixed["threads"] = threads;
    ml::SearchResult r;
    if (search == "none") {
      r.best = fixed;
      r.best_score = ml::cross_validate(l, fixed, data, folds, metric).mean;
    } else if (search == "random") {
      r = ml::random_search(l, search_space(l), fixed, trials, seed, data, folds, metric);
    } else {
      r = ml::grid_search(l, search_space(l), fixed, data, folds, metric);
    }
    best.search[l] = {{"cv_" + metric, r.best_score}, {"params", r.best}, {"trials", std::max<size_t>(1, r.trials.size())}};
    if (r.best_score > best.score) {
      best.score = r.best_score;
      best.learner = l;
      best.params = r.best;
    }
    for (const auto& [name, value] : r.best) tuned[l + "." + name] = value;
  }
  if (several) {
    // The average of the tuned learners, kept only when cross-validation prefers it.
    const double cv = ml::cross_validate("ensemble", tuned, data, folds, metric).mean;
    best.search["ensemble"] = {{"cv_" + metric, cv}, {"params", tuned}, {"trials", 1}};
    if (cv > best.score || learner == "ensemble") {
      best.score = cv;
      best.learner = "ensemble";
      best.params = tuned;
    }
  }
  return best;
}

// Each row's positive-class score from a model that did not see it (the chosen learner refitted
// on the other folds).
std::vector<double> out_of_fold_positive(const LearnerChoice& choice, const ml::TabularData& data,
                                         const std::vector<ml::Fold>& folds) {
  std::vector<double> scores(data.rows(), 0.0);
  for (const auto& fold : folds) {
    auto m = ml::make_tabular_classifier(choice.learner, choice.params);
    m->fit(data.subset(fold.train));
    const auto p = m->predict_positive(data.subset(fold.test).x);
    for (size_t i = 0; i < fold.test.size(); ++i) scores[fold.test[i]] = p[i];
  }
  return scores;
}

int run_propensity(const PropensityArgs& a, Common& common) {
  auto store = open_existing_store(store_path_from(a.store, a.config));
  const auto events = store->events();
  const int64_t snapshot = parse_date(a.snapshot, "--snapshot");
  const auto train = demand::propensity_set(events, snapshot, a.horizon, a.home_region);
  if (train.data.rows() < 10) throw Error(fmt::format("only {} customers with purchases before {}", train.data.rows(), a.snapshot), {}, "choose a later --snapshot");
  const auto t0 = Clock::now();
  const auto folds = ml::kfold(train.data.rows(), a.folds, a.seed, &train.data.y);
  const auto choice = choose_learner(train.data, folds, a.learner, a.search, a.trials, a.seed, a.threads, "auc");
  const nlohmann::json& search = choice.search;
  auto model = ml::make_tabular_classifier(choice.learner, choice.params);
  const auto f0 = Clock::now();
  model->fit(train.data);
  const double fit_s = since(f0), train_s = since(t0);
  // The threshold is chosen on out-of-fold scores: on the training rows' own scores it is
  // optimistic, and with many repeat buyers a bare F1 maximum flags everyone.
  const auto point = ml::choose_operating_point(train.data.y, out_of_fold_positive(choice, train.data, folds));
  const double threshold = point.threshold;
  nlohmann::json result = {{"snapshot", a.snapshot}, {"horizon_days", a.horizon}, {"home_region", train.home_region},
                           {"train_population", train.data.rows()}, {"train_positive_rate", train.positive_rate()},
                           {"base_rate", train.positive_rate()},
                           {"learner", choice.learner}, {"params", model->params()}, {"cv_folds", a.folds},
                           {"search", search}, {"threshold", threshold}, {"operating_point", point.to_json()},
                           {"train_s", train_s}, {"fit_s", fit_s}};
  nlohmann::json metrics = {{"cv_auc", choice.score}, {"threshold", threshold}, {"base_rate", train.positive_rate()},
                            {"operating_point", point.to_json()}};
  if (!a.test_snapshot.empty()) {
    const auto test = demand::propensity_set(events, parse_date(a.test_snapshot, "--test-snapshot"), a.horizon,
                                             train.home_region);
    const auto p = model->predict_positive(test.data.x);
    const double auc = ml::roc_auc(test.data.y, p), logloss = ml::log_loss(test.data.y, p),
                 f1 = ml::f1_at(test.data.y, p, threshold);
    result["test_operating_point"] = ml::operating_point(test.data.y, p, threshold).to_json();
    result["test_snapshot"] = a.test_snapshot;
    result["test_population"] = test.data.rows();
    result["test_positive_rate"] = test.positive_rate();
    result["auc"] = auc;
    result["logloss"] = logloss;
    result["f1"] = f1;
    result["calibration"] = ml::calibration(test.data.y, p).to_json();
    metrics["test_auc"] = auc;
    metrics["test_logloss"] = logloss;
    metrics["test_f1"] = f1;
  }
  const std::string path = !a.out.empty() ? a.out
                                          : (std::filesystem::path(demand::models_dir_from(a.models)) / "propensity.model").string();
  nlohmann::json saved_metrics = metrics;
  saved_metrics["home_region"] = train.home_region;
  saved_metrics["horizon_days"] = a.horizon;
  ml::save_tabular_model(path, "propensity", *model, demand::propensity_features(), {"no purchase", "purchase"},
                         saved_metrics);
  result["model_file"] = path;
  if (common.json) {
    print_json(result);
    return 0;
  }
  fmt::print("propensity at {} (next {} days): {} customers, {:.1f}% bought again\n", a.snapshot, a.horizon,
             train.data.rows(), 100 * train.positive_rate());
  for (const auto& [learner, s] : search.items())
    fmt::print("  {:<9} cross-validated AUC {:.4f}  {}\n", learner, s["cv_auc"].get<double>(), s["params"].dump());
  if (point.useful)
    fmt::print("chose {}; threshold {:.2f} flags {:.1f}% of customers, precision {:.3f} ({:.2f}x the base rate {:.3f}), "
               "recall {:.3f}, F1 {:.3f} (everyone flagged: {:.3f}; out-of-fold); trained in {:.2f} s\n",
               choice.learner, threshold, 100 * point.flagged, point.precision, point.lift, point.base_rate, point.recall,
               point.f1, point.everyone_f1, train_s);
  else
    fmt::print("chose {}; no threshold beats flagging every customer (base rate {:.3f}, F1 {:.3f}): rank customers by "
               "their score instead of cutting at one; trained in {:.2f} s\n",
               choice.learner, point.base_rate, point.everyone_f1, train_s);
  if (result.contains("auc"))
    fmt::print("test at {}: {} customers, positive rate {:.3f}; AUC {:.4f}, log-loss {:.4f}, F1 {:.4f}\n",
               a.test_snapshot, result["test_population"].get<size_t>(), result["test_positive_rate"].get<double>(),
               result["auc"].get<double>(), result["logloss"].get<double>(), result["f1"].get<double>());
  fmt::print("saved {}\n", path);
  return 0;
}

struct TabularArgs {
  std::vector<std::string> features;
  std::string file, label, learner = "auto", search = "grid", cv = "kfold", time_column, metric, test, out,
      models;
  int folds = 5, trials = 8, threads = 2;
  uint64_t seed = 1;
};

void warn_skipped(const pipeline::TabularFile& f, bool quiet) {
  if (quiet || f.skipped == 0) return;
  fmt::print(stderr, "{} of {} rows left out\n", f.skipped, f.rows);
  for (size_t i = 0; i < f.problems.size() && i < 5; ++i) fmt::print(stderr, "  {}\n", f.problems[i]);
}

int run_tabular(const TabularArgs& a, Common& common) {
  pipeline::TabularFileOptions o;
  o.label = a.label;
  o.features = a.features;
  o.time_column = a.time_column;
  const auto file = pipeline::read_tabular_file(a.file, o);
  warn_skipped(file, common.quiet || common.json);
  const auto& data = file.data;
  if (data.rows() < static_cast<size_t>(a.folds) * 2 || data.classes() < 2)
    throw Error(fmt::format("not enough rows or classes to train: {} rows, {} classes", data.rows(), data.classes()),
                {a.file});
  const std::string metric = !a.metric.empty() ? a.metric : data.classes() == 2 ? "auc" : "macro_f1";
  std::vector<ml::Fold> folds;
  if (a.cv == "time") {
    if (a.time_column.empty()) throw Error("--cv time needs --time-column", {a.file});
    folds = ml::time_folds(file.times, a.folds);
  } else {
    folds = ml::kfold(data.rows(), a.folds, a.seed, &data.y);
  }
  const auto t0 = Clock::now();
  const auto choice = choose_learner(data, folds, a.learner, a.search, a.trials, a.seed, a.threads, metric);
  auto model = ml::make_tabular_classifier(choice.learner, choice.params);
  model->fit(data);
  const double train_s = since(t0);
  nlohmann::json result = {{"file", a.file}, {"read", file.report()}, {"cv", a.cv}, {"folds", folds.size()},
                           {"metric", metric}, {"learner", choice.learner}, {"params", model->params()},
                           {"search", choice.search}, {"cv_score", choice.score}, {"train_s", train_s}};
  nlohmann::json metrics = {{"cv_" + metric, choice.score}};
  ml::ClassificationReport report;
  if (!a.test.empty()) {
    o.class_names = data.class_names;
    const auto test = pipeline::read_tabular_file(a.test, o);
    warn_skipped(test, common.quiet || common.json);
    const ml::Matrix p = model->predict_proba(test.data.x);
    std::vector<int> predicted, truth;
    std::vector<std::string> names = data.class_names;
    for (Eigen::Index i = 0; i < p.rows(); ++i) {
      Eigen::Index c;
      p.row(i).maxCoeff(&c);
      predicted.push_back(static_cast<int>(c));
      int t = test.data.y[static_cast<size_t>(i)];
      if (t < 0) {  // a class the training file did not have: always wrong
        names.push_back("(unseen)");
        t = static_cast<int>(names.size()) - 1;
      }
      truth.push_back(t);
    }
    report = ml::classification_report(truth, predicted, names);
    result["test"] = report.to_json();
    result["test"]["read"] = test.report();
    if (data.classes() == 2) {
      std::vector<double> pos(static_cast<size_t>(p.rows()));
      for (Eigen::Index i = 0; i < p.rows(); ++i) pos[static_cast<size_t>(i)] = p(i, 1);
      result["test"]["auc"] = ml::roc_auc(test.data.y, pos);
      result["test"]["logloss"] = ml::log_loss(test.data.y, pos);
      metrics["test_auc"] = result["test"]["auc"];
    }
    metrics["test_accuracy"] = report.accuracy;
  }
  const std::string path = !a.out.empty() ? a.out
                                          : (std::filesystem::path(demand::models_dir_from(a.models)) / "tabular.model").string();
  ml::save_tabular_model(path, "tabular", *model, data.feature_names, data.class_names, metrics);
  result["model_file"] = path;
  if (common.json) {
    print_json(result);
    return 0;
  }
  fmt::print("{}: {} rows, {} features, {} classes; {} cross-validation, {} folds\n", a.file, data.rows(),
             data.feature_names.size(), data.classes(), a.cv, folds.size());
  for (const auto& [learner, s] : choice.search.items())
    fmt::print("  {:<9} cv {} {:.4f}  {}\n", learner, metric, s["cv_" + metric].get<double>(), s["params"].dump());
  fmt::print("chose {}; trained in {:.2f} s\n", choice.learner, train_s);
  if (!a.test.empty()) {
    fmt::print("\ntest set {}:\n{}", a.test, report.to_text());
    if (result["test"].contains("auc")) fmt::print("ROC-AUC {:.4f}\n", result["test"]["auc"].get<double>());
  }
  fmt::print("saved {}\n", path);
  return 0;
}

}  // namespace

Command add_train(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand(
      "train", "Train a model: sentiment, category, intent, text, keywords, propensity, next-category, tabular, recommend");
  sub->require_subcommand(1);
  std::vector<std::function<int()>> runners;
  for (auto task : {demand::TextTask::Sentiment, demand::TextTask::Category, demand::TextTask::Intent}) {
    auto args = std::make_shared<TextTrainArgs>();
    const std::string name = demand::text_task_name(task);
    auto* s = add_text_training(sub, name, fmt::format("Train the {} classifier", name), args);
    runners.push_back([s, args, task, name, &common]() -> int {
      if (!s->parsed()) return -1;
      return run_text_training(*args, name, args->label.empty() ? demand::default_label_field(task) : args->label, common);
    });
  }
  {
    auto args = std::make_shared<TextTrainArgs>();
    auto* s = add_text_training(sub, "text", "Train a text classifier for any labelled set (--task, --label)", args);
    runners.push_back([s, args, &common]() -> int {
      if (!s->parsed()) return -1;
      pipeline::check_label_field(args->label);
      return run_text_training(*args, args->task, args->label, common);
    });
  }
  {
    auto source = std::make_shared<TextSource>();
    auto models = std::make_shared<std::string>();
    auto* s = sub->add_subcommand("keywords", "Word document frequencies for TF-IDF keywords, from a corpus");
    s->fallthrough();
    add_text_source(s, *source);
    s->add_option("--models", *models, "Model directory");
    runners.push_back([s, source, models, &common]() -> int {
      if (!s->parsed()) return -1;
      text::KeywordIndex index;
      if (!source->file.empty()) {
        const auto src = pipeline::labelled_text_source(source->preset, source->file, "label", source->text_column);
        pipeline::RunOptions options;
        options.progress = false;
        pipeline::run_source(src, src.rules, [&](const io::Record&, std::vector<io::FieldValue>& values,
                                                 const prep::RowVerdict& verdict, io::Mapper& mapper) {
          if (!verdict.kept) return;
          auto m = mapper.build(values);
          if (m.text && !m.text->body.empty()) index.add_document(m.text->body);
        }, options);
      } else {
        auto store = open_existing_store(store_path_from(source->store, source->config));
        store->for_each_text([&](const Text& t) { index.add_document(t.body); });
      }
      if (index.documents() == 0) throw Error("no texts to learn keyword weights from");
      const auto path = demand::keyword_index_path(demand::models_dir_from(*models));
      demand::save_keyword_index(index, path);
      if (common.json) print_json({{"documents", index.documents()}, {"model_file", path}});
      else fmt::print("keyword weights from {} texts; saved {}\n", index.documents(), path);
      return 0;
    });
  }
  {
    auto args = std::make_shared<PropensityArgs>();
    auto* s = sub->add_subcommand("propensity", "Purchase propensity: will a customer buy within the horizon after a snapshot?");
    s->fallthrough();
    s->add_option("-s,--store", args->store, "Store: a file, or a postgresql:// URL");
    s->add_option("-c,--config", args->config, "Config file (for its store path)");
    s->add_option("--snapshot", args->snapshot, "Training snapshot date (features before it, label after it)")->required();
    s->add_option("--test-snapshot", args->test_snapshot, "A later snapshot to test on");
    s->add_option("--horizon", args->horizon, "Days after the snapshot the label looks at")->check(CLI::Range(1, 3650));
    s->add_option("--learner", args->learner, "auto, logistic, mlp, xgboost or ensemble (their average)")
        ->check(CLI::IsMember({"auto", "logistic", "mlp", "xgboost", "ensemble"}));
    s->add_option("--search", args->search, "grid, random or none")->check(CLI::IsMember({"grid", "random", "none"}));
    s->add_option("--folds", args->folds, "Cross-validation folds")->check(CLI::Range(2, 50));
    s->add_option("--trials", args->trials, "Random search trials")->check(CLI::Range(1, 1000));
    s->add_option("--home-region", args->home_region, "The region the home_region feature tests (default: the most common)");
    s->add_option("--seed", args->seed, "Random seed");
    s->add_option("--threads", args->threads, "Threads")->check(CLI::Range(1, 256));
    s->add_option("--models", args->models, "Model directory");
    s->add_option("-o,--out", args->out, "Model file (default <models>/propensity.model)");
    runners.push_back([s, args, &common]() -> int {
      if (!s->parsed()) return -1;
      return run_propensity(*args, common);
    });
  }
  {
    auto args = std::make_shared<TabularArgs>();
    auto* s = sub->add_subcommand("tabular", "Any CSV of numeric features and a label: cross-validated learner choice");
    s->fallthrough();
    s->add_option("file", args->file, "Training CSV (TSV, gzip or not)")->required();
    s->add_option("--label", args->label, "The label column")->required();
    s->add_option("--features", args->features, "Feature columns, comma-separated (default: every other column)")
        ->delimiter(',');
    s->add_option("--learner", args->learner, "auto, logistic, mlp, xgboost or ensemble")
        ->check(CLI::IsMember({"auto", "logistic", "mlp", "xgboost", "ensemble"}));
    s->add_option("--search", args->search, "grid, random or none")->check(CLI::IsMember({"grid", "random", "none"}));
    s->add_option("--trials", args->trials, "Random search trials")->check(CLI::Range(1, 1000));
    s->add_option("--cv", args->cv, "kfold (stratified) or time (expanding windows by --time-column)")
        ->check(CLI::IsMember({"kfold", "time"}));
    s->add_option("--time-column", args->time_column, "Timestamp column for --cv time (ISO 8601 or unix)");
    s->add_option("--folds", args->folds, "Folds")->check(CLI::Range(2, 50));
    s->add_option("--metric", args->metric, "auc, logloss, accuracy or macro_f1 (default: auc for two classes)")
        ->check(CLI::IsMember({"auc", "logloss", "accuracy", "macro_f1"}));
    s->add_option("--test", args->test, "A test CSV with the same columns: classification report");
    s->add_option("--seed", args->seed, "Random seed");
    s->add_option("--threads", args->threads, "Threads")->check(CLI::Range(1, 256));
    s->add_option("--models", args->models, "Model directory");
    s->add_option("-o,--out", args->out, "Model file (default <models>/tabular.model)");
    runners.push_back([s, args, &common]() -> int {
      if (!s->parsed()) return -1;
      return run_tabular(*args, common);
    });
  }
  {
    struct Args {
      std::string store, config, cutoff, models, out;
    };
    auto args = std::make_shared<Args>();
    auto* s = sub->add_subcommand("next-category", "Which category each customer buys from next");
    s->fallthrough();
    s->add_option("-s,--store", args->store, "Store: a file, or a postgresql:// URL");
    s->add_option("-c,--config", args->config, "Config file (for its store path)");
    s->add_option("--cutoff", args->cutoff, "Evaluate on purchases from this date on (default: the last 20% of time)");
    s->add_option("--models", args->models, "Model directory");
    s->add_option("-o,--out", args->out, "Model file (default <models>/next-category.model)");
    runners.push_back([s, args, &common]() -> int {
      if (!s->parsed()) return -1;
      auto store = open_existing_store(store_path_from(args->store, args->config));
      const auto events = store->events();
      if (events.size() == 0) throw Error("the store has no events");
      const int64_t cutoff = !args->cutoff.empty()
                                 ? parse_date(args->cutoff, "--cutoff")
                                 : events.timestamp.front() + (events.timestamp.back() - events.timestamp.front()) * 4 / 5;
      const auto held = demand::NextCategoryModel::fit(events, cutoff);
      const auto evaluation = held.evaluate(events, cutoff);
      const auto model = demand::NextCategoryModel::fit(events, INT64_MAX);
      const auto path = !args->out.empty() ? args->out
                                           : (std::filesystem::path(demand::models_dir_from(args->models)) / "next-category.model").string();
      model.save(path, evaluation.to_json());
      nlohmann::json j = {{"categories", model.categories().size()}, {"own_weight", model.own_weight()},
                          {"transition_weight", model.transition_weight()}, {"evaluation", evaluation.to_json()},
                          {"model_file", path}};
      if (common.json) print_json(j);
      else
        fmt::print("next category over {} categories (own {:.1f}, transition {:.1f}): {} customers after the cutoff, "
                   "top-1 {:.3f}, top-3 {:.3f} (most frequent {:.3f}, most popular {:.3f}); saved {}\n",
                   model.categories().size(), model.own_weight(), model.transition_weight(), evaluation.customers,
                   evaluation.top1, evaluation.top3, evaluation.frequent_top1, evaluation.popular_top1, path);
      return 0;
    });
  }
  add_train_recommend(sub, runners, common);
  return {sub, [runners] {
            for (const auto& r : runners)
              if (int rc = r(); rc >= 0) return rc;
            return 2;
          }};
}

Command add_predict(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("predict", "Predict with a trained model: propensity, next-category, tabular");
  sub->require_subcommand(1);
  struct Args {
    std::string store, config, snapshot, model, models, out, user;
    size_t top = 20;
  };
  auto args = std::make_shared<Args>();
  auto* prop = sub->add_subcommand("propensity", "Purchase probability of every customer at a snapshot");
  prop->fallthrough();
  prop->add_option("-s,--store", args->store, "Store: a file, or a postgresql:// URL");
  prop->add_option("-c,--config", args->config, "Config file (for its store path)");
  prop->add_option("--snapshot", args->snapshot, "Date to score at (default: after the last event)");
  prop->add_option("--model", args->model, "Model file (default <models>/propensity.model)");
  prop->add_option("--models", args->models, "Model directory");
  prop->add_option("-o,--out", args->out, "Write every customer's probability to this CSV");
  prop->add_option("--top", args->top, "How many of the most likely customers to print");
  auto* tab = sub->add_subcommand("tabular", "Class probabilities for every row of a CSV, with a `train tabular` model");
  tab->fallthrough();
  tab->add_option("file", args->user, "CSV with the model's feature columns")->required();
  tab->add_option("--model", args->model, "Model file")->required();
  tab->add_option("--id-column", args->snapshot, "A column to copy into the output (default: the line number)");
  tab->add_option("-o,--out", args->out, "Output CSV (default: stdout)");
  auto* next = sub->add_subcommand("next-category", "The categories a customer is likely to buy from next");
  next->fallthrough();
  next->add_option("user", args->user, "User id")->required();
  next->add_option("-s,--store", args->store, "Store: a file, or a postgresql:// URL");
  next->add_option("-c,--config", args->config, "Config file (for its store path)");
  next->add_option("--model", args->model, "Model file (default <models>/next-category.model)");
  next->add_option("--models", args->models, "Model directory");
  return {sub, [args, prop, next, tab, &common] {
            if (tab->parsed()) {
              const auto loaded = ml::load_tabular_model(args->model);
              pipeline::TabularFileOptions o;
              o.features = loaded.feature_names;
              o.id_column = args->snapshot;
              o.class_names = loaded.class_names;
              const auto file = pipeline::read_tabular_file(args->user, o);
              warn_skipped(file, common.quiet);
              const ml::Matrix p = loaded.model->predict_proba(file.data.x);
              std::ofstream out_file;
              if (!args->out.empty()) out_file.open(args->out);
              std::ostream& out = args->out.empty() ? std::cout : out_file;
              out << (args->snapshot.empty() ? "line" : args->snapshot) << ",predicted";
              for (const auto& c : loaded.class_names) out << ",p_" << c;
              out << '\n';
              for (Eigen::Index i = 0; i < p.rows(); ++i) {
                Eigen::Index c;
                p.row(i).maxCoeff(&c);
                out << file.ids[static_cast<size_t>(i)] << ',' << loaded.class_names[static_cast<size_t>(c)];
                for (Eigen::Index k = 0; k < p.cols(); ++k) out << ',' << p(i, k);
                out << '\n';
              }
              if (!out) throw Error("cannot write the predictions", {args->out});
              return 0;
            }
            auto store = open_existing_store(store_path_from(args->store, args->config));
            const auto events = store->events();
            const auto dir = demand::models_dir_from(args->models);
            if (next->parsed()) {
              const auto model = demand::NextCategoryModel::load(
                  args->model.empty() ? (std::filesystem::path(dir) / "next-category.model").string() : args->model);
              const auto it = std::find(events.user_ids.begin(), events.user_ids.end(), args->user);
              if (it == events.user_ids.end()) throw Error(fmt::format("no user {} in the store", quote_value(args->user)));
              std::vector<std::string> cats = model.categories();
              const auto histories = demand::purchase_histories(events, INT64_MAX, cats);
              std::vector<std::string> history;
              for (int c : histories[static_cast<size_t>(it - events.user_ids.begin())]) history.push_back(cats[static_cast<size_t>(c)]);
              const auto ranked = model.predict(history, 3);
              nlohmann::json j = nlohmann::json::array();
              for (const auto& [c, s] : ranked) j.push_back({{"category", c}, {"score", s}});
              if (common.json) print_json({{"user", args->user}, {"purchases", history.size()}, {"next", j}});
              else
                for (const auto& [c, s] : ranked) fmt::print("{:<24} {:.3f}\n", c, s);
              return 0;
            }
            (void)prop;
            const auto loaded = ml::load_tabular_model(
                args->model.empty() ? (std::filesystem::path(dir) / "propensity.model").string() : args->model,
                demand::propensity_features());
            const int64_t snapshot = args->snapshot.empty() ? (events.size() ? time_after(events.timestamp.back()) : 0)
                                                            : parse_date(args->snapshot, "--snapshot");
            const std::string home = loaded.metrics.value("home_region", "");
            const int horizon = loaded.metrics.value("horizon_days", 90);
            const auto set = demand::propensity_set(events, snapshot, horizon, home);
            const auto p = loaded.model->predict_positive(set.data.x);
            std::vector<size_t> order(p.size());
            for (size_t i = 0; i < order.size(); ++i) order[i] = i;
            std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
            if (!args->out.empty()) {
              std::ofstream out(args->out);
              out << "user,probability\n";
              for (size_t i : order) out << events.user_ids[static_cast<size_t>(set.users[i])] << ',' << p[i] << '\n';
              if (!out) throw Error("cannot write", {args->out});
              // Scores go to the people who act on them, by id; erasure finds the file again.
              pipeline::register_export(*store, args->out, {{"what", "propensity scores"}, {"users", p.size()}, {"ids", "real"}});
            }
            nlohmann::json top = nlohmann::json::array();
            for (size_t k = 0; k < order.size() && k < args->top; ++k)
              top.push_back({{"user", events.user_ids[static_cast<size_t>(set.users[order[k]])]}, {"probability", p[order[k]]}});
            if (common.json) {
              print_json({{"customers", p.size()}, {"top", top}, {"out", args->out}});
              return 0;
            }
            fmt::print("{} customers scored{}\n", p.size(), args->out.empty() ? "" : "; all in " + args->out);
            for (const auto& row : top) fmt::print("{:<16} {:.3f}\n", row["user"].get<std::string>(), row["probability"].get<double>());
            return 0;
          }};
}

Command add_forecast(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("forecast", "Demand per category over time, with a forecast and its backtest error "
                                             "(per category the better of Holt-Winters and two seasonal baselines, named)");
  struct Args {
    std::string store, config, category;
    int horizon = 14;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("-s,--store", args->store, "Store: a file, or a postgresql:// URL");
  sub->add_option("-c,--config", args->config, "Config file (for its store path)");
  sub->add_option("--category", args->category, "One category (default: all of them, and \"all\")");
  sub->add_option("--horizon", args->horizon, "Days to forecast")->check(CLI::Range(1, 365));
  return {sub, [args, &common] {
            auto store = open_existing_store(store_path_from(args->store, args->config));
            const auto series = demand::daily_demand(store->events());
            if (series.empty()) throw Error("no purchases in the store to forecast");
            nlohmann::json out = nlohmann::json::array();
            std::vector<std::string> skipped;
            for (const auto& [category, s] : series) {
              if (!args->category.empty() && category != args->category) continue;
              if (s.values.size() < 14) {
                skipped.push_back(category);
                continue;
              }
              const auto f = demand::forecast_category(category, s, args->horizon);
              if (common.json) {
                out.push_back(f.to_json());
                continue;
              }
              double next_week = 0;
              for (size_t i = 0; i < f.forecast.size() && i < 7; ++i) next_week += f.forecast[i];
              fmt::print("{:<24} next 7 days {:>9.1f}  {:<14}  backtest {} days: sMAPE {:.3f} (seasonal naive {:.3f}), MAE {:.2f} ({:.2f})\n",
                         category, next_week, f.method, f.backtest.horizon, f.backtest.smape, f.backtest.naive_smape,
                         f.backtest.mae, f.backtest.naive_mae);
            }
            if (!args->category.empty() && out.empty() && !series.count(args->category))
              throw Error(fmt::format("no purchases in category {}", quote_value(args->category)));
            if (common.json) print_json({{"horizon_days", args->horizon}, {"categories", out}, {"too_short", skipped}});
            else if (!skipped.empty()) fmt::print("(less than two weeks of data: {})\n", fmt::join(skipped, ", "));
            return 0;
          }};
}

}  // namespace persona::cli
