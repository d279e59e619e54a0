#include "persona/server/dashboard.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "persona/core/json.h"
#include "persona/core/time.h"
#include "persona/demand/forecast.h"
#include "persona/ml/model_file.h"
#include "persona/text/keywords.h"
#include "persona/text/tokenizer.h"

namespace persona::server {
namespace {

constexpr int64_t kDay = 86400;

int64_t day_of(int64_t unix_seconds) { return unix_seconds >= 0 ? unix_seconds / kDay : (unix_seconds - kDay + 1) / kDay; }

std::string date_of_day(int64_t day) { return format_date(day * kDay); }

// Revenue of one event as `persona stats` counts it: purchases add, returns subtract.
double revenue_of(const store::EventColumns& ev, size_t i) {
  const double v = ev.value[i];
  if (std::isnan(v)) return 0;
  const auto type = static_cast<EventType>(ev.type[i]);
  if (type == EventType::Purchase) return ev.quantity[i] * v;
  if (type == EventType::Return) return -std::abs(ev.quantity[i] * v);
  return 0;
}

}  // namespace

nlohmann::json activity_timeline(const store::EventColumns& ev, int days) {
  nlohmann::json out = {{"days", nlohmann::json::array()}, {"events", nlohmann::json::object()}, {"revenue", nlohmann::json::array()},
                        {"active_users", nlohmann::json::array()}, {"new_users", nlohmann::json::array()},
                        {"funnel", nlohmann::json::array()}};
  if (ev.size() == 0 || days <= 0) return out;
  const int64_t last = day_of(*std::max_element(ev.timestamp.begin(), ev.timestamp.end()));
  const int64_t first = last - days + 1;
  const size_t n = static_cast<size_t>(days);
  std::vector<std::vector<double>> by_type(kEventTypeCount, std::vector<double>(n, 0));
  std::vector<double> revenue(n, 0), active(n, 0), fresh(n, 0);
  // A user's first event ever makes them new that day; the last day counted stops double counting.
  std::vector<int64_t> first_day(ev.user_ids.size(), INT64_MAX), last_counted(ev.user_ids.size(), INT64_MIN);
  for (size_t i = 0; i < ev.size(); ++i) {
    const auto u = static_cast<size_t>(ev.user[i]);
    first_day[u] = std::min(first_day[u], day_of(ev.timestamp[i]));
  }
  // Funnel: distinct users (and events) at each step inside the window.
  constexpr EventType kSteps[] = {EventType::View, EventType::Cart, EventType::Purchase};
  std::vector<std::vector<bool>> reached(3, std::vector<bool>(ev.user_ids.size(), false));
  std::array<int64_t, 3> step_users{}, step_events{};
  for (size_t i = 0; i < ev.size(); ++i) {
    const int64_t d = day_of(ev.timestamp[i]);
    if (d < first || d > last) continue;
    const auto slot = static_cast<size_t>(d - first);
    const auto u = static_cast<size_t>(ev.user[i]);
    by_type[ev.type[i]][slot] += 1;
    revenue[slot] += revenue_of(ev, i);
    if (last_counted[u] != d) {
      last_counted[u] = d;
      active[slot] += 1;
    }
    for (size_t s = 0; s < 3; ++s)
      if (static_cast<EventType>(ev.type[i]) == kSteps[s]) {
        ++step_events[s];
        if (!reached[s][u]) {
          reached[s][u] = true;
          ++step_users[s];
        }
      }
  }
  for (size_t u = 0; u < first_day.size(); ++u)
    if (first_day[u] >= first && first_day[u] <= last) fresh[static_cast<size_t>(first_day[u] - first)] += 1;
  for (int64_t d = first; d <= last; ++d) out["days"].push_back(date_of_day(d));
  for (int t = 0; t < kEventTypeCount; ++t) {
    double total = 0;
    for (double v : by_type[static_cast<size_t>(t)]) total += v;
    if (total > 0) out["events"][event_type_name(static_cast<EventType>(t))] = by_type[static_cast<size_t>(t)];
  }
  for (double& r : revenue) r = std::round(r * 100) / 100;
  out["revenue"] = revenue;
  out["active_users"] = active;
  out["new_users"] = fresh;
  for (size_t s = 0; s < 3; ++s)
    out["funnel"].push_back({{"step", event_type_name(kSteps[s])}, {"users", step_users[s]}, {"events", step_events[s]}});
  return out;
}

nlohmann::json rfm_grid(store::Store& store) {
  // grid[r][f]: users and their summed monetary value; scores 0..5.
  std::array<std::array<int64_t, 6>, 6> users{};
  std::array<std::array<double, 6>, 6> monetary{};
  int64_t profiles = 0;
  std::map<std::string, int64_t> named;
  store.for_each_profile([&](const std::string&, const std::string& json) {
    const auto j = nlohmann::json::parse(json, nullptr, false);
    if (!j.is_object() || !j.contains("rfm")) return;
    const auto& rfm = j["rfm"];
    const int r = std::clamp(rfm.value("r", 0), 0, 5), f = std::clamp(rfm.value("f", 0), 0, 5);
    ++users[static_cast<size_t>(r)][static_cast<size_t>(f)];
    monetary[static_cast<size_t>(r)][static_cast<size_t>(f)] += rfm.value("monetary", 0.0);
    ++named[rfm.value("segment", "")];
    ++profiles;
  });
  nlohmann::json cells = nlohmann::json::array();
  for (int r = 0; r <= 5; ++r)
    for (int f = 0; f <= 5; ++f) {
      const auto n = users[static_cast<size_t>(r)][static_cast<size_t>(f)];
      if (n == 0) continue;
      cells.push_back({{"r", r}, {"f", f}, {"users", n},
                       {"mean_monetary", std::round(monetary[static_cast<size_t>(r)][static_cast<size_t>(f)] / n * 100) / 100}});
    }
  nlohmann::json segments = nlohmann::json::array();
  for (const auto& [name, n] : named) segments.push_back({{"segment", name.empty() ? "(none)" : name}, {"users", n}});
  return {{"profiles", profiles}, {"cells", cells}, {"rfm_segments", segments}};
}

nlohmann::json user_timeline(const store::EventColumns& h, size_t limit) {
  nlohmann::json events = nlohmann::json::array();
  for (size_t k = 0; k < h.size() && k < limit; ++k) {
    const size_t i = h.size() - 1 - k;  // newest first
    const auto item = static_cast<size_t>(h.item[i]);
    nlohmann::json e = {{"time", format_timestamp(h.timestamp[i])},
                        {"type", event_type_name(static_cast<EventType>(h.type[i]))},
                        {"item", h.item_ids[item]},
                        {"category", h.item_categories[item]},
                        {"quantity", h.quantity[i]}};
    if (!std::isnan(h.value[i])) e["value"] = h.value[i];
    events.push_back(std::move(e));
  }
  return {{"events", events}, {"total", h.size()}};
}

nlohmann::json demand_overview(store::Store& store, const store::EventColumns& events, const demand::TextAnalyzer& analyzer,
                               const text::KeywordIndex* keywords, int weeks) {
  using demand::TextTask;
  const auto& sentiment_model = analyzer.model(TextTask::Sentiment);
  const auto& category_model = analyzer.model(TextTask::Category);
  // Weeks start on Monday; 1970-01-01 was a Thursday (day 0), so Monday is day 4 mod 7.
  auto week_of = [](int64_t day) { return day - ((day - 4) % 7 + 7) % 7; };
  struct Dated {
    int64_t week;
    std::string body, sentiment, category;
  };
  std::vector<Dated> texts;
  int64_t newest = INT64_MIN, newest_day = INT64_MIN;
  // Without a category model or labels, a text's demand category is the category of the item it
  // is about (a review of a kettle speaks of kitchen demand).
  std::unordered_map<std::string_view, std::string_view> item_category;
  for (size_t i = 0; i < events.item_ids.size(); ++i)
    if (!events.item_categories[i].empty()) item_category.emplace(events.item_ids[i], events.item_categories[i]);
  bool from_items = false;
  store.for_each_text([&](const Text& t) {
    if (!t.timestamp) return;
    const int64_t w = week_of(day_of(*t.timestamp));
    newest = std::max(newest, w);
    newest_day = std::max(newest_day, day_of(*t.timestamp));
    std::string sentiment;
    if (t.sentiment) sentiment = *t.sentiment > 0.2 ? "positive" : *t.sentiment < -0.2 ? "negative" : "neutral";
    std::string category = t.category;
    if (category.empty() && !category_model && !t.item.empty())
      if (const auto it = item_category.find(t.item); it != item_category.end()) {
        category = it->second;
        from_items = true;
      }
    texts.push_back({w, t.body, std::move(sentiment), std::move(category)});
  });
  nlohmann::json out = {{"weeks", nlohmann::json::array()}, {"sentiment", nlohmann::json::object()},
                        {"categories", nlohmann::json::object()}, {"keywords", nlohmann::json::array()},
                        {"forecasts", nlohmann::json::array()}, {"texts", 0},
                        {"sentiment_source", sentiment_model ? "model" : "data"},
                        {"category_source", category_model ? "model" : from_items ? "items" : "data"}};
  if (newest != INT64_MIN && weeks > 0) {
    const int64_t first = newest - 7 * (weeks - 1);
    const auto n = static_cast<size_t>(weeks);
    std::map<std::string, std::vector<double>> sentiment, category;
    std::vector<std::string_view> recent;  // the last four weeks, for keywords
    int64_t counted = 0;
    for (auto& t : texts) {
      if (t.week < first) continue;
      const auto slot = static_cast<size_t>((t.week - first) / 7);
      if (sentiment_model || category_model) {
        const auto prepared = text::prepare_text(t.body);
        if (sentiment_model) t.sentiment = demand::answer(*sentiment_model, prepared, TextTask::Sentiment).label;
        if (category_model) t.category = demand::answer(*category_model, prepared, TextTask::Category).label;
      }
      if (!t.sentiment.empty()) sentiment.try_emplace(t.sentiment, n, 0.0).first->second[slot] += 1;
      if (!t.category.empty() && t.category != "unknown") category.try_emplace(t.category, n, 0.0).first->second[slot] += 1;
      if (t.week > newest - 28) recent.push_back(t.body);
      ++counted;
    }
    for (int64_t w = first; w <= newest; w += 7) out["weeks"].push_back(date_of_day(w));
    // The newest week ends with the data, often before its Sunday: fewer texts there are not a
    // fall in demand, and the chart says so.
    out["last_week_days"] = newest_day - newest + 1;
    for (auto& [k, v] : sentiment) out["sentiment"][k] = v;
    for (auto& [k, v] : category) out["categories"][k] = v;
    for (const auto& k : text::tfidf_keywords(recent, 30, keywords))
      out["keywords"].push_back({{"word", k.word}, {"score", std::round(k.score * 1000) / 1000}});
    out["texts"] = counted;
  }
  // Forecasts: all items and the four categories with the most units sold.
  const auto series = demand::daily_demand(events);
  std::vector<std::pair<double, std::string>> busiest;
  for (const auto& [name, s] : series)
    if (name != "all") {
      double total = 0;
      for (double v : s.values) total += v;
      busiest.emplace_back(-total, name);
    }
  std::sort(busiest.begin(), busiest.end());
  std::vector<std::string> chosen = {"all"};
  for (size_t i = 0; i < busiest.size() && i < 4; ++i) chosen.push_back(busiest[i].second);
  for (const auto& name : chosen) {
    const auto it = series.find(name);
    if (it == series.end() || it->second.values.size() < 35) continue;  // two seasons and a backtest
    out["forecasts"].push_back(demand::forecast_category(name, it->second, 14).to_json(42));
  }
  return out;
}

nlohmann::json model_overview(const std::string& models_dir) {
  namespace fs = std::filesystem;
  nlohmann::json files = nlohmann::json::array(), history = nlohmann::json::array();
  std::error_code ec;
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(models_dir, ec))
    if (entry.path().extension() == ".model" || entry.path().extension() == ".index") paths.push_back(entry.path());
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    nlohmann::json f = {{"file", p.filename().string()}, {"bytes", fs::file_size(p, ec)}};
    try {
      const auto h = ml::read_model_header(p.string());
      f["kind"] = h.kind;
      f["task"] = h.task;
      f["created"] = h.created;
      f["metrics"] = h.metrics;
    } catch (const std::exception&) {
      f["kind"] = "(not a model file)";  // an index of another format: listed, not read
    }
    files.push_back(std::move(f));
  }
  std::ifstream in(ml::training_history_path(models_dir));
  for (std::string line; std::getline(in, line);) {
    auto j = parse_json(line).value_or(nlohmann::json());
    if (j.is_object()) history.push_back(std::move(j));
  }
  std::reverse(history.begin(), history.end());
  if (history.size() > 200) history.erase(history.begin() + 200, history.end());
  return {{"dir", models_dir}, {"files", files}, {"history", history}};
}

}  // namespace persona::server
