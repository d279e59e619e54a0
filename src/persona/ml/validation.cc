#include "persona/ml/validation.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>

#include "persona/ml/metrics.h"

namespace persona::ml {

std::vector<Fold> kfold(size_t rows, int k, uint64_t seed, const std::vector<int>* stratify) {
  if (k < 2) throw std::invalid_argument("k-fold needs k >= 2");
  if (rows < static_cast<size_t>(k)) throw std::invalid_argument("fewer rows than folds");
  std::mt19937_64 rng(seed);
  std::vector<int> fold_of(rows);
  if (stratify) {
    std::map<int, std::vector<size_t>> by_class;
    for (size_t i = 0; i < rows; ++i) by_class[(*stratify)[i]].push_back(i);
    int next = 0;
    for (auto& [c, idx] : by_class) {
      std::shuffle(idx.begin(), idx.end(), rng);
      for (size_t i : idx) fold_of[i] = next++ % k;
    }
  } else {
    std::vector<size_t> order(rows);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i = 0; i < rows; ++i) fold_of[order[i]] = static_cast<int>(i % static_cast<size_t>(k));
  }
  std::vector<Fold> folds(static_cast<size_t>(k));
  for (size_t i = 0; i < rows; ++i)
    for (int f = 0; f < k; ++f) (f == fold_of[i] ? folds[static_cast<size_t>(f)].test : folds[static_cast<size_t>(f)].train).push_back(i);
  return folds;
}

std::vector<Fold> time_folds(const std::vector<int64_t>& timestamps, int k) {
  if (k < 1) throw std::invalid_argument("time folds need k >= 1");
  std::vector<size_t> order(timestamps.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return timestamps[a] < timestamps[b]; });
  const size_t blocks = static_cast<size_t>(k) + 1, n = order.size();
  std::vector<Fold> folds;
  for (size_t f = 1; f < blocks; ++f) {
    size_t lo = n * f / blocks, hi = n * (f + 1) / blocks;
    // Never split rows of one timestamp between train and test.
    while (lo > 0 && lo < n && timestamps[order[lo]] == timestamps[order[lo - 1]]) ++lo;
    if (lo >= hi) continue;
    Fold fold;
    fold.train.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(lo));
    fold.test.assign(order.begin() + static_cast<std::ptrdiff_t>(lo), order.begin() + static_cast<std::ptrdiff_t>(hi));
    folds.push_back(std::move(fold));
  }
  return folds;
}

double score_predictions(const std::string& metric, const std::vector<int>& truth, const Matrix& p) {
  if (metric == "auc" || metric == "logloss") {
    std::vector<double> pos(static_cast<size_t>(p.rows()));
    for (Eigen::Index i = 0; i < p.rows(); ++i) pos[static_cast<size_t>(i)] = p(i, p.cols() - 1);
    return metric == "auc" ? roc_auc(truth, pos) : -log_loss(truth, pos);
  }
  std::vector<int> predicted(static_cast<size_t>(p.rows()));
  for (Eigen::Index i = 0; i < p.rows(); ++i) {
    Eigen::Index c;
    p.row(i).maxCoeff(&c);
    predicted[static_cast<size_t>(i)] = static_cast<int>(c);
  }
  std::vector<std::string> names(static_cast<size_t>(p.cols()));
  for (size_t c = 0; c < names.size(); ++c) names[c] = std::to_string(c);
  const auto r = classification_report(truth, predicted, names);
  if (metric == "accuracy") return r.accuracy;
  if (metric == "macro_f1") return r.macro.f1;
  throw std::invalid_argument("unknown metric '" + metric + "' (use auc, logloss, accuracy or macro_f1)");
}

nlohmann::json CrossValidationResult::to_json() const { return {{"scores", scores}, {"mean", mean}, {"std", std}}; }

CrossValidationResult cross_validate(const std::string& learner, const Params& params, const TabularData& data,
                                     const std::vector<Fold>& folds, const std::string& metric) {
  CrossValidationResult r;
  for (const auto& fold : folds) {
    auto model = make_tabular_classifier(learner, params);
    const TabularData train = data.subset(fold.train), test = data.subset(fold.test);
    model->fit(train);
    r.scores.push_back(score_predictions(metric, test.y, model->predict_proba(test.x)));
  }
  if (r.scores.empty()) return r;
  r.mean = std::accumulate(r.scores.begin(), r.scores.end(), 0.0) / static_cast<double>(r.scores.size());
  double var = 0;
  for (double s : r.scores) var += (s - r.mean) * (s - r.mean);
  r.std = std::sqrt(var / static_cast<double>(r.scores.size()));
  return r;
}

nlohmann::json SearchResult::to_json() const {
  nlohmann::json t = nlohmann::json::array();
  for (const auto& [p, cv] : trials) t.push_back({{"params", p}, {"cv", cv.to_json()}});
  return {{"trials", t}, {"best", best}, {"best_score", best_score}};
}

namespace {

SearchResult run_trials(const std::string& learner, const std::vector<Params>& candidates, const TabularData& data,
                        const std::vector<Fold>& folds, const std::string& metric) {
  SearchResult out;
  out.best_score = -INFINITY;
  for (const auto& p : candidates) {
    auto cv = cross_validate(learner, p, data, folds, metric);
    if (cv.mean > out.best_score) {
      out.best_score = cv.mean;
      out.best = p;
    }
    out.trials.emplace_back(p, std::move(cv));
  }
  return out;
}

}  // namespace

SearchResult grid_search(const std::string& learner, const ParamSpace& space, const Params& fixed,
                         const TabularData& data, const std::vector<Fold>& folds, const std::string& metric) {
  std::vector<Params> grid{fixed};
  for (const auto& [name, values] : space) {
    std::vector<Params> next;
    for (const auto& p : grid)
      for (double v : values) {
        Params q = p;
        q[name] = v;
        next.push_back(std::move(q));
      }
    grid = std::move(next);
  }
  return run_trials(learner, grid, data, folds, metric);
}

SearchResult random_search(const std::string& learner, const ParamSpace& space, const Params& fixed, int trials,
                           uint64_t seed, const TabularData& data, const std::vector<Fold>& folds,
                           const std::string& metric) {
  std::mt19937_64 rng(seed);
  std::vector<Params> candidates;
  std::set<Params> seen;
  for (int t = 0; t < trials * 10 && static_cast<int>(candidates.size()) < trials; ++t) {
    Params p = fixed;
    for (const auto& [name, values] : space) {
      std::uniform_int_distribution<size_t> pick(0, values.size() - 1);
      p[name] = values[pick(rng)];
    }
    if (seen.insert(p).second) candidates.push_back(std::move(p));
  }
  return run_trials(learner, candidates, data, folds, metric);
}

}  // namespace persona::ml
