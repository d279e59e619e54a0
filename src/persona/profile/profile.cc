#include "persona/profile/profile.h"

#include <fmt/format.h>

#include "persona/core/time.h"

namespace persona::profile {
namespace {

template <typename T>
nlohmann::json optional_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

template <typename T>
std::optional<T> optional_from(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<T>();
}

std::string shares_text(const std::vector<Share>& v) {
  std::string out;
  for (const auto& s : v) out += fmt::format("{}{}:{:.3f}", out.empty() ? "" : ";", s.name, s.share);
  return out;
}

template <typename T>
FeatureValue number(const std::optional<T>& v) {
  return v ? FeatureValue(static_cast<double>(*v)) : FeatureValue();
}

FeatureValue text_or_none(const std::string& s) { return s.empty() ? FeatureValue() : FeatureValue(s); }

FeatureValue top_name(const std::vector<Share>& v) { return v.empty() ? FeatureValue() : FeatureValue(v.front().name); }

}  // namespace

nlohmann::json shares_to_json(const std::vector<Share>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& s : v) a.push_back({{"name", s.name}, {"share", s.share}});
  return a;
}

std::vector<Share> shares_from_json(const nlohmann::json& a) {
  std::vector<Share> v;
  for (const auto& s : a) v.push_back({s.at("name").get<std::string>(), s.at("share").get<double>()});
  return v;
}

nlohmann::json UserProfile::to_json() const {
  nlohmann::json tags_json = tags;
  return {{"user", user},
          {"as_of", format_timestamp(as_of)},
          {"as_of_unix", as_of},
          {"rfm", {{"recency_days", optional_json(recency_days)}, {"frequency", frequency}, {"monetary", monetary},
                   {"r", r_score}, {"f", f_score}, {"m", m_score}, {"segment", rfm_segment}}},
          {"activity", {{"tenure_days", tenure_days}, {"events", events}, {"active_days", active_days},
                        {"events_30d", events_30d}, {"peak_hour", peak_hour}, {"peak_weekday", peak_weekday},
                        {"weekend_share", weekend_share}, {"hours", hour_shares}, {"weekdays", weekday_shares}}},
          {"affinity", {{"categories", shares_to_json(categories)}, {"brands", shares_to_json(brands)},
                        {"price_bands", shares_to_json(price_bands)}, {"price_sensitivity", optional_json(price_sensitivity)}}},
          {"funnel", {{"views", views}, {"carts", carts}, {"purchases", purchases}, {"returns", returns},
                      {"cart_rate", optional_json(cart_rate)}, {"purchase_rate", optional_json(purchase_rate)},
                      {"return_rate", optional_json(return_rate)}}},
          {"texts", {{"reviews", reviews}, {"sentiment", optional_json(sentiment)}, {"keywords", shares_to_json(keywords)},
                     {"demand", shares_to_json(demand)}}},
          {"propensity", optional_json(propensity)},
          {"levels", {{"monetary", monetary_level}, {"frequency", frequency_level}, {"activity", activity_level}}},
          {"tags", tags_json},
          {"segment", segment}};
}

