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

}  // namespace persona::experiment
