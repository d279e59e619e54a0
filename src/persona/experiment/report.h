#pragma once
// An experiment's report (persona experiment report, GET /v1/experiments/{name}/report, the
// dashboard's Experiments page): per variant click-through, conversion and revenue per impression
// with intervals, each variant against the control by a sequential test looked at once per day,
// the minimum detectable effect, the sample-ratio check and a verdict in words. Only aggregates.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/experiment/experiments.h"
#include "persona/store/store.h"

namespace persona::privacy {
class RandomSource;
}

namespace persona::experiment {

struct ReportOptions {
  double alpha = 0.05;
  // The mixing distribution's scale τ, as a share of the control's value at the first day with
  // data: the size of effect the test is most sensitive to (10%: lifts of about that size).
  double mixing = 0.1;
};

// From tallies in any order (tests build them by hand; the store gives them per variant and user).
nlohmann::json experiment_report(const Experiment& experiment, std::vector<store::FeedbackTally> tallies,
                                 const ReportOptions& options = {});
nlohmann::json experiment_report(const Experiment& experiment, store::Store& store, const ReportOptions& options = {});

// The report released through differential privacy (docs/privacy.md, "Feedback and experiments"):
// per variant, users, impressions, clicks, purchases and revenue as noisy sums of per-user totals,
// each clamped (a user contributes at most `max_impressions` impressions, as many clicks and
// purchases, and `max_revenue` of revenue), each sum with a fifth of epsilon. Every user is in one
// variant, so the whole release costs epsilon (parallel composition); the rates are computed from
// the noisy sums (post-processing). No per-user variances are released, so the sequential
// comparisons are left to the exact report. The caller charges epsilon to a budget first.
struct DpReportOptions {
  double epsilon = 1;
  double max_impressions = 100;  // per user (clicks and purchases too)
  double max_revenue = 500;      // per user
};
nlohmann::json experiment_report_dp(const Experiment& experiment, const std::vector<store::FeedbackTally>& tallies,
                                    const DpReportOptions& options, privacy::RandomSource& rng);

}  // namespace persona::experiment