UserProfile UserProfile::from_json(const nlohmann::json& j) {
  UserProfile p;
  p.user = j.at("user").get<std::string>();
  p.as_of = j.at("as_of_unix").get<int64_t>();
  const auto& r = j.at("rfm");
  p.recency_days = optional_from<int64_t>(r, "recency_days");
  p.frequency = r.at("frequency");
  p.monetary = r.at("monetary");
  p.r_score = r.at("r");
  p.f_score = r.at("f");
  p.m_score = r.at("m");
  p.rfm_segment = r.at("segment");
  const auto& a = j.at("activity");
  p.tenure_days = a.at("tenure_days");
  p.events = a.at("events");
  p.active_days = a.at("active_days");
  p.events_30d = a.at("events_30d");
  p.peak_hour = a.at("peak_hour");
  p.peak_weekday = a.at("peak_weekday");
  p.weekend_share = a.at("weekend_share");
  p.hour_shares = a.at("hours").get<std::array<double, 24>>();
  p.weekday_shares = a.at("weekdays").get<std::array<double, 7>>();
  const auto& f = j.at("affinity");
  p.categories = shares_from_json(f.at("categories"));
  p.brands = shares_from_json(f.at("brands"));
  p.price_bands = shares_from_json(f.at("price_bands"));
  p.price_sensitivity = optional_from<double>(f, "price_sensitivity");
  const auto& u = j.at("funnel");
  p.views = u.at("views");
  p.carts = u.at("carts");
  p.purchases = u.at("purchases");
  p.returns = u.at("returns");
  p.cart_rate = optional_from<double>(u, "cart_rate");
  p.purchase_rate = optional_from<double>(u, "purchase_rate");
  p.return_rate = optional_from<double>(u, "return_rate");
  const auto& t = j.at("texts");
  p.reviews = t.at("reviews");
  p.sentiment = optional_from<double>(t, "sentiment");
  p.keywords = shares_from_json(t.at("keywords"));
  p.demand = shares_from_json(t.at("demand"));
  p.propensity = optional_from<double>(j, "propensity");
  const auto& l = j.at("levels");
  p.monetary_level = l.at("monetary");
  p.frequency_level = l.at("frequency");
  p.activity_level = l.at("activity");
  p.tags = j.at("tags").get<std::vector<std::string>>();
  p.segment = j.at("segment");
  return p;
}

