#pragma once
// The statistics of an experiment's report: per-user ratio metrics (clicks per impression, ...),
// a sequential test that stays valid however often it is looked at, and the sample-ratio check.
#include <cstdint>
#include <optional>
#include <vector>

namespace persona::experiment {

// A ratio metric over users: Σy / Σx (clicks / impressions), with each user's x and y summed.
// Users are what assignment randomises, so the variance is taken over users (the delta method),
// not over impressions, which are correlated within a user.
struct RatioSums {
  double users = 0, x = 0, y = 0, xx = 0, yy = 0, xy = 0;
  void add(double ux, double uy, double sign = 1) {
    users += sign;
    x += sign * ux;
    y += sign * uy;
    xx += sign * ux * ux;
    yy += sign * uy * uy;
    xy += sign * ux * uy;
  }
};

struct Estimate {
  double value = 0, variance = 0;  // the ratio and its variance (delta method); 0 and 0 without data
  double low(double z) const;
  double high(double z) const;
};
Estimate ratio_estimate(const RatioSums& s);

// A mixture sequential probability ratio test (Johari et al., "Always valid inference", 2017) on
// an asymptotically normal difference θ̂ with variance V, mixing over effects N(0, τ²):
//   Λ = sqrt(V / (V + τ²)) · exp(θ̂² τ² / (2 V (V + τ²))).
// The p-value min(1, 1/Λ), kept as the smallest seen, and the confidence sequence (the
// intersection of the intervals so far) are valid at every look: stopping the first day
// p < α holds the false-positive rate at α, which repeated t-tests do not.
class SequentialTest {
 public:
  SequentialTest(double alpha, double tau) : alpha_(alpha), tau_(tau) {}
  struct Look {
    double effect = 0, variance = 0, p = 1, low = 0, high = 0;
    bool significant = false;
    double mde = 0;  // the smallest |effect| this test detects now with 80% power
  };
  Look look(double effect, double variance);
  const std::optional<Look>& last() const { return last_; }

 private:
  double alpha_, tau_;
  double p_ = 1, low_ = -1e300, high_ = 1e300;
  std::optional<Look> last_;
};

// How far |θ̂| must be from 0 for the mixture test to reject at α, at variance V.
double rejection_threshold(double variance, double tau, double alpha);
// The textbook fixed-horizon MDE, (z_{1-α/2} + z_power) · sqrt(V), for comparison in tests.
double fixed_horizon_mde(double variance, double alpha, double power = 0.8);

// Sample-ratio mismatch: users per variant against the split's shares, by a chi-square test.
// A p-value below 0.001 means the split is broken (a bug in serving or in logging), and no
// comparison can be trusted.
struct SampleRatio {
  double chi2 = 0, p = 1;
  bool mismatch = false;
};
SampleRatio sample_ratio_check(const std::vector<double>& users, const std::vector<double>& shares);

double normal_quantile(double p);

}  // namespace persona::experiment
