#include "persona/pipeline/statistics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "persona/core/error.h"

namespace persona::pipeline {

nlohmann::json run_dp_query(store::Store& store, const std::string& dataset, privacy::BudgetLedger& ledger,
                            const DpQuery& a) {
  static const char* statistics[] = {"count", "sum", "mean", "quantile", "histogram"};
  if (std::find(std::begin(statistics), std::end(statistics), a.statistic) == std::end(statistics))
    throw Error(fmt::format("unknown statistic \"{}\"", a.statistic), {}, "count, sum, mean, quantile or histogram");
  if (!(a.epsilon > 0) || a.epsilon > 100) throw Error(fmt::format("epsilon {} is not in (0, 100]", a.epsilon));
  if ((a.statistic == "sum" || a.statistic == "mean" || a.statistic == "quantile") && !(a.upper > 0))
    throw Error(fmt::format("{} needs an upper clamp above 0 (chosen without looking at the data)", a.statistic));
  // Every parameter, before the ledger is charged: a query that cannot be answered costs nothing.
  try {
    privacy::check_dp_parameters(a.statistic, a.epsilon, a.upper, a.resolution, a.q, a.bins, a.max_per_user);
  } catch (const std::invalid_argument& e) {
    throw Error(fmt::format("{} query: {}", a.statistic, e.what()), {}, "nothing was charged to the privacy budget");
  }
  if (a.statistic == "histogram" && a.by != "region" && a.by != "category")
    throw Error(fmt::format("histogram by \"{}\"", a.by), {}, "by region or category");
  std::optional<EventType> type;
  if (!a.event.empty()) {
    type = parse_event_type(a.event);
    if (!type) throw Error(fmt::format("unknown event type \"{}\"", a.event));
  }

  const auto events = store.events(store::Use::Analytics);
  // Per user: spend on purchases, whether counted, the purchased categories.
  const size_t users = events.user_ids.size();
  std::vector<double> spend(users, 0);
  std::vector<bool> bought(users, false), counted(users, false);
  std::vector<std::vector<int>> categories(users);
  std::map<std::string, int> category_index;
  for (size_t i = 0; i < events.size(); ++i) {
    const auto u = static_cast<size_t>(events.user[i]);
    if (!type || events.type[i] == static_cast<uint8_t>(*type)) counted[u] = true;
    if (events.type[i] != static_cast<uint8_t>(EventType::Purchase)) continue;
    bought[u] = true;
    if (std::isfinite(events.value[i])) spend[u] += events.value[i] * events.quantity[i];
    const auto& cat = events.item_categories[static_cast<size_t>(events.item[i])];
    if (!cat.empty()) categories[u].push_back(category_index.try_emplace(cat, static_cast<int>(category_index.size())).first->second);
  }
  std::vector<double> buyers;
  for (size_t u = 0; u < users; ++u)
    if (bought[u]) buyers.push_back(spend[u]);

  // Charged before anything is computed: a refused query reveals nothing.
  ledger.spend(dataset, a.analyst, a.epsilon, a.statistic);
  auto rng = privacy::secure_random();
  nlohmann::json j = {{"statistic", a.statistic}, {"dataset", dataset}, {"analyst", a.analyst}};
  if (a.statistic == "count") {
    j["result"] = privacy::dp_count(std::count(counted.begin(), counted.end(), true), a.epsilon, *rng).to_json();
  } else if (a.statistic == "sum") {
    j["result"] = privacy::dp_sum(buyers, a.upper, a.resolution, a.epsilon, *rng).to_json();
  } else if (a.statistic == "mean") {
    j["result"] = privacy::dp_mean(buyers, a.upper, a.resolution, a.epsilon, *rng).to_json();
  } else if (a.statistic == "quantile") {
    j["result"] = privacy::dp_quantile(buyers, a.upper, a.bins, a.q, a.epsilon, *rng).to_json();
  } else {
    std::vector<std::string> names;
    std::vector<std::vector<int>> per_user(users);
    if (a.by == "region") {
      std::map<std::string, int> regions;
      for (size_t u = 0; u < users; ++u) {
        const auto& r = events.user_regions[u];
        if (!r.empty()) per_user[u].push_back(regions.try_emplace(r, static_cast<int>(regions.size())).first->second);
      }
      names.resize(regions.size());
      for (const auto& [n, i] : regions) names[static_cast<size_t>(i)] = n;
    } else {
      per_user = categories;
      names.resize(category_index.size());
      for (const auto& [n, i] : category_index) names[static_cast<size_t>(i)] = n;
    }
    const auto h = privacy::dp_histogram(per_user, names.size(), a.max_per_user, a.epsilon, *rng);
    nlohmann::json buckets = nlohmann::json::object();
    for (size_t i = 0; i < names.size(); ++i) buckets[names[i]] = h[i].value;
    j["result"] = {{"buckets", buckets}, {"epsilon", a.epsilon}, {"noise_scale", h.empty() ? 0.0 : h[0].noise_scale}};
  }
  j["budget_left"] = ledger.budget(dataset, a.analyst) - ledger.spent(dataset, a.analyst);
  return j;
}

}  // namespace persona::pipeline
