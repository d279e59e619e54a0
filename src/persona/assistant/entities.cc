#include "persona/assistant/entities.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "persona/assistant/graph_answerer.h"
#include "persona/core/time.h"
#include "persona/text/normalize.h"

namespace persona::assistant {
namespace {

// Chinese numerals up to 99 ("两", "十二", "二十五"); -1 when the text is not one.
int chinese_number(std::string_view s) {
  static const std::map<std::string, int> digits = {{"零", 0}, {"一", 1}, {"二", 2}, {"两", 2}, {"三", 3}, {"四", 4},
                                                    {"五", 5}, {"六", 6}, {"七", 7}, {"八", 8}, {"九", 9}};
  std::u32string cps;
  text::decode_utf8(s, cps);
  int total = 0, current = -1;
  for (char32_t cp : cps) {
    std::string one;
    text::append_utf8(cp, one);
    if (one == "十") {
      total += (current < 0 ? 1 : current) * 10;
      current = -1;
    } else if (const auto it = digits.find(one); it != digits.end()) {
      current = it->second;
    } else {
      return -1;
    }
  }
  return cps.empty() ? -1 : total + std::max(current, 0);
}

int number_of(const std::string& s) {
  if (!s.empty() && s[0] >= '0' && s[0] <= '9') return std::atoi(s.c_str());
  return chinese_number(s);
}

int weekday_of(const std::string& w) {  // Monday = 0
  static const std::map<std::string, int> names = {
      {"monday", 0}, {"tuesday", 1}, {"wednesday", 2}, {"thursday", 3}, {"friday", 4}, {"saturday", 5}, {"sunday", 6},
      {"一", 0}, {"二", 1}, {"三", 2}, {"四", 3}, {"五", 4}, {"六", 5}, {"日", 6}, {"天", 6}, {"末", 5}};
  const auto it = names.find(w);
  return it == names.end() ? -1 : it->second;
}

std::string date_at(int64_t day) { return format_date(day * 86400); }

struct Finder {
  std::string text;
  std::vector<Entity> found;
  std::vector<uint8_t> used;

  // Every match of `re` (its first group is the value source) not overlapping an earlier find.
  template <typename Fn>
  void each(const RE2& re, const std::string& kind, Fn&& value_of) {
    re2::StringPiece input(text);
    const int groups = re.NumberOfCapturingGroups();
    std::vector<re2::StringPiece> sub(static_cast<size_t>(groups + 1));
    size_t pos = 0;
    while (pos <= text.size() &&
           re.Match(input, pos, text.size(), RE2::UNANCHORED, sub.data(), groups + 1)) {
      const size_t begin = static_cast<size_t>(sub[0].data() - text.data()), end = begin + sub[0].size();
      pos = end > begin ? end : begin + 1;
      if (std::any_of(used.begin() + static_cast<long>(begin), used.begin() + static_cast<long>(end), [](uint8_t u) { return u; }))
        continue;
      std::vector<std::string> groups_text;
      for (int g = 1; g <= groups; ++g) groups_text.emplace_back(sub[static_cast<size_t>(g)].data() ? std::string(sub[static_cast<size_t>(g)]) : "");
      const std::string value = value_of(std::string(sub[0]), groups_text);
      if (value.empty()) continue;
      std::fill(used.begin() + static_cast<long>(begin), used.begin() + static_cast<long>(end), 1);
      found.push_back({kind, std::string(sub[0]), value, begin, end});
    }
  }
};

}  // namespace

std::vector<Entity> extract_entities(std::string_view message, const EntityOptions& options, const GraphAnswerer* graph) {
  Finder f;
  f.text = text::normalize_for_analysis(message);
  f.used.assign(f.text.size() + 1, 0);
  const int64_t now = options.now ? options.now
                                  : std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch()).count();
  const int64_t today = now / 86400;
  const int today_weekday = static_cast<int>((today + 3) % 7);  // 1970-01-01 was a Thursday (3)
  auto same = [](const std::string& whole, const std::vector<std::string>&) { return whole; };

