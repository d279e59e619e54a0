#include "persona/demand/propensity.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include "persona/core/model.h"

namespace persona::demand {

const std::vector<std::string>& propensity_features() {
  static const std::vector<std::string> names{
      "recency_days", "frequency",    "monetary",     "tenure_days",
      "mean_basket_value", "distinct_items", "invoices_30d", "invoices_90d",
      "mean_days_between_invoices", "home_region"};
  return names;
}

double PropensitySet::positive_rate() const {
  if (data.y.empty()) return 0;
  double s = 0;
  for (int y : data.y) s += y;
  return s / static_cast<double>(data.y.size());
}

namespace {

struct Customer {
  double monetary = 0;
  int64_t first = INT64_MAX, last = INT64_MIN;
  std::map<int64_t, int64_t> invoices;  // invoice key -> its time (first line's)
  std::vector<int32_t> items;
  bool buys_later = false;
};

}  // namespace

PropensitySet propensity_set(const store::EventColumns& e, int64_t snapshot, int horizon_days,
                             const std::string& home_region) {
  const int64_t end = snapshot + int64_t{horizon_days} * 86400;
  std::unordered_map<int32_t, Customer> customers;
  const auto purchase = static_cast<uint8_t>(EventType::Purchase);
  for (size_t i = 0; i < e.size(); ++i) {
    if (e.type[i] != purchase) continue;
    const int64_t t = e.timestamp[i];
    if (t >= snapshot) {
      if (t < end) {
        auto it = customers.find(e.user[i]);
        if (it != customers.end()) it->second.buys_later = true;
      }
      continue;
    }
    Customer& c = customers[e.user[i]];
    const double value = std::isnan(e.value[i]) ? 0.0 : static_cast<double>(e.value[i]);
    c.monetary += static_cast<double>(e.quantity[i]) * value;
    c.first = std::min(c.first, t);
    c.last = std::max(c.last, t);
    // Sessions are invoices; events without one count one invoice per timestamp.
    const int64_t key = e.session[i] >= 0 ? e.session[i] : -1 - t;
    c.invoices.emplace(key, t);
    c.items.push_back(e.item[i]);
  }
  PropensitySet out;
  out.home_region = home_region;
  if (out.home_region.empty()) {
    std::map<std::string, int64_t> regions;
    for (const auto& [u, c] : customers)
      if (static_cast<size_t>(u) < e.user_regions.size() && !e.user_regions[static_cast<size_t>(u)].empty())
        ++regions[e.user_regions[static_cast<size_t>(u)]];
    int64_t best = 0;
    for (const auto& [r, n] : regions)
      if (n > best) {
        best = n;
        out.home_region = r;
      }
  }
  std::vector<int32_t> users;
  for (const auto& [u, c] : customers) users.push_back(u);
  std::sort(users.begin(), users.end());
  out.data.feature_names = propensity_features();
  out.data.class_names = {"0", "1"};
  out.data.x.resize(static_cast<Eigen::Index>(users.size()), static_cast<Eigen::Index>(propensity_features().size()));
  constexpr double day = 86400;
  for (size_t r = 0; r < users.size(); ++r) {
    Customer& c = customers[users[r]];
    std::vector<int64_t> times;
    for (const auto& [k, t] : c.invoices) times.push_back(t);
    std::sort(times.begin(), times.end());
    std::sort(c.items.begin(), c.items.end());
    const auto distinct = std::unique(c.items.begin(), c.items.end()) - c.items.begin();
    const double frequency = static_cast<double>(times.size());
    const double tenure = static_cast<double>(snapshot - c.first) / day;
    int64_t in30 = 0, in90 = 0;
    for (int64_t t : times) {
      in30 += t >= snapshot - 30 * 86400;
      in90 += t >= snapshot - 90 * 86400;
    }
    const double between =
        times.size() > 1 ? static_cast<double>(times.back() - times.front()) / day / (frequency - 1) : tenure;
    const bool home = static_cast<size_t>(users[r]) < e.user_regions.size() &&
                      e.user_regions[static_cast<size_t>(users[r])] == out.home_region;
    const double row[] = {static_cast<double>(snapshot - c.last) / day, frequency, c.monetary, tenure,
                          c.monetary / frequency, static_cast<double>(distinct), static_cast<double>(in30),
                          static_cast<double>(in90), between, home ? 1.0 : 0.0};
    for (size_t f = 0; f < std::size(row); ++f)
      out.data.x(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(f)) = static_cast<float>(row[f]);
    out.data.y.push_back(c.buys_later ? 1 : 0);
  }
  out.users = std::move(users);
  return out;
}

}  // namespace persona::demand