const std::vector<FeatureInfo>& feature_schema() {
  using P = UserProfile;
  static const std::vector<FeatureInfo> schema = {
      {"user", "text", "", "the user's id", [](const P& p) { return FeatureValue(p.user); }},
      {"recency_days", "integer", "days", "whole days from the last purchase to as_of (absent without purchases)",
       [](const P& p) { return number(p.recency_days); }},
      {"frequency", "integer", "invoices", "distinct invoices (sessions; else purchase times)",
       [](const P& p) { return FeatureValue(static_cast<double>(p.frequency)); }},
      {"monetary", "number", "currency", "spend: sum of quantity x unit price over purchases, to the cent",
       [](const P& p) { return FeatureValue(p.monetary); }},
      {"r_score", "score", "1-5", "recency quintile among buyers (5 = most recent; 0 = no purchases)",
       [](const P& p) { return FeatureValue(static_cast<double>(p.r_score)); }},
      {"f_score", "score", "1-5", "frequency quintile among buyers (5 = most frequent)",
       [](const P& p) { return FeatureValue(static_cast<double>(p.f_score)); }},
      {"m_score", "score", "1-5", "monetary quintile among buyers (5 = highest spend)",
       [](const P& p) { return FeatureValue(static_cast<double>(p.m_score)); }},
      {"rfm_segment", "text", "", "named RFM segment (champions, loyal customers, at risk, hibernating, ...)",
       [](const P& p) { return text_or_none(p.rfm_segment); }},
      {"tenure_days", "integer", "days", "days since the first event or sign-up",
       [](const P& p) { return FeatureValue(static_cast<double>(p.tenure_days)); }},
      {"events", "integer", "events", "all events", [](const P& p) { return FeatureValue(static_cast<double>(p.events)); }},
      {"active_days", "integer", "days", "distinct days with events",
       [](const P& p) { return FeatureValue(static_cast<double>(p.active_days)); }},
      {"events_30d", "integer", "events", "events in the 30 days before as_of",
       [](const P& p) { return FeatureValue(static_cast<double>(p.events_30d)); }},
      {"peak_hour", "integer", "hour (UTC)", "the hour of day with most events",
       [](const P& p) { return p.peak_hour < 0 ? FeatureValue() : FeatureValue(static_cast<double>(p.peak_hour)); }},
      {"peak_weekday", "integer", "0 = Monday", "the day of week with most events",
       [](const P& p) { return p.peak_weekday < 0 ? FeatureValue() : FeatureValue(static_cast<double>(p.peak_weekday)); }},
      {"weekend_share", "number", "share", "share of events on Saturday and Sunday",
       [](const P& p) { return FeatureValue(p.weekend_share); }},
      {"top_category", "text", "", "the category with the highest affinity", [](const P& p) { return top_name(p.categories); }},
      {"categories", "list", "share", "time-decayed category affinities",
       [](const P& p) { return text_or_none(shares_text(p.categories)); }},
      {"top_brand", "text", "", "the brand with the highest affinity", [](const P& p) { return top_name(p.brands); }},
      {"brands", "list", "share", "time-decayed brand affinities", [](const P& p) { return text_or_none(shares_text(p.brands)); }},
      {"price_band", "text", "", "the price band (low / mid / high within the category) with the highest affinity",
       [](const P& p) { return top_name(p.price_bands); }},
      {"price_bands", "list", "share", "time-decayed price band affinities",
       [](const P& p) { return text_or_none(shares_text(p.price_bands)); }},
      {"price_sensitivity", "number", "ratio", "mean unit price paid / the category's typical price (below 1: pays less)",
       [](const P& p) { return number(p.price_sensitivity); }},
      {"views", "integer", "events", "views and clicks", [](const P& p) { return FeatureValue(static_cast<double>(p.views)); }},
      {"carts", "integer", "events", "add-to-cart events", [](const P& p) { return FeatureValue(static_cast<double>(p.carts)); }},
      {"purchases", "integer", "events", "purchase lines", [](const P& p) { return FeatureValue(static_cast<double>(p.purchases)); }},
      {"returns", "integer", "events", "return lines", [](const P& p) { return FeatureValue(static_cast<double>(p.returns)); }},
      {"cart_rate", "number", "ratio", "carts / views", [](const P& p) { return number(p.cart_rate); }},
      {"purchase_rate", "number", "ratio", "purchases / carts", [](const P& p) { return number(p.purchase_rate); }},
      {"return_rate", "number", "ratio", "returned quantity / purchased quantity", [](const P& p) { return number(p.return_rate); }},
      {"reviews", "integer", "texts", "reviews written", [](const P& p) { return FeatureValue(static_cast<double>(p.reviews)); }},
      {"sentiment", "number", "0-1", "mean sentiment of the user's texts (1 = positive)", [](const P& p) { return number(p.sentiment); }},
      {"keywords", "list", "score", "top keywords of the user's texts", [](const P& p) { return text_or_none(shares_text(p.keywords)); }},
      {"top_demand", "text", "", "the demand category most of the user's texts are about", [](const P& p) { return top_name(p.demand); }},
      {"demand", "list", "share", "demand categories of the user's texts", [](const P& p) { return text_or_none(shares_text(p.demand)); }},
      {"propensity", "number", "probability", "probability of buying again within the model's horizon",
       [](const P& p) { return number(p.propensity); }},
      {"monetary_level", "level", "low/mid/high", "spend tertile among buyers", [](const P& p) { return text_or_none(p.monetary_level); }},
      {"frequency_level", "level", "low/mid/high", "invoice tertile among buyers", [](const P& p) { return text_or_none(p.frequency_level); }},
      {"activity_level", "level", "low/mid/high", "tertile of events in the last 30 days among all users",
       [](const P& p) { return text_or_none(p.activity_level); }},
      {"tags", "list", "", "tags from the config's rules", [](const P& p) {
         std::string s;
         for (const auto& t : p.tags) s += (s.empty() ? "" : ";") + t;
         return text_or_none(s);
       }},
      {"segment", "integer", "", "learned segment (k-means); -1 before segmentation",
       [](const P& p) { return FeatureValue(static_cast<double>(p.segment)); }},
  };
  return schema;
}

const FeatureInfo* find_feature(std::string_view name) {
  for (const auto& f : feature_schema())
    if (f.name == name) return &f;
  return nullptr;
}

nlohmann::json feature_schema_json() {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& f : feature_schema())
    a.push_back({{"name", f.name}, {"type", f.type}, {"unit", f.unit}, {"description", f.description}});
  return a;
}

}  // namespace persona::profile
