// Differential privacy: the exact samplers' distributions, a stochastic test in the style of
// Google's DP testing library (outputs on neighbouring datasets must stay within e^epsilon of each
// other) that passes the mechanism and catches one with too little noise, contribution bounds,
// and the budget ledger under concurrent spending. Seeded, so the outcomes are stable.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <thread>

#include "persona/privacy/dp.h"
#include "support/test_support.h"

namespace persona::privacy {
namespace {

TEST(Dp, BernoulliExpAndUniformAreExact) {
  auto rng = seeded_random(1);
  const int n = 200000;
  for (auto [num, den] : std::vector<std::pair<uint64_t, uint64_t>>{{1, 2}, {1, 1}, {5, 2}, {0, 1}}) {
    int hits = 0;
    for (int i = 0; i < n; ++i) hits += bernoulli_exp(*rng, num, den);
    const double p = std::exp(-static_cast<double>(num) / static_cast<double>(den));
    EXPECT_NEAR(hits / double(n), p, 4 * std::sqrt(p * (1 - p) / n) + 1e-9) << num << "/" << den;
  }
  std::vector<int> counts(3, 0);
  for (int i = 0; i < n; ++i) ++counts[uniform_below(*rng, 3)];
  for (int c : counts) EXPECT_NEAR(c / double(n), 1.0 / 3, 0.005);
}

TEST(Dp, DiscreteLaplaceHasItsDistribution) {
  auto rng = seeded_random(2);
  const int n = 200000;
  std::map<int64_t, int> seen;
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    const auto x = discrete_laplace(*rng, 3, 2);  // scale 1.5
    ++seen[x];
    sum += static_cast<double>(x);
  }
  const double a = std::exp(-2.0 / 3.0);  // P(x) = (1 - a) / (1 + a) a^|x|
  for (int64_t x : {0, 1, -1, 3, -5}) {
    const double p = (1 - a) / (1 + a) * std::pow(a, std::abs(static_cast<double>(x)));
    EXPECT_NEAR(seen[x] / double(n), p, 4 * std::sqrt(p * (1 - p) / n)) << "at " << x;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.03);
}

// The largest ratio, over outputs both runs produce often enough to estimate, between the
// empirical probabilities of an output on two neighbouring datasets (Google's DP stochastic
// tester does the same over histograms of outputs).
double worst_ratio(const std::function<int64_t()>& on_d, const std::function<int64_t()>& on_neighbour, int n, int min_count) {
  std::map<int64_t, int> a, b;
  for (int i = 0; i < n; ++i) ++a[on_d()], ++b[on_neighbour()];
  double worst = 0;
  for (const auto& [v, ca] : a) {
    const int cb = b.count(v) ? b[v] : 0;
    if (ca < min_count || cb < min_count) continue;
    worst = std::max({worst, double(ca) / cb, double(cb) / ca});
  }
  return worst;
}

TEST(Dp, NeighbouringDatasetsStayWithinEpsilon) {
  const double epsilon = 0.5;
  auto rng = seeded_random(3);
  const int n = 200000, min_count = 2000;  // counts >= 2000: ratio estimates within about 7%
  const double slack = 1.15;
  const double ratio = worst_ratio([&] { return static_cast<int64_t>(dp_count(10, epsilon, *rng).value); },
                                   [&] { return static_cast<int64_t>(dp_count(11, epsilon, *rng).value); }, n, min_count);
  EXPECT_LE(ratio, std::exp(epsilon) * slack);
  EXPECT_GE(ratio, std::exp(epsilon) / slack) << "the bound is tight for the Laplace mechanism";
  // A broken mechanism (a quarter of the noise it needs) is caught by the same test.
  const auto eps = epsilon_from(epsilon);
  const double broken = worst_ratio([&] { return 10 + discrete_laplace(*rng, eps.den, eps.num * 4); },
                                    [&] { return 11 + discrete_laplace(*rng, eps.den, eps.num * 4); }, n, min_count);
  EXPECT_GT(broken, std::exp(epsilon) * slack);
}

TEST(Dp, ContributionsAreBounded) {
  auto rng = seeded_random(4);
  // One user's spend is clamped to the upper bound: the sum's mean over many runs is 130.
  std::vector<double> spend = {10, 20, 1e9};
  double total = 0;
  for (int i = 0; i < 2000; ++i) total += dp_sum(spend, 100, 1, 1, *rng).value;
  EXPECT_NEAR(total / 2000, 130, 12);
  // Epsilon 100 on counts: the noise is almost surely 0 and the bounds show exactly.
  const auto h = dp_histogram({{0, 1, 2}, {0}, {1, 1, 1}}, 3, 2, 100, *rng);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].value, 2);  // users 1 and 2
  EXPECT_EQ(h[1].value, 2);  // user 1 (second of its buckets) and user 3 (counted once)
  EXPECT_EQ(h[2].value, 0);  // user 1's third bucket is beyond max_per_user
  std::vector<double> values;
  for (int i = 0; i < 1000; ++i) values.push_back(i % 100);
  EXPECT_NEAR(dp_quantile(values, 100, 100, 0.5, 100, *rng).value, 50, 1.5);
  EXPECT_NEAR(dp_mean(values, 100, 0.01, 100, *rng).value, 49.5, 0.2);
  EXPECT_THROW(epsilon_from(0), std::invalid_argument);
  EXPECT_THROW(epsilon_from(-1), std::invalid_argument);
  EXPECT_THROW(epsilon_from(NAN), std::invalid_argument);
  EXPECT_THROW(dp_sum(spend, 1e12, 0.01, 1, *rng), std::invalid_argument);
}

