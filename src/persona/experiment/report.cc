#include "persona/experiment/report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/experiment/stats.h"
#include "persona/privacy/dp.h"

namespace persona::experiment {
namespace {

struct Metric {
  const char* name;
  const char* words;
  double (*numerator)(const store::FeedbackTally&);
};
const Metric kMetrics[] = {
    {"ctr", "click-through", [](const store::FeedbackTally& t) { return static_cast<double>(t.clicks); }},
    {"conversion", "conversion", [](const store::FeedbackTally& t) { return static_cast<double>(t.purchases); }},
    {"revenue_per_impression", "revenue per impression", [](const store::FeedbackTally& t) { return t.revenue; }},
};
constexpr size_t kMetricCount = std::size(kMetrics);

// One user's totals so far in one variant.
struct UserTotals {
  bool counted = false;  // in the sums (removed and added again as the user's totals grow)
  double impressions = 0, numerators[kMetricCount] = {};
};

struct VariantState {
  std::unordered_map<std::string, UserTotals> users;
  RatioSums sums[kMetricCount];
  double impressions = 0, clicks = 0, carts = 0, purchases = 0, not_interested = 0, revenue = 0;
};

std::string percent(double x) { return fmt::format("{:+.1f}%", 100 * x); }

nlohmann::json interval(const Estimate& e, double z) {
  return {{"value", e.value}, {"low", e.low(z)}, {"high", e.high(z)}};
}

}  // namespace

nlohmann::json experiment_report(const Experiment& experiment, std::vector<store::FeedbackTally> tallies,
                                 const ReportOptions& options) {
  const size_t nv = experiment.variants.size();
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < nv; ++i) index[experiment.variants[i].name] = i;
  std::stable_sort(tallies.begin(), tallies.end(), [](const auto& a, const auto& b) { return a.day < b.day; });

  std::vector<VariantState> state(nv);
  // One test per treatment variant and metric; τ fixed at the first day the control has data.
  std::vector<std::vector<std::optional<SequentialTest>>> tests(nv, std::vector<std::optional<SequentialTest>>(kMetricCount));
  std::vector<double> tau(kMetricCount, 0);
  int64_t looks = 0, first_day = 0, last_day = 0;
  for (size_t at = 0; at < tallies.size();) {
    const int64_t day = tallies[at].day;
    for (; at < tallies.size() && tallies[at].day == day; ++at) {
      const auto& t = tallies[at];
      const auto v = index.find(t.variant);
      if (v == index.end()) continue;  // feedback of a variant not in the definition (never written by Persona)
      auto& s = state[v->second];
      auto& u = s.users[t.user];
      for (size_t m = 0; m < kMetricCount; ++m) {
        if (u.counted) s.sums[m].add(u.impressions, u.numerators[m], -1);
        u.numerators[m] += kMetrics[m].numerator(t);
      }
      u.impressions += static_cast<double>(t.impressions);
      for (size_t m = 0; m < kMetricCount; ++m) s.sums[m].add(u.impressions, u.numerators[m]);
      u.counted = true;
      s.impressions += static_cast<double>(t.impressions);
      s.clicks += static_cast<double>(t.clicks);
      s.carts += static_cast<double>(t.carts);
      s.purchases += static_cast<double>(t.purchases);
      s.not_interested += static_cast<double>(t.not_interested);
      s.revenue += t.revenue;
    }
    if (!looks) first_day = day;
    last_day = day;
    ++looks;
    // The day's look: each treatment against the control.
    for (size_t m = 0; m < kMetricCount; ++m) {
      const auto control = ratio_estimate(state[0].sums[m]);
      if (tau[m] <= 0 && control.value > 0) tau[m] = options.mixing * control.value;
      if (tau[m] <= 0) continue;
      for (size_t v = 1; v < nv; ++v) {
        const auto treatment = ratio_estimate(state[v].sums[m]);
        if (state[v].sums[m].users < 2 || state[0].sums[m].users < 2) continue;
        if (!tests[v][m]) tests[v][m].emplace(options.alpha, tau[m]);
        tests[v][m]->look(treatment.value - control.value, treatment.variance + control.variance);
      }
    }
  }

