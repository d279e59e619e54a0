#include "persona/ml/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

namespace persona::ml {
namespace {

double safe_div(double a, double b) { return b > 0 ? a / b : 0; }

}  // namespace

ClassificationReport classification_report(const std::vector<int>& truth, const std::vector<int>& predicted,
                                           const std::vector<std::string>& labels) {
  if (truth.size() != predicted.size()) throw std::invalid_argument("truth and predictions differ in length");
  const size_t k = labels.size();
  ClassificationReport r;
  r.confusion.assign(k, std::vector<int64_t>(k, 0));
  std::vector<int64_t> tp(k, 0), predicted_count(k, 0), support(k, 0);
  int64_t correct = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const int t = truth[i], p = predicted[i];
    if (t < 0 || static_cast<size_t>(t) >= k) throw std::invalid_argument("true class index out of range");
    ++support[static_cast<size_t>(t)];
    if (p >= 0 && static_cast<size_t>(p) < k) {
      ++predicted_count[static_cast<size_t>(p)];
      ++r.confusion[static_cast<size_t>(t)][static_cast<size_t>(p)];
      if (p == t) {
        ++tp[static_cast<size_t>(t)];
        ++correct;
      }
    }
  }
  r.total = static_cast<int64_t>(truth.size());
  r.accuracy = safe_div(static_cast<double>(correct), static_cast<double>(r.total));
  r.macro.label = "macro avg";
  r.weighted.label = "weighted avg";
  size_t present = 0;
  for (size_t c = 0; c < k; ++c) {
    ClassMetrics m;
    m.label = labels[c];
    m.support = support[c];
    m.precision = safe_div(static_cast<double>(tp[c]), static_cast<double>(predicted_count[c]));
    m.recall = safe_div(static_cast<double>(tp[c]), static_cast<double>(support[c]));
    m.f1 = safe_div(2 * m.precision * m.recall, m.precision + m.recall);
    r.classes.push_back(m);
    // The macro average is over the classes of the test set (those with support): a class that
    // was only predicted, never true, would otherwise add an F1 of 0 that says nothing about it
    // (scikit-learn's report averages over the labels of truth and predictions together; with
    // labels= set to the test set's, as here).
    if (support[c] == 0) continue;
    ++present;
    r.macro.precision += m.precision;
    r.macro.recall += m.recall;
    r.macro.f1 += m.f1;
    const double w = static_cast<double>(m.support);
    r.weighted.precision += w * m.precision;
    r.weighted.recall += w * m.recall;
    r.weighted.f1 += w * m.f1;
  }
  r.macro.precision = safe_div(r.macro.precision, static_cast<double>(present));
  r.macro.recall = safe_div(r.macro.recall, static_cast<double>(present));
  r.macro.f1 = safe_div(r.macro.f1, static_cast<double>(present));
  const double n = static_cast<double>(r.total);
  r.weighted.precision = safe_div(r.weighted.precision, n);
  r.weighted.recall = safe_div(r.weighted.recall, n);
  r.weighted.f1 = safe_div(r.weighted.f1, n);
  r.macro.support = r.weighted.support = r.total;
  r.macro_classes = static_cast<int64_t>(present);
  return r;
}

std::string ClassificationReport::to_text(int digits) const {
  size_t width = 12;
  for (const auto& c : classes) width = std::max(width, c.label.size());
  std::string out = fmt::format("{:>{}} {:>9} {:>9} {:>9} {:>9}\n\n", "", width, "precision", "recall", "f1-score",
                                "support");
  auto row = [&](const ClassMetrics& m) {
    out += fmt::format("{:>{}} {:>9.{}f} {:>9.{}f} {:>9.{}f} {:>9}\n", m.label, width, m.precision, digits, m.recall,
                       digits, m.f1, digits, m.support);
  };
  for (const auto& c : classes) row(c);
  out += '\n';
  out += fmt::format("{:>{}} {:>9} {:>9} {:>9.{}f} {:>9}\n", "accuracy", width, "", "", accuracy, digits, total);
  row(macro);
  row(weighted);
  out += fmt::format("(macro avg over the {} classes of the test set)\n", macro_classes);
  return out;
}

nlohmann::json ClassificationReport::to_json(bool with_confusion) const {
  nlohmann::json j;
  j["accuracy"] = accuracy;
  j["macro_f1"] = macro.f1;
  j["macro_precision"] = macro.precision;
  j["macro_recall"] = macro.recall;
  j["macro_classes"] = macro_classes;  // the classes of the test set, which the macro average is over
  j["weighted_f1"] = weighted.f1;
  j["support"] = total;
  nlohmann::json per = nlohmann::json::array();
  for (const auto& c : classes)
    per.push_back({{"label", c.label}, {"precision", c.precision}, {"recall", c.recall}, {"f1", c.f1},
                   {"support", c.support}});
  j["classes"] = per;
  if (with_confusion) j["confusion"] = confusion;
  return j;
}

double roc_auc(const std::vector<int>& truth, const std::vector<double>& score) {
  std::vector<size_t> order(truth.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  double rank_sum = 0;
  int64_t positives = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && score[order[j]] == score[order[i]]) ++j;
    const double average_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k)
      if (truth[order[k]] == 1) {
        rank_sum += average_rank;
        ++positives;
      }
    i = j;
  }
  const int64_t negatives = static_cast<int64_t>(truth.size()) - positives;
  if (positives == 0 || negatives == 0) return std::nan("");
  const double p = static_cast<double>(positives);
  return (rank_sum - p * (p + 1) / 2) / (p * static_cast<double>(negatives));
}

