#pragma once
// Learners for tabular data behind one interface: logistic regression (Newton, one against the
// rest), a multilayer perceptron (Eigen) and gradient-boosted trees (xgboost). Features are
// standardised inside each model, so callers pass raw values.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include "persona/core/binary_io.h"

namespace persona::ml {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Params = std::map<std::string, double>;

struct TabularData {
  Matrix x;                 // rows: samples; columns: features
  std::vector<int> y;       // class index per row
  std::vector<std::string> feature_names, class_names{"0", "1"};
  int classes() const { return static_cast<int>(class_names.size()); }
  size_t rows() const { return static_cast<size_t>(x.rows()); }
  TabularData subset(const std::vector<size_t>& rows) const;
};

class TabularClassifier {
 public:
  virtual ~TabularClassifier() = default;
  virtual std::string kind() const = 0;  // "logistic" | "mlp" | "xgboost"
  virtual void fit(const TabularData& data) = 0;
  // rows x classes probabilities
  virtual Matrix predict_proba(const Matrix& x) const = 0;
  virtual nlohmann::json params() const = 0;
  virtual std::string to_bytes() const = 0;
  virtual void from_bytes(std::string_view bytes) = 0;
  // Positive-class probability of a binary model.
  std::vector<double> predict_positive(const Matrix& x) const;
};

// Parameters by name (unknown names are an error listing the known ones):
//   logistic: C (1.0), max_iter (100)
//   mlp: hidden1 (64), hidden2 (64; 0 = one layer), learning_rate (1e-3), alpha (1e-4), batch (200),
//        epochs (200), patience (10), validation_fraction (0.1), optimizer (0 Adam, 1 SGD),
//        momentum (0.9), threads (1), seed (1)
//   xgboost: rounds (300), max_depth (4), eta (0.05), subsample (0.8), colsample (1.0),
//        min_child_weight (1), lambda (1), early_stopping (30), threads (2), seed (1)
std::unique_ptr<TabularClassifier> make_tabular_classifier(const std::string& kind, const Params& params = {});

// A "tabular-classifier" model file with the feature schema in its header.
void save_tabular_model(const std::string& path, const std::string& task, const TabularClassifier& model,
                        const std::vector<std::string>& feature_names, const std::vector<std::string>& class_names,
                        const nlohmann::json& metrics);
struct LoadedTabularModel {
  std::unique_ptr<TabularClassifier> model;
  std::vector<std::string> feature_names, class_names;
  std::string task;
  nlohmann::json metrics;
};
// Checks the file's features equal `expected_features` when given (a mismatch names them).
LoadedTabularModel load_tabular_model(const std::string& path, const std::vector<std::string>& expected_features = {});

// Column means and standard deviations (1 where a column is constant). With `log_skewed`,
// non-negative columns with a long right tail (mean above twice the median, as counts and
// money have) go through log1p first, which linear models and networks need to use them well.
struct Standardizer {
  Eigen::RowVectorXf mean, scale;
  std::vector<uint8_t> log_column;
  void fit(const Matrix& x, bool log_skewed = false);
  Matrix apply(const Matrix& x) const;
  void write(ByteWriter& w) const;
  void read(ByteReader& r, int64_t expected_columns);

 private:
  Matrix apply_log(const Matrix& x) const;
};

}  // namespace persona::ml
