#pragma once
// Purchase propensity (task R4): will a customer buy again within the horizon after a snapshot?
// Features use only purchases before the snapshot; the label is a purchase in
// [snapshot, snapshot + horizon). Invoices are the events' sessions (or their timestamps).
#include <cstdint>
#include <string>
#include <vector>

#include "persona/ml/tabular.h"
#include "persona/store/store.h"

namespace persona::demand {

// recency_days, frequency, monetary, tenure_days, mean_basket_value, distinct_items,
// invoices_30d, invoices_90d, mean_days_between_invoices, home_region
const std::vector<std::string>& propensity_features();

struct PropensitySet {
  ml::TabularData data;        // one row per customer with a purchase before the snapshot
  std::vector<int32_t> users;  // the store's user id of each row
  std::string home_region;     // the region "home_region" compares with
  double positive_rate() const;
};

// `home_region` empty: the most common region among customers with purchases.
PropensitySet propensity_set(const store::EventColumns& events, int64_t snapshot, int horizon_days = 90,
                             const std::string& home_region = "");

}  // namespace persona::demand