double log_loss(const std::vector<int>& truth, const std::vector<double>& probability) {
  double sum = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const double p = std::clamp(probability[i], 1e-15, 1 - 1e-15);
    sum -= truth[i] == 1 ? std::log(p) : std::log(1 - p);
  }
  return truth.empty() ? 0 : sum / static_cast<double>(truth.size());
}

double log_loss_multiclass(const std::vector<int>& truth, const std::vector<std::vector<float>>& probabilities) {
  double sum = 0;
  for (size_t i = 0; i < truth.size(); ++i)
    sum -= std::log(std::clamp(static_cast<double>(probabilities[i][static_cast<size_t>(truth[i])]), 1e-15, 1.0));
  return truth.empty() ? 0 : sum / static_cast<double>(truth.size());
}

Calibration calibration(const std::vector<int>& truth, const std::vector<double>& probability, int bins) {
  Calibration c;
  c.bins.resize(static_cast<size_t>(bins));
  std::vector<double> sum_p(static_cast<size_t>(bins), 0), sum_y(static_cast<size_t>(bins), 0);
  for (size_t i = 0; i < truth.size(); ++i) {
    const int b = std::clamp(static_cast<int>(probability[i] * bins), 0, bins - 1);
    sum_p[static_cast<size_t>(b)] += probability[i];
    sum_y[static_cast<size_t>(b)] += truth[i];
    ++c.bins[static_cast<size_t>(b)].count;
  }
  for (int b = 0; b < bins; ++b) {
    auto& bin = c.bins[static_cast<size_t>(b)];
    bin.lower = static_cast<double>(b) / bins;
    bin.upper = static_cast<double>(b + 1) / bins;
    if (bin.count == 0) continue;
    bin.mean_predicted = sum_p[static_cast<size_t>(b)] / static_cast<double>(bin.count);
    bin.fraction_positive = sum_y[static_cast<size_t>(b)] / static_cast<double>(bin.count);
    c.expected_calibration_error += static_cast<double>(bin.count) / static_cast<double>(truth.size()) *
                                    std::abs(bin.mean_predicted - bin.fraction_positive);
  }
  return c;
}

nlohmann::json Calibration::to_json() const {
  nlohmann::json j;
  j["ece"] = expected_calibration_error;
  auto& b = j["bins"] = nlohmann::json::array();
  for (const auto& bin : bins)
    if (bin.count > 0)
      b.push_back({{"lower", bin.lower}, {"upper", bin.upper}, {"mean_predicted", bin.mean_predicted},
                   {"fraction_positive", bin.fraction_positive}, {"count", bin.count}});
  return j;
}

double f1_at(const std::vector<int>& truth, const std::vector<double>& probability, double threshold) {
  int64_t tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const bool p = probability[i] >= threshold;
    if (p && truth[i] == 1) ++tp;
    else if (p) ++fp;
    else if (truth[i] == 1) ++fn;
  }
  return safe_div(2.0 * static_cast<double>(tp), static_cast<double>(2 * tp + fp + fn));
}

double best_f1_threshold(const std::vector<int>& truth, const std::vector<double>& probability) {
  double best = 0.5, best_f1 = -1;
  for (int i = 1; i < 100; ++i) {
    const double t = i / 100.0;
    const double f = f1_at(truth, probability, t);
    if (f > best_f1) {
      best_f1 = f;
      best = t;
    }
  }
  return best;
}

OperatingPoint operating_point(const std::vector<int>& truth, const std::vector<double>& probability, double threshold) {
  int64_t tp = 0, fp = 0, fn = 0, positives = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const bool p = probability[i] >= threshold;
    positives += truth[i] == 1;
    if (p && truth[i] == 1) ++tp;
    else if (p) ++fp;
    else if (truth[i] == 1) ++fn;
  }
  const auto n = static_cast<double>(truth.size());
  OperatingPoint o;
  o.threshold = threshold;
  o.base_rate = safe_div(static_cast<double>(positives), n);
  o.everyone_f1 = safe_div(2.0 * o.base_rate, 1 + o.base_rate);
  o.precision = safe_div(static_cast<double>(tp), static_cast<double>(tp + fp));
  o.recall = safe_div(static_cast<double>(tp), static_cast<double>(positives));
  o.f1 = safe_div(2.0 * static_cast<double>(tp), static_cast<double>(2 * tp + fp + fn));
  o.flagged = safe_div(static_cast<double>(tp + fp), n);
  o.lift = safe_div(o.precision, o.base_rate);
  o.useful = o.flagged <= 0.95 && o.lift > 1 && o.f1 > o.everyone_f1;
  return o;
}

OperatingPoint choose_operating_point(const std::vector<int>& truth, const std::vector<double>& probability) {
  OperatingPoint best = operating_point(truth, probability, 0.5);
  best.useful = false;
  for (int i = 1; i < 100; ++i) {
    const auto o = operating_point(truth, probability, i / 100.0);
    if (o.useful && (!best.useful || o.f1 > best.f1)) best = o;
  }
  return best;
}

nlohmann::json OperatingPoint::to_json() const {
  return {{"threshold", threshold}, {"f1", f1},       {"precision", precision},     {"recall", recall},
          {"flagged", flagged},     {"lift", lift},   {"base_rate", base_rate},     {"everyone_f1", everyone_f1},
          {"useful", useful}};
}

}  // namespace persona::ml
