#include "persona/experiment/stats.h"

#include <algorithm>
#include <cmath>

#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/normal.hpp>

namespace persona::experiment {

double normal_quantile(double p) { return boost::math::quantile(boost::math::normal(), p); }

double Estimate::low(double z) const { return value - z * std::sqrt(variance); }
double Estimate::high(double z) const { return value + z * std::sqrt(variance); }

Estimate ratio_estimate(const RatioSums& s) {
  if (s.users < 1 || s.x <= 0) return {};
  const double n = s.users, mx = s.x / n, my = s.y / n, r = s.y / s.x;
  if (n < 2) return {r, 0};
  // Sample (co)variances over users, then Var(Ȳ/X̄) ≈ (s_yy - 2 r s_xy + r² s_xx) / (n X̄²).
  const double sxx = (s.xx - n * mx * mx) / (n - 1), syy = (s.yy - n * my * my) / (n - 1),
               sxy = (s.xy - n * mx * my) / (n - 1);
  const double v = std::max(0.0, (syy - 2 * r * sxy + r * r * sxx) / (n * mx * mx));
  return {r, v};
}

double rejection_threshold(double variance, double tau, double alpha) {
  const double v = variance, t2 = tau * tau;
  return std::sqrt(v * (v + t2) / t2 * (2 * std::log(1 / alpha) + std::log((v + t2) / v)));
}

double fixed_horizon_mde(double variance, double alpha, double power) {
  return (normal_quantile(1 - alpha / 2) + normal_quantile(power)) * std::sqrt(variance);
}

SequentialTest::Look SequentialTest::look(double effect, double variance) {
  Look l;
  l.effect = effect;
  l.variance = variance;
  if (!(variance > 0) || !(tau_ > 0)) {
    l.p = p_;
    l.low = low_;
    l.high = high_;
    last_ = l;
    return l;
  }
  const double t2 = tau_ * tau_, v = variance;
  const double log_lambda = 0.5 * std::log(v / (v + t2)) + effect * effect * t2 / (2 * v * (v + t2));
  p_ = std::min(p_, std::min(1.0, std::exp(-log_lambda)));
  const double half = rejection_threshold(v, tau_, alpha_);
  low_ = std::max(low_, effect - half);
  high_ = std::min(high_, effect + half);
  if (low_ > high_) {
    // The intervals stopped overlapping (possible when the effect drifts): keep today's.
    low_ = effect - half;
    high_ = effect + half;
  }
  l.p = p_;
  l.low = low_;
  l.high = high_;
  l.significant = p_ < alpha_;
  l.mde = half + normal_quantile(0.8) * std::sqrt(v);
  last_ = l;
  return l;
}

SampleRatio sample_ratio_check(const std::vector<double>& users, const std::vector<double>& shares) {
  SampleRatio out;
  double total = 0, share_total = 0;
  for (double u : users) total += u;
  for (double s : shares) share_total += s;
  if (users.size() < 2 || total <= 0 || share_total <= 0) return out;
  for (size_t i = 0; i < users.size(); ++i) {
    const double expected = total * shares[i] / share_total;
    if (expected > 0) out.chi2 += (users[i] - expected) * (users[i] - expected) / expected;
  }
  out.p = boost::math::cdf(boost::math::complement(boost::math::chi_squared(static_cast<double>(users.size() - 1)), out.chi2));
  out.mismatch = out.p < 0.001;
  return out;
}

}  // namespace persona::experiment
