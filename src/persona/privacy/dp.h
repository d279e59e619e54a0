#pragma once
// Differential privacy for statistics over users. Noise comes from the discrete Laplace
// distribution sampled exactly with integer arithmetic (Canonne, Kamath and Steinke, "The
// Discrete Gaussian for Differential Privacy", 2020, algorithms 1 and 2) from a cryptographic
// random source: floating-point Laplace noise leaks through the gaps and rounding of doubles
// (Mironov 2012), integer noise on integer statistics does not. Every statistic bounds each user's
// contribution first (a count of users, a sum clamped per user, buckets per user), so its
// sensitivity is known; real values are counted in integer units of a resolution. A ledger
// charges each query's epsilon to its dataset and analyst and refuses a query once the budget
// would be exceeded.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace persona::privacy {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual uint64_t next() = 0;  // 64 uniform bits
};
// The operating system's CSPRNG through libsodium: what statistics use.
std::unique_ptr<RandomSource> secure_random();
// A reproducible stream (libsodium's deterministic ChaCha20 generator) for tests only.
std::unique_ptr<RandomSource> seeded_random(uint64_t seed);

// An integer uniform in [0, n), n > 0 (rejection sampling: no modulo bias).
uint64_t uniform_below(RandomSource& rng, uint64_t n);
// Bernoulli(exp(-num/den)), exactly.
bool bernoulli_exp(RandomSource& rng, uint64_t num, uint64_t den);
// Discrete Laplace with scale t/s: P(x) proportional to exp(-|x| s / t).
int64_t discrete_laplace(RandomSource& rng, uint64_t t, uint64_t s);

// Epsilon as a fraction num/den (den 10^6), rounded down: a little more noise, never less.
struct Epsilon {
  uint64_t num = 0, den = 1;
  double value() const { return static_cast<double>(num) / static_cast<double>(den); }
};
Epsilon epsilon_from(double e);  // throws std::invalid_argument outside (0, 100]

// Checks every parameter of one statistic before any budget is charged or anything computed (as
// Google's differential-privacy builders do): throws std::invalid_argument naming the bad one.
// `statistic`: count | sum | mean | quantile | histogram.
void check_dp_parameters(const std::string& statistic, double epsilon, double upper, double resolution, double q, int bins,
                         int max_per_user);

struct DpValue {
  double value = 0;         // the noisy statistic
  double epsilon = 0;       // what it cost
  double noise_scale = 0;   // the Laplace scale in the statistic's units (for error bars)
  nlohmann::json to_json() const;
};

// Users with at least one qualifying event: each user counts once (sensitivity 1).
DpValue dp_count(int64_t users, double epsilon, RandomSource& rng);
// The sum of per-user totals, each clamped to [0, upper] and counted in units of `resolution`.
DpValue dp_sum(const std::vector<double>& per_user, double upper, double resolution, double epsilon, RandomSource& rng);
// Sum / count, each with half the epsilon; nothing (NaN) when the noisy count is not positive.
DpValue dp_mean(const std::vector<double>& per_user, double upper, double resolution, double epsilon, RandomSource& rng);
// Users per bucket; a user in several buckets keeps at most `max_per_user` of them (chosen by
// the caller's order), so the sensitivity is max_per_user. Noisy counts below zero become zero.
std::vector<DpValue> dp_histogram(const std::vector<std::vector<int>>& buckets_per_user, size_t buckets, int max_per_user,
                                  double epsilon, RandomSource& rng);
// The q-quantile of per-user values in [0, upper], from a noisy histogram of `bins` equal bins
// (post-processing of a DP histogram: no further cost).
DpValue dp_quantile(const std::vector<double>& per_user, double upper, int bins, double q, double epsilon, RandomSource& rng);

class BudgetExhausted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The privacy budget per dataset and analyst: budgets set and epsilons spent, charged so that
// concurrent queries cannot both spend the last of a budget. Two kinds: a JSON Lines file
// (JsonlBudgetLedger, beside a SQLite store) and a table of a PostgreSQL store, shared by every
// server of the database (store::PgBudgetLedger).
class BudgetLedger {
 public:
  virtual ~BudgetLedger() = default;
  virtual void set_budget(const std::string& dataset, const std::string& analyst, double epsilon) = 0;
  virtual double budget(const std::string& dataset, const std::string& analyst) const = 0;
  virtual double spent(const std::string& dataset, const std::string& analyst) const = 0;
  // Charges `epsilon`, or throws BudgetExhausted (nothing charged) when it would exceed the budget.
  virtual void spend(const std::string& dataset, const std::string& analyst, double epsilon, const std::string& query) = 0;

  // Every analyst's account on `dataset` (for the privacy dashboard), by analyst.
  struct Account {
    std::string analyst;
    double budget = 0, spent = 0;
    int64_t queries = 0, last_time = 0;
  };
  virtual std::vector<Account> accounts(const std::string& dataset) const = 0;
};

// The budget's check of a charge, the same for every kind of ledger.
void require_budget(const std::string& dataset, const std::string& analyst, double budget, double spent, double epsilon);

// An append-only JSON Lines ledger, locked (flock) while read and appended.
class JsonlBudgetLedger final : public BudgetLedger {
 public:
  explicit JsonlBudgetLedger(std::string path, double default_budget = 1.0);
  void set_budget(const std::string& dataset, const std::string& analyst, double epsilon) override;
  double budget(const std::string& dataset, const std::string& analyst) const override;
  double spent(const std::string& dataset, const std::string& analyst) const override;
  void spend(const std::string& dataset, const std::string& analyst, double epsilon, const std::string& query) override;
  std::vector<Account> accounts(const std::string& dataset) const override;

 private:
  std::string path_;
  double default_budget_;
};

}  // namespace persona::privacy