  const RE2 order_id("(" + options.order_id_pattern + ")");
  if (order_id.ok()) f.each(order_id, "order_id", [](const std::string& w, const auto&) { return fmt::format("{}", w); });
  static const RE2 email(R"(([a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}))");
  f.each(email, "email", same);
  // Chinese mobiles (11 digits from 13-19, spaces or dashes allowed), then international numbers.
  static const RE2 mobile(R"((?:\+?86[ -]?)?(1[3-9]\d[ -]?\d{4}[ -]?\d{4}))");
  auto digits = [](const std::string& w, const std::vector<std::string>&) {
    std::string d;
    for (char c : w)
      if (c >= '0' && c <= '9') d += c;
    return d.size() > 11 && d.rfind("86", 0) == 0 ? d.substr(2) : d;
  };
  f.each(mobile, "phone", digits);
  static const RE2 phone(R"((\+\d{1,3}[ -]?\(?\d{1,4}\)?[ -]?\d{3,4}[ -]?\d{3,4}|\(?0\d{2,3}\)?[ -]?\d{7,8}))");
  f.each(phone, "phone", digits);
  // Dates: absolute first, then relative.
  static const RE2 iso(R"((\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?)");
  f.each(iso, "date", [](const std::string&, const auto& g) {
    const int y = std::stoi(g[0]), m = std::stoi(g[1]), d = std::stoi(g[2]);
    if (m < 1 || m > 12 || d < 1 || d > 31) return std::string();
    return fmt::format("{:04d}-{:02d}-{:02d}", y, m, d);
  });
  int year;
  unsigned month, day;
  civil_from_days(today, year, month, day);
  static const RE2 month_day(R"((\d{1,2})月(\d{1,2})[日号])");
  f.each(month_day, "date", [&](const std::string&, const auto& g) {
    const int m = std::stoi(g[0]), d = std::stoi(g[1]);
    if (m < 1 || m > 12 || d < 1 || d > 31) return std::string();
    // The most recent such date (customers ask about the past: orders, purchases).
    int y = year;
    if (days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d)) > today) --y;
    return fmt::format("{:04d}-{:02d}-{:02d}", y, m, d);
  });
  static const RE2 relative_day(R"((today|yesterday|tomorrow|day before yesterday|今天|昨天|前天|明天|后天|大前天))");
  f.each(relative_day, "date", [&](const std::string& w, const auto&) {
    static const std::map<std::string, int> offset = {{"today", 0}, {"yesterday", -1}, {"tomorrow", 1}, {"day before yesterday", -2},
                                                      {"今天", 0}, {"昨天", -1}, {"前天", -2}, {"明天", 1}, {"后天", 2}, {"大前天", -3}};
    return date_at(today + offset.at(w));
  });
  static const RE2 ago(R"((\d+|[一二两三四五六七八九十]+)\s*(?:days? ago|天前))");
  f.each(ago, "date", [&](const std::string&, const auto& g) {
    const int n = number_of(g[0]);
    return n < 0 ? std::string() : date_at(today - n);
  });
  // "last friday" / "上周五": that weekday in the previous week; "this" / "这周" / "本周": this
  // week's; "next" / "下周": next week's; a bare "friday" / "周五": the most recent one.
  static const RE2 weekday_en(R"(\b(last|this|next)?\s*(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b)");
  static const RE2 weekday_zh(R"((上|这|本|下)?(?:个)?(?:周|星期|礼拜)([一二三四五六日天末]))");
  auto weekday_date = [&](const std::string& which, int wd) {
    if (wd < 0) return std::string();
    const int64_t monday = today - today_weekday;
    if (which == "last" || which == "上") return date_at(monday - 7 + wd);
    if (which == "next" || which == "下") return date_at(monday + 7 + wd);
    if (which == "this" || which == "这" || which == "本") return date_at(monday + wd);
    return date_at(wd <= today_weekday ? monday + wd : monday - 7 + wd);
  };
  f.each(weekday_en, "date", [&](const std::string&, const auto& g) { return weekday_date(g[0], weekday_of(g[1])); });
  f.each(weekday_zh, "date", [&](const std::string&, const auto& g) { return weekday_date(g[0], weekday_of(g[1])); });
  // Money and quantities.
  static const RE2 money(R"((?:[¥￥$]\s*(\d+(?:\.\d+)?))|(?:(\d+(?:\.\d+)?)\s*(?:元|块钱|块|rmb|yuan|dollars?|usd|cny)))");
  f.each(money, "money", [](const std::string&, const auto& g) {
    const auto& n = !g[0].empty() ? g[0] : g[1];
    return fmt::format("{:.2f}", std::stod(n));
  });
  static const RE2 quantity(R"((?:(\d+|[一二两三四五六七八九十]+)\s*(?:件|个|份|盒|瓶|双|台|本|pieces?|pcs|items?|units?|boxes|bottles|pairs?))|(?:\bx\s*(\d+)\b))");
  f.each(quantity, "quantity", [](const std::string&, const auto& g) {
    const int n = number_of(!g[0].empty() ? g[0] : g[1]);
    return n <= 0 ? std::string() : std::to_string(n);
  });
  // Catalogue names: items and brands (and any other typed entity of the graph).
  if (graph)
    for (const auto& m : graph->link(f.text)) {
      if (std::any_of(f.used.begin() + static_cast<long>(m.begin), f.used.begin() + static_cast<long>(m.end), [](uint8_t u) { return u; }))
        continue;
      const auto& entity = graph->graph().entity_at(m.entities.front());
      f.found.push_back({entity.type == "item" ? "product" : entity.type, f.text.substr(m.begin, m.end - m.begin), entity.name,
                         m.begin, m.end});
    }
  std::sort(f.found.begin(), f.found.end(), [](const Entity& a, const Entity& b) { return a.begin < b.begin; });
  return f.found;
}

}  // namespace persona::assistant
