#include "persona/recommend/interactions.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace persona::recommend {

nlohmann::json InteractionOptions::to_json() const {
  nlohmann::json w;
  for (int t = 0; t < kEventTypeCount; ++t) w[event_type_name(static_cast<EventType>(t))] = weights[static_cast<size_t>(t)];
  return {{"weights", w}, {"half_life_days", half_life_days}, {"trend_days", trend_days}};
}

InteractionOptions InteractionOptions::from_json(const nlohmann::json& j) {
  InteractionOptions o;
  o.half_life_days = j.value("half_life_days", 0.0);
  o.trend_days = j.value("trend_days", 14.0);
  for (const auto& [name, w] : j.at("weights").items())
    if (auto t = parse_event_type(name)) o.weights[static_cast<size_t>(*t)] = w.get<double>();
  return o;
}

size_t Interactions::nonzeros() const {
  size_t n = 0;
  for (const auto& r : rows) n += r.size();
  return n;
}

std::vector<Row> Interactions::columns() const {
  std::vector<Row> cols(item_count());
  for (size_t u = 0; u < rows.size(); ++u)
    for (size_t k = 0; k < rows[u].size(); ++k) {
      auto& c = cols[static_cast<size_t>(rows[u].items[k])];
      c.items.push_back(static_cast<int32_t>(u));
      c.weights.push_back(rows[u].weights[k]);
    }
  return cols;
}

Row make_row(const std::vector<Choice>& choices, double half_life_days) {
  int64_t newest = std::numeric_limits<int64_t>::min();
  for (const auto& c : choices) newest = std::max(newest, c.timestamp);
  const double lambda = half_life_days > 0 ? std::log(2.0) / (half_life_days * 86400) : 0;
  std::vector<std::pair<int32_t, float>> pairs;
  pairs.reserve(choices.size());
  for (const auto& c : choices)
    pairs.emplace_back(c.item, static_cast<float>(c.weight * (lambda > 0 ? std::exp(-lambda * static_cast<double>(newest - c.timestamp)) : 1.0)));
  std::sort(pairs.begin(), pairs.end());
  Row r;
  for (const auto& [item, w] : pairs) {
    if (!r.items.empty() && r.items.back() == item) {
      r.weights.back() += w;
    } else {
      r.items.push_back(item);
      r.weights.push_back(w);
    }
  }
  return r;
}

Interactions build_interactions(const store::EventColumns& e, const InteractionOptions& o) {
  Interactions x;
  for (size_t i = 0; i < e.item_ids.size(); ++i) x.items.intern(e.item_ids[i]);
  x.item_categories = e.item_categories;
  x.item_categories.resize(e.item_ids.size());
  x.item_prices = e.item_prices;
  x.item_prices.resize(e.item_ids.size(), std::nan(""));
  x.last_seen.assign(e.item_ids.size(), std::numeric_limits<int64_t>::min());
  x.item_documents.resize(e.item_ids.size());
  for (size_t i = 0; i < e.item_ids.size(); ++i) {
    std::string doc = i < e.item_texts.size() ? e.item_texts[i] : std::string();
    const std::string* parts[] = {&x.item_categories[i], i < e.item_brands.size() ? &e.item_brands[i] : nullptr};
    for (const auto* part : parts)
      if (part && !part->empty()) doc += (doc.empty() ? "" : " ") + *part;
    x.item_documents[i] = std::move(doc);
  }
  int64_t newest = std::numeric_limits<int64_t>::min();
  for (size_t k = 0; k < e.size(); ++k)
    if (e.timestamp[k] >= o.from && e.timestamp[k] < o.before && o.weights[e.type[k]] > 0) newest = std::max(newest, e.timestamp[k]);
  const int64_t trend_from = newest == std::numeric_limits<int64_t>::min()
                                 ? newest
                                 : newest - static_cast<int64_t>(o.trend_days * 86400);
  std::vector<std::unordered_set<int32_t>> recent_users(e.item_ids.size());
  std::vector<std::vector<Choice>> choices;
  for (size_t k = 0; k < e.size(); ++k) {
    if (e.timestamp[k] < o.from || e.timestamp[k] >= o.before) continue;
    const double w = o.weights[e.type[k]];
    if (w <= 0) continue;
    const auto item = static_cast<size_t>(e.item[k]);
    x.last_seen[item] = std::max(x.last_seen[item], e.timestamp[k]);
    const auto u = x.users.intern(e.user_ids[static_cast<size_t>(e.user[k])]);
    if (u >= choices.size()) choices.resize(u + 1);
    if (e.timestamp[k] > trend_from) recent_users[item].insert(static_cast<int32_t>(u));
    choices[u].push_back({static_cast<int32_t>(item), w, e.timestamp[k]});
  }
  x.trending.resize(e.item_ids.size());
  for (size_t i = 0; i < recent_users.size(); ++i) x.trending[i] = static_cast<float>(recent_users[i].size());
  x.rows.reserve(choices.size());
  for (const auto& c : choices) x.rows.push_back(make_row(c, o.half_life_days));
  return x;
}

}  // namespace persona::recommend