TEST(Dp, TheLedgerRefusesOnceTheBudgetIsSpentEvenUnderConcurrency) {
  test::TempDir dir;
  JsonlBudgetLedger ledger(dir.file("ledger.jsonl"), 1.0);
  ledger.set_budget("shop", "ana", 1.0);
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      JsonlBudgetLedger mine(dir.file("ledger.jsonl"), 1.0);
      for (int i = 0; i < 10; ++i) {
        try {
          mine.spend("shop", "ana", 0.1, "count");
          ++granted;
        } catch (const BudgetExhausted&) {
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 10);
  EXPECT_NEAR(ledger.spent("shop", "ana"), 1.0, 1e-9);
  EXPECT_THROW(ledger.spend("shop", "ana", 0.01, "count"), BudgetExhausted);
  EXPECT_NO_THROW(ledger.spend("shop", "bob", 0.5, "count")) << "budgets are per analyst";
  EXPECT_DOUBLE_EQ(ledger.budget("other", "ana"), 1.0) << "the default budget";
}

// Every parameter is checked before a query is charged; what passes is answered without error.
TEST(Dp, ParametersAreCheckedUpFront) {
  EXPECT_NO_THROW(check_dp_parameters("count", 0.1, 0, 0, 0, 0, 0));
  EXPECT_NO_THROW(check_dp_parameters("mean", 0.1, 100, 0.01, 0, 0, 0));
  EXPECT_NO_THROW(check_dp_parameters("quantile", 0.1, 100, 0, 0.5, 100, 0));
  EXPECT_NO_THROW(check_dp_parameters("histogram", 0.1, 0, 0, 0, 0, 3));
  const struct {
    const char* statistic;
    double epsilon, upper, resolution, q;
    int bins, max_per_user;
  } bad[] = {{"quantile", 0.1, 100, 0.01, 2, 100, 1},     {"quantile", 0.1, 100, 0.01, 0.5, 1, 1},
             {"sum", 0.1, 100, 0, 0.5, 100, 1},            {"sum", 0.1, 100, 1e-300, 0.5, 100, 1},
             {"sum", 0.1, 1e300, 1, 0.5, 100, 1},          {"sum", 0.1, NAN, 1, 0.5, 100, 1},
             {"mean", 1e-300, 100, 0.01, 0.5, 100, 1},     {"mean", 1.5e-6, 100, 0.01, 0.5, 100, 1},
             {"count", 101, 0, 0, 0, 0, 0},                {"count", NAN, 0, 0, 0, 0, 0},
             {"histogram", 0.1, 0, 0, 0, 0, 0},            {"median", 0.1, 100, 0.01, 0.5, 100, 1},
             {"mean", 0.1, 1.3e-312, 3e284, 0.5, 100, 1}};  // 0 units after the division (found by fuzz_privacy)
  for (const auto& b : bad)
    EXPECT_THROW(check_dp_parameters(b.statistic, b.epsilon, b.upper, b.resolution, b.q, b.bins, b.max_per_user),
                 std::invalid_argument)
        << b.statistic << " " << b.epsilon << " " << b.upper << " " << b.resolution << " " << b.q;
}

}  // namespace
}  // namespace persona::privacy
