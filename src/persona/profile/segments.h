#pragma once
// Learned segments: k-means++ on scaled profile features, k chosen by the silhouette over a
// range (or fixed), ids stable across reruns (clusters numbered by size, then centroid), and a
// readable summary of each. A user's segment is the nearest centroid, so a profile updated live
// gets one without re-clustering.
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include "persona/profile/profile.h"

namespace persona::profile {

struct SegmentOptions {
  int k = 0;  // 0: choose by silhouette in [k_min, k_max]
  int k_min = 2, k_max = 8;
  int restarts = 4;
  int max_iterations = 100;
  uint64_t seed = 42;
  size_t sample = 4000;  // users the choice of k looks at (the final clustering uses all)
};

struct SegmentSummary {
  int id = 0;
  std::string label;  // the features that set it apart, e.g. "high monetary, low recency"
  size_t size = 0;
  double share = 0;
  nlohmann::json centroid;  // medians of the members' features, in readable units
  std::vector<Share> top_categories, tags, rfm_segments;
};

struct SegmentModel {
  std::vector<std::string> features;  // the clustering features (scaled)
  std::vector<double> mean, scale;
  Eigen::MatrixXd centroids;          // k x features, in scaled units
  std::vector<SegmentSummary> segments;
  double silhouette = 0;
  std::vector<std::pair<int, double>> silhouette_by_k;

  int assign(const UserProfile& p) const;
  nlohmann::json to_json() const;
  static SegmentModel from_json(const nlohmann::json& j);
};

// The clustering features of one profile, unscaled (names in segment_features()).
const std::vector<std::string>& segment_features();
std::vector<double> segment_vector(const UserProfile& p);

// Clusters the profiles, sets each one's segment and returns the model. Fewer users than two
// segments need: one segment.
SegmentModel segment_profiles(std::vector<UserProfile>& profiles, const SegmentOptions& options);

// Mean silhouette of a labelling (exact; callers sample large sets).
double silhouette(const Eigen::MatrixXd& x, const std::vector<int>& labels, int k);

}  // namespace persona::profile
