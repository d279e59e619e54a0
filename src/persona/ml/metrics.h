#pragma once
// Classification metrics: accuracy, per-class precision / recall / F1 with macro and weighted
// averages (a report laid out like scikit-learn's), confusion matrix, ROC-AUC, log-loss and
// calibration (reliability bins and expected calibration error).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace persona::ml {

struct ClassMetrics {
  std::string label;
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};

struct ClassificationReport {
  std::vector<ClassMetrics> classes;
  double accuracy = 0;
  ClassMetrics macro, weighted;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  int64_t total = 0;
  int64_t macro_classes = 0;  // the macro average is over the classes with support (the test set's)
  std::string to_text(int digits = 3) const;  // the scikit-learn layout
  nlohmann::json to_json(bool with_confusion = false) const;
};

// `truth` and `predicted` are class indices into `labels`; a predicted index of -1 (for example
// "unknown") counts as wrong and appears in no class's precision.
ClassificationReport classification_report(const std::vector<int>& truth, const std::vector<int>& predicted,
                                           const std::vector<std::string>& labels);

// Area under the ROC curve for binary labels (ties averaged, as the Mann-Whitney statistic).
double roc_auc(const std::vector<int>& truth, const std::vector<double>& score);
// Mean binary cross-entropy, probabilities clipped to [1e-15, 1 - 1e-15].
double log_loss(const std::vector<int>& truth, const std::vector<double>& probability);
// Mean categorical cross-entropy of the true class's probability.
double log_loss_multiclass(const std::vector<int>& truth, const std::vector<std::vector<float>>& probabilities);

struct CalibrationBin {
  double lower = 0, upper = 0, mean_predicted = 0, fraction_positive = 0;
  int64_t count = 0;
};
struct Calibration {
  std::vector<CalibrationBin> bins;
  double expected_calibration_error = 0;
  nlohmann::json to_json() const;
};
Calibration calibration(const std::vector<int>& truth, const std::vector<double>& probability, int bins = 10);

// F1 of the positive class at a threshold, and the threshold that maximises it.
double f1_at(const std::vector<int>& truth, const std::vector<double>& probability, double threshold);
double best_f1_threshold(const std::vector<int>& truth, const std::vector<double>& probability);

// A decision threshold on a score, and what it does: the share of the population it flags, their
// precision and its lift over the base rate, recall and F1; beside them the base rate and the F1
// of flagging everyone (which a bare F1 maximum often is when positives are common).
struct OperatingPoint {
  double threshold = 0.5, f1 = 0, precision = 0, recall = 0, flagged = 0, lift = 0;
  double base_rate = 0, everyone_f1 = 0;
  bool useful = false;  // flags fewer than everyone, with precision above the base rate, and beats everyone's F1
  nlohmann::json to_json() const;
};
OperatingPoint operating_point(const std::vector<int>& truth, const std::vector<double>& probability, double threshold);
// The F1-best threshold among those that flag at most 95% of the population with precision above
// the base rate (0.01 steps); useful=false (threshold 0.5) when none beats flagging everyone.
OperatingPoint choose_operating_point(const std::vector<int>& truth, const std::vector<double>& probability);

}  // namespace persona::ml