  const double z = normal_quantile(1 - options.alpha / 2);
  nlohmann::json report = experiment.to_json();
  report["alpha"] = options.alpha;
  report["days"] = looks;
  if (looks) {
    report["first_day"] = first_day * 86400;
    report["last_day"] = last_day * 86400;
  }
  nlohmann::json variants = nlohmann::json::array();
  std::vector<double> users(nv), shares(nv);
  for (size_t v = 0; v < nv; ++v) {
    const auto& s = state[v];
    users[v] = static_cast<double>(s.users.size());
    shares[v] = experiment.variants[v].share;
    nlohmann::json j = {{"name", experiment.variants[v].name}, {"version", experiment.variants[v].version},
                        {"share", shares[v]}, {"users", s.users.size()}, {"impressions", s.impressions},
                        {"clicks", s.clicks}, {"carts", s.carts}, {"purchases", s.purchases},
                        {"not_interested", s.not_interested}, {"revenue", s.revenue}};
    for (size_t m = 0; m < kMetricCount; ++m) j[kMetrics[m].name] = interval(ratio_estimate(s.sums[m]), z);
    variants.push_back(j);
  }
  report["variants"] = variants;

  const auto srm = sample_ratio_check(users, shares);
  report["sample_ratio"] = {{"users", users}, {"expected_shares", shares}, {"chi2", srm.chi2}, {"p", srm.p},
                            {"mismatch", srm.mismatch}};

  nlohmann::json comparisons = nlohmann::json::array();
  std::vector<std::string> findings;
  std::string undecided;
  for (size_t v = 1; v < nv; ++v) {
    for (size_t m = 0; m < kMetricCount; ++m) {
      if (!tests[v][m] || !tests[v][m]->last()) continue;
      const auto& l = *tests[v][m]->last();
      const double control = ratio_estimate(state[0].sums[m]).value;
      const auto& name = experiment.variants[v].name;
      const auto& against = experiment.variants[0].name;
      comparisons.push_back({{"variant", name}, {"against", against}, {"metric", kMetrics[m].name},
                             {"effect", l.effect}, {"relative", control > 0 ? l.effect / control : 0.0},
                             {"low", l.low}, {"high", l.high}, {"p", l.p}, {"significant", l.significant},
                             {"mde", l.mde}, {"mde_relative", control > 0 ? l.mde / control : 0.0}});
      if (l.significant)
        findings.push_back(fmt::format("{} {} {} on {} ({} against {}; always-valid p = {:.3g})", name,
                                       l.effect > 0 ? "beats" : "is worse than", against, kMetrics[m].words,
                                       percent(control > 0 ? l.effect / control : 0), against, l.p));
      else if (m == 0 && undecided.empty())
        undecided = fmt::format("no difference in click-through between {} and {} yet: at today's sample the test "
                                "detects a change of about {} of {}'s rate",
                                name, against, percent(control > 0 ? l.mde / control : 0).substr(1), against);
    }
  }
  report["comparisons"] = comparisons;

  std::string verdict;
  if (looks == 0) {
    verdict = "No feedback yet: send impressions and clicks to POST /v1/feedback.";
  } else if (srm.mismatch) {
    verdict = fmt::format("The split is broken (sample-ratio mismatch, p = {:.2g}): users per variant are not in the "
                          "shares set. Do not trust the comparisons; look for a bug in serving or in sending feedback.",
                          srm.p);
  } else if (!findings.empty()) {
    verdict = findings.front();
    for (size_t i = 1; i < findings.size(); ++i) verdict += "; " + findings[i];
    verdict += ".";
  } else if (!undecided.empty()) {
    verdict = "Undecided: " + undecided + ".";
  } else {
    verdict = "Not enough feedback to compare yet (at least two users per variant with impressions).";
  }
  report["verdict"] = verdict;
  return report;
}

nlohmann::json experiment_report(const Experiment& experiment, store::Store& store, const ReportOptions& options) {
  std::vector<store::FeedbackTally> tallies;
  store.for_each_feedback_tally(experiment.name, [&](const store::FeedbackTally& t) { tallies.push_back(t); });
  return experiment_report(experiment, std::move(tallies), options);
}

