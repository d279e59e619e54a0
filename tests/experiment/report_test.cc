#include "persona/experiment/report.h"

#include <random>

#include <gtest/gtest.h>

#include "persona/core/error.h"
#include "persona/privacy/dp.h"

namespace persona::experiment {
namespace {

Experiment two_variants() {
  Experiment e;
  e.name = "test";
  e.salt = new_salt();
  e.variants = parse_variants("a=x,b=y", "");
  return e;
}

// Feedback for `days` days: each user in a variant sees 5 items a day, clicking each at the rate given.
std::vector<store::FeedbackTally> simulate(const Experiment& e, double rate_a, double rate_b, int users, int days, uint64_t seed,
                                           double skew = 0.5) {
  std::mt19937_64 rng(seed);
  std::vector<store::FeedbackTally> out;
  std::bernoulli_distribution in_b(skew);
  std::vector<int> variant(users);
  for (auto& v : variant) v = in_b(rng);
  for (int d = 0; d < days; ++d)
    for (int u = 0; u < users; ++u) {
      std::bernoulli_distribution click(variant[u] ? rate_b : rate_a);
      store::FeedbackTally t{e.variants[variant[u]].name, "u" + std::to_string(u), 20000 + d, 5};
      for (int i = 0; i < 5; ++i) t.clicks += click(rng);
      t.purchases = t.clicks / 3;
      t.revenue = 20.0 * t.purchases;
      out.push_back(t);
    }
  return out;
}

TEST(ExperimentReport, NamesTheBetterVariant) {
  const auto e = two_variants();
  const auto r = experiment_report(e, simulate(e, 0.05, 0.08, 2000, 14, 3));
  EXPECT_EQ(r["days"], 14);
  EXPECT_FALSE(r["sample_ratio"]["mismatch"].get<bool>());
  bool ctr = false;
  for (const auto& c : r["comparisons"])
    if (c["metric"] == "ctr") {
      ctr = true;
      EXPECT_TRUE(c["significant"].get<bool>());
      EXPECT_GT(c["effect"].get<double>(), 0);
      EXPECT_LT(c["low"].get<double>(), 0.03);
      EXPECT_GT(c["high"].get<double>(), 0.03);
    }
  EXPECT_TRUE(ctr);
  EXPECT_NE(r["verdict"].get<std::string>().find("b beats a on click-through"), std::string::npos) << r["verdict"];
  EXPECT_NEAR(r["variants"][0]["ctr"]["value"].get<double>(), 0.05, 0.005);
  EXPECT_FALSE(r.contains("salt"));
}

TEST(ExperimentReport, AnAaExperimentFindsNothingAndSaysWhatItCouldDetect) {
  const auto e = two_variants();
  const auto r = experiment_report(e, simulate(e, 0.05, 0.05, 1000, 10, 9));
  for (const auto& c : r["comparisons"]) EXPECT_FALSE(c["significant"].get<bool>()) << c.dump();
  EXPECT_NE(r["verdict"].get<std::string>().find("Undecided"), std::string::npos) << r["verdict"];
  EXPECT_NE(r["verdict"].get<std::string>().find("detects a change of about"), std::string::npos) << r["verdict"];
}

TEST(ExperimentReport, ABrokenSplitComesFirst) {
  const auto e = two_variants();
  const auto r = experiment_report(e, simulate(e, 0.05, 0.09, 4000, 5, 5, 0.6));
  EXPECT_TRUE(r["sample_ratio"]["mismatch"].get<bool>());
  EXPECT_NE(r["verdict"].get<std::string>().find("The split is broken"), std::string::npos) << r["verdict"];
}

TEST(ExperimentReport, NoFeedbackIsSaidPlainly) {
  const auto r = experiment_report(two_variants(), std::vector<store::FeedbackTally>{});
  EXPECT_EQ(r["days"], 0);
  EXPECT_EQ(r["comparisons"].size(), 0u);
  EXPECT_NE(r["verdict"].get<std::string>().find("No feedback yet"), std::string::npos);
}

// The DP release: noisy per-variant sums near the exact ones at a generous epsilon, far from them
// at a tiny one, the noise scales stated, no comparisons, and bad parameters refused.
TEST(ExperimentReport, ADifferentiallyPrivateReleaseIsNoisyAggregatesOnly) {
  const auto e = two_variants();
  const auto tallies = simulate(e, 0.05, 0.08, 2000, 7, 11);
  const auto exact = experiment_report(e, tallies);
  auto rng = privacy::seeded_random(5);
  DpReportOptions o;
  o.epsilon = 10;
  const auto loose = experiment_report_dp(e, tallies, o, *rng);
  EXPECT_TRUE(loose["comparisons"].empty());
  EXPECT_EQ(loose["dp"]["epsilon"], 10.0);
  for (size_t v = 0; v < 2; ++v) {
    EXPECT_NEAR(loose["variants"][v]["users"].get<double>(), exact["variants"][v]["users"].get<double>(), 20);
    EXPECT_NEAR(loose["variants"][v]["ctr"]["value"].get<double>(), exact["variants"][v]["ctr"]["value"].get<double>(), 0.005);
    EXPECT_GT(loose["variants"][v]["noise_scale"]["clicks"].get<double>(), 0);
  }
  o.epsilon = 0.001;
  double off = 0;
  for (int i = 0; i < 5; ++i)
    off += std::abs(experiment_report_dp(e, tallies, o, *rng)["variants"][0]["clicks"].get<double>() -
                    exact["variants"][0]["clicks"].get<double>());
  EXPECT_GT(off / 5, 1000) << "at epsilon 0.001 the clicks must be far from exact";
  o.epsilon = -1;
  EXPECT_THROW(experiment_report_dp(e, tallies, o, *rng), Error);
  o.epsilon = 1;
  o.max_impressions = 0;
  EXPECT_THROW(experiment_report_dp(e, tallies, o, *rng), Error);
}

}  // namespace
}  // namespace persona::experiment
