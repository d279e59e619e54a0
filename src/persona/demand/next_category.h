#pragma once
// Next category: which category a customer will buy from next. The score of a category blends
// the customer's own purchase shares, the transition frequencies from the category of their last
// purchase, and global popularity; the two blend weights are chosen on the training period
// (each customer's last purchase before the cutoff predicted from the ones before it).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/store/store.h"

namespace persona::demand {

struct NextCategoryEvaluation {
  int64_t customers = 0;
  double top1 = 0, top3 = 0;                      // the model
  double frequent_top1 = 0, popular_top1 = 0;     // baselines: own most frequent, global most popular
  nlohmann::json to_json() const;
};

class NextCategoryModel {
 public:
  // Learns from purchases before `cutoff` (all purchases when cutoff is INT64_MAX).
  static NextCategoryModel fit(const store::EventColumns& events, int64_t cutoff);
  // Ranked categories with scores for a purchase history (category names, oldest first).
  std::vector<std::pair<std::string, double>> predict(const std::vector<std::string>& history, size_t k = 3) const;
  // Each customer's first purchase at or after `cutoff`, predicted from the purchases before it.
  NextCategoryEvaluation evaluate(const store::EventColumns& events, int64_t cutoff) const;
  const std::vector<std::string>& categories() const { return categories_; }
  double own_weight() const { return own_; }
  double transition_weight() const { return transition_; }

  void save(const std::string& path, const nlohmann::json& metrics) const;
  static NextCategoryModel load(const std::string& path);

 private:
  std::vector<double> scores(const std::vector<int>& history) const;
  std::vector<std::string> categories_;
  std::vector<double> popularity_;               // global share per category
  std::vector<std::vector<double>> transitions_;  // [from][to] row-normalised
  double own_ = 0.5, transition_ = 0.3;
};

// Purchase histories (category indices into `categories`) per user, before `cutoff`.
std::vector<std::vector<int>> purchase_histories(const store::EventColumns& events, int64_t cutoff,
                                                 std::vector<std::string>& categories);

}  // namespace persona::demand