nlohmann::json experiment_report_dp(const Experiment& experiment, const std::vector<store::FeedbackTally>& tallies,
                                    const DpReportOptions& options, privacy::RandomSource& rng) {
  if (!(options.epsilon > 0) || options.epsilon > 100) throw Error(fmt::format("epsilon {} is not in (0, 100]", options.epsilon));
  if (!(options.max_impressions >= 1) || !(options.max_revenue > 0))
    throw Error("the per-user clamps are positive (impressions at least 1)");
  const size_t nv = experiment.variants.size();
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < nv; ++i) index[experiment.variants[i].name] = i;
  // Each user's totals over the whole experiment.
  struct Totals {
    double impressions = 0, clicks = 0, purchases = 0, revenue = 0;
  };
  std::vector<std::map<std::string, Totals>> users(nv);
  for (const auto& t : tallies) {
    const auto v = index.find(t.variant);
    if (v == index.end()) continue;
    auto& u = users[v->second][t.user];
    u.impressions += static_cast<double>(t.impressions);
    u.clicks += static_cast<double>(t.clicks);
    u.purchases += static_cast<double>(t.purchases);
    u.revenue += t.revenue;
  }
  const double share = options.epsilon / 5;
  nlohmann::json variants = nlohmann::json::array();
  std::vector<double> noisy_users(nv), shares(nv);
  for (size_t v = 0; v < nv; ++v) {
    std::vector<double> impressions, clicks, purchases, revenue;
    for (const auto& [user, t] : users[v]) {
      impressions.push_back(t.impressions);
      clicks.push_back(t.clicks);
      purchases.push_back(t.purchases);
      revenue.push_back(t.revenue);
    }
    const auto n = privacy::dp_count(static_cast<int64_t>(users[v].size()), share, rng);
    const auto i = privacy::dp_sum(impressions, options.max_impressions, 1, share, rng);
    const auto c = privacy::dp_sum(clicks, options.max_impressions, 1, share, rng);
    const auto p = privacy::dp_sum(purchases, options.max_impressions, 1, share, rng);
    const auto r = privacy::dp_sum(revenue, options.max_revenue, 0.01, share, rng);
    const double shown = std::max(1.0, i.value);
    noisy_users[v] = std::max(0.0, n.value);
    shares[v] = experiment.variants[v].share;
    variants.push_back({{"name", experiment.variants[v].name}, {"version", experiment.variants[v].version},
                        {"share", shares[v]}, {"users", noisy_users[v]}, {"impressions", std::max(0.0, i.value)},
                        {"clicks", std::max(0.0, c.value)}, {"purchases", std::max(0.0, p.value)},
                        {"revenue", std::max(0.0, r.value)},
                        {"ctr", {{"value", std::clamp(c.value / shown, 0.0, 1.0)}}},
                        {"conversion", {{"value", std::clamp(p.value / shown, 0.0, 1.0)}}},
                        {"revenue_per_impression", {{"value", std::max(0.0, r.value) / shown}}},
                        {"noise_scale", {{"users", n.noise_scale}, {"impressions", i.noise_scale}, {"clicks", c.noise_scale},
                                         {"purchases", p.noise_scale}, {"revenue", r.noise_scale}}}});
  }
  const auto srm = sample_ratio_check(noisy_users, shares);
  nlohmann::json report = experiment.to_json();
  report["variants"] = variants;
  report["sample_ratio"] = {{"users", noisy_users}, {"expected_shares", shares}, {"chi2", srm.chi2}, {"p", srm.p},
                            {"mismatch", srm.mismatch}};
  report["comparisons"] = nlohmann::json::array();
  report["dp"] = {{"epsilon", options.epsilon},
                  {"max_impressions_per_user", options.max_impressions},
                  {"max_revenue_per_user", options.max_revenue},
                  {"mechanism", "discrete Laplace on per-user clamped sums, epsilon/5 each; variants are disjoint"}};
  report["verdict"] = "A differentially private release: per-variant figures with noise (noise_scale gives each one's "
                      "Laplace scale). The sequential comparisons need per-user variances and are in the exact report only.";
  return report;
}

}  // namespace persona::experiment
