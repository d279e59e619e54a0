#include "persona/experiment/stats.h"

#include <cmath>
#include <cstdio>
#include <random>

#include <gtest/gtest.h>

namespace persona::experiment {
namespace {

// Users with Poisson-ish impressions and Bernoulli clicks at `rate`: the per-user sums of one variant.
RatioSums users_day(std::mt19937_64& rng, int users, double rate, std::vector<std::pair<double, double>>& totals) {
  std::poisson_distribution<int> impressions(5);
  std::bernoulli_distribution click(rate);
  if (totals.size() < static_cast<size_t>(users)) totals.resize(users);
  RatioSums s;
  for (auto& [x, y] : totals) {
    const int n = impressions(rng);
    x += n;
    for (int i = 0; i < n; ++i) y += click(rng);
    if (x > 0) s.add(x, y);
  }
  return s;
}

// The point of the sequential test: looked at every day for 30 days, an A/A comparison crosses
// alpha in about alpha of the runs, while a naive z-test looked at daily crosses far more often.
TEST(SequentialTest, AnAaTestLookedAtDailyKeepsItsFalsePositiveRate) {
  const int runs = 300;
  int sequential = 0, naive = 0;
  for (int run = 0; run < runs; ++run) {
    std::mt19937_64 rng(1000 + run);
    std::vector<std::pair<double, double>> a, b;
    SequentialTest test(0.05, 0.1 * 0.05);
    bool naive_hit = false, hit = false;
    for (int day = 0; day < 30; ++day) {
      const auto ea = ratio_estimate(users_day(rng, 100, 0.05, a)), eb = ratio_estimate(users_day(rng, 100, 0.05, b));
      const double v = ea.variance + eb.variance, d = eb.value - ea.value;
      hit = test.look(d, v).significant || hit;
      naive_hit = naive_hit || std::abs(d) / std::sqrt(v) > 1.96;
    }
    sequential += hit;
    naive += naive_hit;
  }
  const double fp = static_cast<double>(sequential) / runs, naive_fp = static_cast<double>(naive) / runs;
  std::printf("A/A over %d runs of 30 daily looks: sequential %.3f, naive z-test %.3f\n", runs, fp, naive_fp);
  // The nominal level with room for chance (300 runs: one standard error is 1.3 points).
  EXPECT_LE(fp, 0.05 + 3 * std::sqrt(0.05 * 0.95 / runs)) << fp;
  EXPECT_GT(naive_fp, 0.12) << "a naive daily test should overshoot: " << naive_fp;
}

TEST(SequentialTest, FindsARealLiftAndItsIntervalCoversIt) {
  int found = 0, covered = 0;
  for (int run = 0; run < 40; ++run) {
    std::mt19937_64 rng(77 + run);
    std::vector<std::pair<double, double>> a, b;
    SequentialTest test(0.05, 0.1 * 0.05);
    SequentialTest::Look l;
    for (int day = 0; day < 30; ++day) {
      const auto ea = ratio_estimate(users_day(rng, 400, 0.05, a)), eb = ratio_estimate(users_day(rng, 400, 0.06, b));
      l = test.look(eb.value - ea.value, ea.variance + eb.variance);
    }
    found += l.significant;
    covered += l.low <= 0.01 && 0.01 <= l.high;
  }
  EXPECT_GE(found, 36);
  EXPECT_GE(covered, 36);
}

TEST(SequentialTest, ThePValueNeverRisesAndTheIntervalOnlyNarrows) {
  SequentialTest test(0.05, 0.01);
  double p = 1, width = 1e300;
  const double effects[] = {0.02, -0.01, 0.005, 0.03, 0.0};
  for (double e : effects) {
    const auto l = test.look(e, 1e-4);
    EXPECT_LE(l.p, p);
    EXPECT_LE(l.high - l.low, width + 1e-12);
    p = l.p;
    width = l.high - l.low;
  }
}

TEST(SequentialTest, ItsDetectableEffectIsLargerThanAFixedHorizonTestsAndShrinksWithData) {
  SequentialTest test(0.05, 0.005);
  const auto early = test.look(0, 4e-6), later = test.look(0, 1e-6);
  EXPECT_GT(early.mde, fixed_horizon_mde(4e-6, 0.05));
  EXPECT_LT(later.mde, early.mde);
  // Textbook: (1.96 + 0.8416) * sd.
  EXPECT_NEAR(fixed_horizon_mde(1e-4, 0.05), 2.8016 * 0.01, 1e-4);
}

TEST(RatioEstimate, IsTheRatioOfSumsWithADeltaMethodVariance) {
  RatioSums s;
  s.add(10, 1);
  s.add(10, 3);
  s.add(20, 2);
  const auto e = ratio_estimate(s);
  EXPECT_DOUBLE_EQ(e.value, 6.0 / 40);
  EXPECT_GT(e.variance, 0);
  s.add(20, 2, -1);  // removing a user undoes it
  EXPECT_DOUBLE_EQ(ratio_estimate(s).value, 4.0 / 20);
  EXPECT_EQ(ratio_estimate(RatioSums{}).value, 0);
}

TEST(SampleRatio, FlagsABrokenSplitAndPassesAFairOne) {
  EXPECT_TRUE(sample_ratio_check({5200, 4800}, {0.5, 0.5}).mismatch);
  EXPECT_FALSE(sample_ratio_check({5012, 4988}, {0.5, 0.5}).mismatch);
  EXPECT_FALSE(sample_ratio_check({9030, 970}, {0.9, 0.1}).mismatch);
  EXPECT_TRUE(sample_ratio_check({5000, 5000}, {0.9, 0.1}).mismatch);
}

}  // namespace
}  // namespace persona::experiment
