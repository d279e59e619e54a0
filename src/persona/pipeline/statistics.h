#pragma once
// Differentially private statistics over the store's users (the analytics-consenting ones),
// charged to a per-dataset, per-analyst budget before anything is computed: the work behind
// `persona dp` and the server's /v1/stats/dp.
#include <string>

#include <nlohmann/json.hpp>

#include "persona/privacy/dp.h"
#include "persona/store/store.h"

namespace persona::pipeline {

struct DpQuery {
  std::string statistic;   // count | sum | mean | quantile | histogram
  std::string analyst;
  double epsilon = 0.1;
  std::string event;       // count: only users with an event of this type ("" = any)
  double upper = 0;        // sum, mean, quantile: a user's spend clamped to [0, upper]
  double resolution = 0.01;
  double q = 0.5;          // quantile
  int bins = 100;          // quantile
  std::string by = "region";  // histogram: region | category
  int max_per_user = 1;       // histogram: categories a user counts in at most
};

// Checks the query (a clear persona::Error for a bad one), charges the ledger (throws
// privacy::BudgetExhausted when the budget would be exceeded), then answers:
// {statistic, dataset, analyst, result, budget_left}.
nlohmann::json run_dp_query(store::Store& store, const std::string& dataset, privacy::BudgetLedger& ledger,
                            const DpQuery& query);

}  // namespace persona::pipeline
