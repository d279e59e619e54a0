#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "commands.h"
#include "persona/core/error.h"
#include "persona/core/time.h"
#include "persona/pipeline/config.h"

namespace persona::cli {

void print_json(const nlohmann::json& j) {
  std::puts(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

void print_source_report(const pipeline::SourceReport& r) {
  if (r.status == "already ingested") {
    fmt::print("{}: already ingested (same file, same mapping); nothing added\n", r.source);
    return;
  }
  const double mb = r.file_bytes / 1e6;
  fmt::print("{}: {} rows read, {} kept, {} removed  ({:.2f} s, {:.1f} MB/s){}\n", r.source, r.summary.rows_read,
             r.summary.rows_kept, r.summary.rows_removed, r.seconds, r.seconds > 0 ? mb / r.seconds : 0,
             r.status == "resumed" ? "  [resumed an interrupted ingest]"
             : r.status == "failed" ? "  [failed: not recorded as ingested]"
                                    : "");
  for (const auto& rule : r.summary.rules) {
    if (!rule.removed && !rule.changed && !rule.flagged) continue;
    std::string line = fmt::format("    {:<24}", rule.rule);
    if (rule.removed) line += fmt::format(" removed {:>9}", rule.removed);
    if (rule.changed) line += fmt::format(" changed {:>9}", rule.changed);
    if (rule.flagged) line += fmt::format(" flagged {:>9}", rule.flagged);
    fmt::print("{}\n", line);
  }
}

nlohmann::json stats_json(const store::DatasetStats& s) {
  auto rows = [](const std::vector<store::CountRow>& v, const char* detail_key = nullptr) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : v) {
      nlohmann::json j = {{"name", r.name}, {"count", r.count}};
      if (detail_key && !r.detail.empty()) j[detail_key] = r.detail;
      out.push_back(j);
    }
    return out;
  };
  nlohmann::json j = {{"users", s.users},       {"items", s.items},           {"events", s.events},
                      {"texts", s.texts},       {"sessions", s.sessions},     {"rejected_rows", s.rejects},
                      {"revenue", s.revenue},   {"event_types", rows(s.event_types)},
                      {"top_items", rows(s.top_items, "title")}, {"top_categories", rows(s.top_categories)},
                      {"text_kinds", rows(s.text_kinds)},       {"text_languages", rows(s.text_languages)}};
  if (s.first_event) j["first_event"] = format_timestamp(*s.first_event);
  if (s.last_event) j["last_event"] = format_timestamp(*s.last_event);
  for (const auto& m : s.missing) j["missing"][m.name] = m.count;
  j["ingests"] = nlohmann::json::array();
  for (const auto& i : s.ingests)
    j["ingests"].push_back({{"id", i.id}, {"source", i.source}, {"path", i.path}, {"status", i.status},
                            {"last_line", i.last_line}, {"summary", i.summary}});
  return j;
}

void print_stats(const store::DatasetStats& s, const std::string& store_path) {
  fmt::print("\nDataset summary ({})\n", store_path);
  fmt::print("  users {:>10}   items {:>8}   events {:>10}   texts {:>8}   sessions {:>9}\n", s.users, s.items,
             s.events, s.texts, s.sessions);
  if (s.first_event)
    fmt::print("  events from {} to {}\n", format_timestamp(*s.first_event), format_timestamp(*s.last_event));
  fmt::print("  revenue (purchases less returns): {:.2f}\n", s.revenue);
  fmt::print("  rows rejected by cleaning: {} (see the reject log)\n", s.rejects);
  auto table = [](const char* title, const std::vector<store::CountRow>& rows, bool detail) {
    if (rows.empty()) return;
    fmt::print("  {}\n", title);
    for (const auto& r : rows)
      fmt::print("    {:<28} {:>10}{}\n", r.name, r.count, detail && !r.detail.empty() ? "  " + r.detail : "");
  };
  table("event types", s.event_types, false);
  table("top items (events)", s.top_items, true);
  table("top categories (events)", s.top_categories, false);
  table("texts by kind", s.text_kinds, false);
  table("texts by language", s.text_languages, false);
  bool any_missing = false;
  for (const auto& m : s.missing) any_missing |= m.count > 0;
  if (any_missing) {
    fmt::print("  missing values\n");
    for (const auto& m : s.missing)
      if (m.count > 0) fmt::print("    {:<28} {:>10}\n", m.name, m.count);
  }
}

int64_t parse_date(const std::string& text, const char* option) {
  const auto t = TimestampParser("iso8601").parse(text);
  if (!t) throw Error(fmt::format("{} {} is not a date", option, quote_value(text)), {}, "use YYYY-MM-DD");
  return *t;
}

std::string store_path_from(const std::string& store, const std::string& config) {
  if (!store.empty()) return store::normal_location(store);
  if (!config.empty()) {
    const auto c = pipeline::load_config(config);
    return c.resolve(c.store_path);
  }
  return "persona.db";
}

// Item id -> title, for people reading a list (ids stay in --json and in brackets).
std::unordered_map<std::string, std::string> item_titles(store::Store& store) {
  std::unordered_map<std::string, std::string> titles;
  for (const auto& item : store.items())
    if (!item.title.empty()) titles[item.id] = item.title;
  return titles;
}

// The item's title ("" when the store has none), and "Title (ID)" for a person to read.
std::string title_of(const std::unordered_map<std::string, std::string>& titles, const std::string& id) {
  const auto it = titles.find(id);
  return it == titles.end() ? std::string() : it->second;
}
std::string titled(const std::unordered_map<std::string, std::string>& titles, const std::string& id) {
  const auto title = title_of(titles, id);
  return title.empty() ? id : fmt::format("{} ({})", title, id);
}

}  // namespace persona::cli
