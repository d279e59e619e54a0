#include "persona/ml/text_classifier.h"

#include <algorithm>
#include <chrono>
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

namespace persona::ml {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

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
  Scored scored;
  LinearTextParams linear;
  FastTextParams fasttext;
};

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
          {"seconds", seconds}};
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

double choose_unknown_threshold(const std::vector<int>& truth, const std::vector<TextPrediction>& predictions) {
  // Sort by confidence; withholding everything below a threshold gains the wrong answers and
  // loses the right ones among them. Pick the cut with the largest net gain (ties: lowest).
  std::vector<size_t> order(truth.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return predictions[a].confidence < predictions[b].confidence; });
  double best_gain = 0, best = 0, gain = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const auto& p = predictions[order[k]];
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

TextClassifier::TextClassifier(std::shared_ptr<const TextModel> model, std::vector<std::string> labels)
    : model_(std::move(model)), labels_(std::move(labels)) {}

TextClassifier TextClassifier::train(const LabelledTexts& data, const TextClassifierOptions& options,
                                     TextTrainingReport* report) {
  const auto start = Clock::now();
  if (data.size() < 2) throw std::invalid_argument("need at least two labelled texts to train");
  if (data.label_names.size() < 2) throw std::invalid_argument("need at least two classes to train a classifier");
  if (data.labels.size() != data.texts.size()) throw std::invalid_argument("texts and labels differ in number");
  for (int l : data.labels)
    if (l < 0 || static_cast<size_t>(l) >= data.label_names.size()) throw std::invalid_argument("label index out of range");

  auto [train_rows, valid_rows] = stratified_split(data.labels, options.validation_fraction, options.seed);
  const LabelledTexts train_part = data.subset(train_rows), valid_part = data.subset(valid_rows);
  const bool validate = !valid_part.texts.empty();
  const auto deadline = start + std::chrono::seconds(std::max(1, options.time_budget_s));
  std::vector<Candidate> done;

  for (const auto& kind : options.candidates) {
    if (kind == "tfidf-linear") {
      auto vectorizer = std::make_shared<text::TfidfVectorizer>(text::TfidfOptions{});
      vectorizer->fit(train_part.texts, options.threads);
      const auto x_train = vectorizer->transform_all(train_part.texts, options.threads);
      const auto x_valid = vectorizer->transform_all(valid_part.texts, options.threads);
      Candidate best;
      bool have = false;
      for (const auto& params : linear_grid(options.tune)) {
        if (have && Clock::now() > deadline) break;
        const auto t0 = Clock::now();
        std::shared_ptr<LinearTextModel> m;
        {
          std::lock_guard lock(liblinear_mutex);
          std::srand(static_cast<unsigned>(options.seed));
          m = LinearTextModel::train_on_features(x_train, train_part.labels,
                                                 static_cast<int>(data.label_names.size()), vectorizer, params);
        }
        Candidate c;
        if (validate) {
          m->fit_temperature(x_valid, valid_part.labels);
          std::vector<std::vector<float>> p;
          for (const auto& x : x_valid) p.push_back(m->predict_features(x));
          c.scored = score(p, valid_part);
        }
        c.result = {"tfidf-linear", params.to_json(), c.scored.accuracy, c.scored.macro_f1, seconds_since(t0)};
        c.model = m;
        c.linear = params;
        if (report) report->candidates.push_back(c.result);
        if (!have || c.scored.better_than(best.scored)) best = c;
        have = true;
      }
      if (have) done.push_back(std::move(best));
    } else if (kind == "fasttext") {
      FastTextParams params;
      params.threads = options.threads;
      params.seed = static_cast<int>(options.seed);
      const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
      if (options.tune && validate) params.autotune_seconds = std::max(5, static_cast<int>(left));
      const auto t0 = Clock::now();
      auto m = FastTextModel::train(train_part, params, validate ? &valid_part : nullptr);
      Candidate c;
      if (validate) c.scored = score(m->predict_all(valid_part.texts, options.threads), valid_part);
      c.fasttext = m->used_params();
      c.fasttext.autotune_seconds = 0;
      c.result = {"fasttext", m->params(), c.scored.accuracy, c.scored.macro_f1, seconds_since(t0)};
      c.model = std::move(m);
      if (report) report->candidates.push_back(c.result);
      done.push_back(std::move(c));
    } else {
      throw std::invalid_argument("unknown text model '" + kind + "' (use tfidf-linear or fasttext)");
    }
  }
  if (done.empty()) throw std::invalid_argument("no candidate text model to train");
  size_t best = 0;
  for (size_t i = 1; i < done.size(); ++i)
    if (done[i].scored.better_than(done[best].scored)) best = i;
  Candidate& winner = done[best];

  // The unknown threshold, from the winner's validation answers.
  double threshold = 0, unknown_rate = 0;
  if (validate && options.abstain) {
    TextClassifier probe(winner.model, data.label_names);
    const auto predictions = probe.predict_all(valid_part.texts, options.threads);
    threshold = choose_unknown_threshold(valid_part.labels, predictions);
    size_t unknown = 0;
    for (const auto& p : predictions) unknown += p.confidence < threshold;
    unknown_rate = static_cast<double>(unknown) / static_cast<double>(predictions.size());
  }

  // Retrain the winner's configuration on all the data.
  std::shared_ptr<TextModel> final_model;
  if (winner.result.kind == "tfidf-linear") {
    const float temperature = static_cast<LinearTextModel&>(*winner.model).temperature();
    std::unique_ptr<LinearTextModel> m;
    {
      auto vectorizer = std::make_shared<text::TfidfVectorizer>(winner.linear.tfidf);
      vectorizer->fit(data.texts, options.threads);
      const auto x = vectorizer->transform_all(data.texts, options.threads);
      std::lock_guard lock(liblinear_mutex);
      std::srand(static_cast<unsigned>(options.seed));
      m = LinearTextModel::train_on_features(x, data.labels, static_cast<int>(data.label_names.size()), vectorizer,
                                             winner.linear);
    }
    // The temperature of the validated model carries over (same loss and C, a little more data).
    m->set_temperature(temperature);
    final_model = std::move(m);
  } else {
    final_model = FastTextModel::train(data, winner.fasttext, nullptr);
  }

  TextClassifier out(final_model, data.label_names);
  out.threshold_ = threshold;
  if (report) {
    report->chosen = winner.result.kind;
    report->chosen_params = winner.result.params;
    report->validation_accuracy = winner.scored.accuracy;
    report->validation_macro_f1 = winner.scored.macro_f1;
    report->unknown_threshold = threshold;
    report->validation_unknown_rate = unknown_rate;
    report->train_rows = train_part.size();
    report->validation_rows = valid_part.size();
    report->seconds = seconds_since(start);
  }
  return out;
}

