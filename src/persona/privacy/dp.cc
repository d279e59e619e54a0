#include "persona/privacy/dp.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/privacy/keys.h"

namespace persona::privacy {
namespace {

class Secure final : public RandomSource {
 public:
  uint64_t next() override {
    uint64_t x;
    randombytes_buf(&x, sizeof x);
    return x;
  }
};

class Seeded final : public RandomSource {
 public:
  explicit Seeded(uint64_t seed) : seed_(seed) {}
  uint64_t next() override {
    if (at_ == buffer_.size()) refill();
    return buffer_[at_++];
  }

 private:
  void refill() {
    unsigned char seed[randombytes_SEEDBYTES] = {};
    std::memcpy(seed, &seed_, sizeof seed_);
    std::memcpy(seed + 8, &block_, sizeof block_);
    ++block_;
    randombytes_buf_deterministic(buffer_.data(), buffer_.size() * sizeof(uint64_t), seed);
    at_ = 0;
  }
  uint64_t seed_, block_ = 0;
  std::array<uint64_t, 512> buffer_{};
  size_t at_ = 512;
};

bool bernoulli(RandomSource& rng, uint64_t num, uint64_t den) { return uniform_below(rng, den) < num; }

// Bernoulli(exp(-num/den)) for num/den in [0, 1] (CKS algorithm 1, first part).
bool bernoulli_exp_small(RandomSource& rng, uint64_t num, uint64_t den) {
  uint64_t k = 1;
  // Keep drawing Bernoulli(gamma / k); the number of successes before the first failure decides.
  while (bernoulli(rng, num, den * k)) ++k;
  return k % 2 == 1;
}

}  // namespace

std::unique_ptr<RandomSource> secure_random() {
  sodium_ready();
  return std::make_unique<Secure>();
}

std::unique_ptr<RandomSource> seeded_random(uint64_t seed) {
  sodium_ready();
  return std::make_unique<Seeded>(seed);
}

uint64_t uniform_below(RandomSource& rng, uint64_t n) {
  if (n == 0) throw std::invalid_argument("uniform_below(0)");
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // the largest multiple of n
  for (;;) {
    const uint64_t x = rng.next();
    if (x < limit) return x % n;
  }
}

bool bernoulli_exp(RandomSource& rng, uint64_t num, uint64_t den) {
  if (den == 0) throw std::invalid_argument("bernoulli_exp: zero denominator");
  for (uint64_t i = 0; i < num / den; ++i)
    if (!bernoulli_exp_small(rng, 1, 1)) return false;
  return bernoulli_exp_small(rng, num % den, den);
}

int64_t discrete_laplace(RandomSource& rng, uint64_t t, uint64_t s) {
  if (t == 0 || s == 0) throw std::invalid_argument("discrete_laplace: scale parts must be positive");
  for (;;) {
    const uint64_t u = uniform_below(rng, t);
    if (!bernoulli_exp(rng, u, t)) continue;
    uint64_t v = 0;
    while (bernoulli_exp(rng, 1, 1)) ++v;
    const uint64_t x = u + t * v;
    const uint64_t y = x / s;
    const bool negative = bernoulli(rng, 1, 2);
    if (negative && y == 0) continue;
    return negative ? -static_cast<int64_t>(y) : static_cast<int64_t>(y);
  }
}

Epsilon epsilon_from(double e) {
  if (!(e > 0 && e <= 100)) throw std::invalid_argument(fmt::format("epsilon must be in (0, 100], got {}", e));
  Epsilon out{static_cast<uint64_t>(std::floor(e * 1e6)), 1000000};
  if (out.num == 0) throw std::invalid_argument("epsilon below 1e-6");
  return out;
}

nlohmann::json DpValue::to_json() const {
  return {{"value", std::isnan(value) ? nlohmann::json() : nlohmann::json(value)}, {"epsilon", epsilon}, {"noise_scale", noise_scale}};
}

namespace {

// An integer statistic plus discrete Laplace noise for the given sensitivity (in the same units).
int64_t noisy(int64_t truth, uint64_t sensitivity, const Epsilon& eps, RandomSource& rng) {
  // scale = sensitivity / epsilon = sensitivity * den / num
  return truth + discrete_laplace(rng, sensitivity * eps.den, eps.num);
}

uint64_t units(double upper, double resolution) {
  // Bounded so that the sampler's integers (scale numerator times a small counter) stay in 64 bits.
  // The ratio, not just its parts: a tiny upper over a huge resolution underflows to 0 units (a
  // zero sensitivity, found by fuzz_privacy).
  const double ratio = upper / resolution;
  if (!(upper > 0) || !std::isfinite(upper) || !(resolution > 0) || !(ratio > 0) || !(ratio <= 1e9))
    throw std::invalid_argument(fmt::format("the clamp (upper {}) must be positive and at most 10^9 resolution units "
                                            "(resolution {})", upper, resolution));
  return static_cast<uint64_t>(std::ceil(upper / resolution));
}

void check_quantile(double upper, int bins, double q) {
  if (bins < 2 || bins > 100000) throw std::invalid_argument(fmt::format("bins must be between 2 and 100000, got {}", bins));
  if (!(q >= 0 && q <= 1)) throw std::invalid_argument(fmt::format("q must be between 0 and 1, got {}", q));
  if (!(upper > 0) || !std::isfinite(upper)) throw std::invalid_argument("the upper bound must be positive and finite");
}

void check_max_per_user(int max_per_user) {
  if (max_per_user < 1) throw std::invalid_argument("max_per_user must be at least 1");
}

}  // namespace

void check_dp_parameters(const std::string& statistic, double epsilon, double upper, double resolution, double q, int bins,
                         int max_per_user) {
  // A mean spends half on the sum and half on the count: each half must be a valid epsilon.
  (void)epsilon_from(statistic == "mean" ? epsilon / 2 : epsilon);
  (void)epsilon_from(epsilon);
  if (statistic == "sum" || statistic == "mean") (void)units(upper, resolution);
  else if (statistic == "quantile") check_quantile(upper, bins, q);
  else if (statistic == "histogram") check_max_per_user(max_per_user);
  else if (statistic != "count") throw std::invalid_argument(fmt::format("unknown statistic \"{}\"", statistic));
}

DpValue dp_count(int64_t users, double epsilon, RandomSource& rng) {
  const auto eps = epsilon_from(epsilon);
  return {static_cast<double>(noisy(users, 1, eps, rng)), epsilon, 1 / eps.value()};
}

DpValue dp_sum(const std::vector<double>& per_user, double upper, double resolution, double epsilon, RandomSource& rng) {
  const auto eps = epsilon_from(epsilon);
  const uint64_t cap = units(upper, resolution);
  int64_t total = 0;
  for (double v : per_user) {
    if (!std::isfinite(v)) continue;
    total += static_cast<int64_t>(std::llround(std::clamp(v, 0.0, upper) / resolution));
  }
  return {static_cast<double>(noisy(total, cap, eps, rng)) * resolution, epsilon, static_cast<double>(cap) * resolution / eps.value()};
}

DpValue dp_mean(const std::vector<double>& per_user, double upper, double resolution, double epsilon, RandomSource& rng) {
  const auto sum = dp_sum(per_user, upper, resolution, epsilon / 2, rng);
  const auto count = dp_count(static_cast<int64_t>(per_user.size()), epsilon / 2, rng);
  DpValue out;
  out.epsilon = epsilon;
  out.value = count.value > 0 ? std::clamp(sum.value / count.value, 0.0, upper) : NAN;
  out.noise_scale = count.value > 0 ? sum.noise_scale / count.value : NAN;
  return out;
}

std::vector<DpValue> dp_histogram(const std::vector<std::vector<int>>& buckets_per_user, size_t buckets, int max_per_user,
                                  double epsilon, RandomSource& rng) {
  check_max_per_user(max_per_user);
  const auto eps = epsilon_from(epsilon);
  std::vector<int64_t> counts(buckets, 0);
  for (const auto& user : buckets_per_user) {
    int kept = 0;
    std::vector<int> seen;
    for (int b : user) {
      if (b < 0 || static_cast<size_t>(b) >= buckets || std::find(seen.begin(), seen.end(), b) != seen.end()) continue;
      if (kept++ == max_per_user) break;
      seen.push_back(b);
      ++counts[static_cast<size_t>(b)];
    }
  }
  std::vector<DpValue> out;
  for (auto c : counts)
    out.push_back({static_cast<double>(std::max<int64_t>(0, noisy(c, static_cast<uint64_t>(max_per_user), eps, rng))), epsilon,
                   max_per_user / eps.value()});
  return out;
}

DpValue dp_quantile(const std::vector<double>& per_user, double upper, int bins, double q, double epsilon, RandomSource& rng) {
  check_quantile(upper, bins, q);
  std::vector<std::vector<int>> which;
  for (double v : per_user) {
    if (!std::isfinite(v)) continue;
    const int b = std::min(bins - 1, static_cast<int>(std::clamp(v, 0.0, upper) / upper * bins));
    which.push_back({b});
  }
  const auto h = dp_histogram(which, static_cast<size_t>(bins), 1, epsilon, rng);
  double total = 0;
  for (const auto& x : h) total += x.value;
  DpValue out;
  out.epsilon = epsilon;
  out.noise_scale = upper / bins;  // the resolution of the answer; the counts' noise is on top
  if (total <= 0) {
    out.value = NAN;
    return out;
  }
  double seen = 0;
  for (int b = 0; b < bins; ++b) {
    const double next = seen + h[static_cast<size_t>(b)].value;
    if (next >= q * total && h[static_cast<size_t>(b)].value > 0) {
      const double within = (q * total - seen) / h[static_cast<size_t>(b)].value;
      out.value = (b + std::clamp(within, 0.0, 1.0)) * upper / bins;
      return out;
    }
    seen = next;
  }
  out.value = upper;
  return out;
}

void require_budget(const std::string& dataset, const std::string& analyst, double budget, double spent, double epsilon) {
  if (spent + epsilon > budget + 1e-12)
    throw BudgetExhausted(fmt::format("the privacy budget of {} on {} is spent: {:.4g} of {:.4g} used, this query needs {:.4g}",
                                      analyst, dataset, spent, budget, epsilon));
}

JsonlBudgetLedger::JsonlBudgetLedger(std::string path, double default_budget)
    : path_(std::move(path)), default_budget_(default_budget) {}

namespace {

// An exclusive lock on the ledger while it is read and appended.
class Locked {
 public:
  explicit Locked(const std::string& path) : fd_(::open((path + ".lock").c_str(), O_CREAT | O_RDWR, 0600)) {
    if (fd_ < 0) throw Error("cannot lock the privacy-budget ledger", {path});
    ::flock(fd_, LOCK_EX);
  }
  ~Locked() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  int fd_;
};

struct Totals {
  double budget = -1, spent = 0;
};

// Calls fn on every ledger entry of `dataset`, in order; a damaged line is an error.
void for_each_entry(const std::string& path, const std::string& dataset, const std::function<void(const nlohmann::json&)>& fn) {
  std::ifstream in(path);
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    nlohmann::json e;
    if (auto parsed = parse_json(line)) e = std::move(*parsed);
    else throw Error("the privacy-budget ledger is damaged", {path, line_no}, "restore it from a backup: budgets cannot be guessed");
    if (e.value("dataset", "") == dataset) fn(e);
  }
}

Totals read_totals(const std::string& path, const std::string& dataset, const std::string& analyst) {
  Totals t;
  for_each_entry(path, dataset, [&](const nlohmann::json& e) {
    if (e.value("analyst", "") != analyst) return;
    if (e.contains("budget")) t.budget = e["budget"].get<double>();
    if (e.contains("spent")) t.spent += e["spent"].get<double>();
  });
  return t;
}

void append(const std::string& path, const nlohmann::json& entry) {
  std::ofstream out(path, std::ios::app);
  out << entry.dump() << '\n';
  out.flush();
  if (!out) throw Error("cannot write the privacy-budget ledger", {path});
}

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

void JsonlBudgetLedger::set_budget(const std::string& dataset, const std::string& analyst, double epsilon) {
  if (!(epsilon >= 0 && epsilon <= 1000)) throw std::invalid_argument("a budget must be between 0 and 1000");
  Locked lock(path_);
  append(path_, {{"dataset", dataset}, {"analyst", analyst}, {"budget", epsilon}, {"time", now_s()}});
}

double JsonlBudgetLedger::budget(const std::string& dataset, const std::string& analyst) const {
  Locked lock(path_);
  const auto t = read_totals(path_, dataset, analyst);
  return t.budget < 0 ? default_budget_ : t.budget;
}

double JsonlBudgetLedger::spent(const std::string& dataset, const std::string& analyst) const {
  Locked lock(path_);
  return read_totals(path_, dataset, analyst).spent;
}

std::vector<BudgetLedger::Account> JsonlBudgetLedger::accounts(const std::string& dataset) const {
  Locked lock(path_);
  std::map<std::string, Account> by_analyst;
  for_each_entry(path_, dataset, [&](const nlohmann::json& e) {
    const std::string analyst = e.value("analyst", "");
    auto [it, fresh] = by_analyst.try_emplace(analyst, Account{analyst, -1, 0, 0, 0});
    if (e.contains("budget")) it->second.budget = e["budget"].get<double>();
    if (e.contains("spent")) {
      it->second.spent += e["spent"].get<double>();
      ++it->second.queries;
    }
    it->second.last_time = std::max(it->second.last_time, e.value("time", int64_t{0}));
  });
  std::vector<Account> out;
  for (auto& [analyst, a] : by_analyst) {
    if (a.budget < 0) a.budget = default_budget_;
    out.push_back(a);
  }
  return out;
}

void JsonlBudgetLedger::spend(const std::string& dataset, const std::string& analyst, double epsilon, const std::string& query) {
  Locked lock(path_);
  const auto t = read_totals(path_, dataset, analyst);
  const double budget = t.budget < 0 ? default_budget_ : t.budget;
  require_budget(dataset, analyst, budget, t.spent, epsilon);
  append(path_, {{"dataset", dataset}, {"analyst", analyst}, {"spent", epsilon}, {"query", query}, {"time", now_s()}});
}

}  // namespace persona::privacy
