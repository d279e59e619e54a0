#pragma once
// Cross-validation (k-fold, stratified, and time-based) and hyperparameter search (grid and
// random) for the tabular learners. Seeded: the same data and seed give the same folds, the
// same trials and the same answer.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/ml/tabular.h"

namespace persona::ml {

struct Fold {
  std::vector<size_t> train, test;
};

// k folds; with `stratify`, every fold has about the same class shares.
std::vector<Fold> kfold(size_t rows, int k, uint64_t seed, const std::vector<int>* stratify = nullptr);
// Expanding-window folds in time order: fold i trains on everything before its test block,
// so no fold ever sees the future of its test rows.
std::vector<Fold> time_folds(const std::vector<int64_t>& timestamps, int k);

// Metric names: "auc", "logloss" (lower is better; reported negated as score), "accuracy", "macro_f1".
double score_predictions(const std::string& metric, const std::vector<int>& truth, const Matrix& probabilities);

struct CrossValidationResult {
  std::vector<double> scores;
  double mean = 0, std = 0;
  nlohmann::json to_json() const;
};
CrossValidationResult cross_validate(const std::string& learner, const Params& params, const TabularData& data,
                                     const std::vector<Fold>& folds, const std::string& metric);

// Values to try per parameter name.
using ParamSpace = std::map<std::string, std::vector<double>>;

struct SearchResult {
  std::vector<std::pair<Params, CrossValidationResult>> trials;
  Params best;
  double best_score = 0;
  nlohmann::json to_json() const;
};
SearchResult grid_search(const std::string& learner, const ParamSpace& space, const Params& fixed,
                         const TabularData& data, const std::vector<Fold>& folds, const std::string& metric);
SearchResult random_search(const std::string& learner, const ParamSpace& space, const Params& fixed, int trials,
                           uint64_t seed, const TabularData& data, const std::vector<Fold>& folds,
                           const std::string& metric);

}  // namespace persona::ml