const std::string& TextClassifier::label_name(int label) const {
  static const std::string unknown = "unknown";
  return label >= 0 && static_cast<size_t>(label) < labels_.size() ? labels_[static_cast<size_t>(label)] : unknown;
}

TextPrediction TextClassifier::predict(std::string_view text) const {
  TextPrediction p;
  p.probabilities = model_->predict(text);
  p.best = argmax(p.probabilities);
  p.confidence = p.best >= 0 ? p.probabilities[static_cast<size_t>(p.best)] : 0;
  p.label = p.confidence >= threshold_ ? p.best : -1;
  return p;
}

std::vector<TextPrediction> TextClassifier::predict_all(const std::vector<std::string>& texts, int threads) const {
  const auto probabilities = model_->predict_all(texts, threads);
  std::vector<TextPrediction> out(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto& p = out[i];
    p.probabilities = probabilities[i];
    p.best = argmax(p.probabilities);
    p.confidence = p.best >= 0 ? p.probabilities[static_cast<size_t>(p.best)] : 0;
    p.label = p.confidence >= threshold_ ? p.best : -1;
  }
  return out;
}

ClassificationReport TextClassifier::evaluate(const LabelledTexts& data, int threads, bool allow_unknown) const {
  std::vector<int> predicted;
  for (const auto& p : predict_all(data.texts, threads)) predicted.push_back(allow_unknown ? p.label : p.best);
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
