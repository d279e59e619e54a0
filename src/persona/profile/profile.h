#pragma once
// The user profile (用户画像): what Persona knows about one user, computed from the store's
// events and texts. Every later stage reads it. The features are described by one schema
// (feature_schema()), which drives the JSON and CSV exports, the tag rules and the API.
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/core/model.h"

namespace persona::profile {

// A named share (category affinity, keyword score, ...).
struct Share {
  std::string name;
  double share = 0;
};

struct UserProfile {
  std::string user;
  int64_t as_of = 0;  // the time the time-relative features refer to

  // RFM over purchases (task R2): recency in whole days, distinct invoices, spend to the cent;
  // quintile scores 1-5 among users with purchases (0 without purchases).
  std::optional<int64_t> recency_days;
  int64_t frequency = 0;
  double monetary = 0;
  int r_score = 0, f_score = 0, m_score = 0;
  std::string rfm_segment;  // champions, loyal customers, ..., "no purchases"

  // Activity.
  int64_t tenure_days = 0;  // since the first event (or sign-up, when earlier)
  int64_t events = 0, active_days = 0, events_30d = 0;
  int peak_hour = -1, peak_weekday = -1;  // UTC; weekday 0 = Monday
  double weekend_share = 0;
  std::array<double, 24> hour_shares{};
  std::array<double, 7> weekday_shares{};

  // Affinities: time-decayed, weighted shares of the user's events (top n of each).
  std::vector<Share> categories, brands, price_bands;
  std::optional<double> price_sensitivity;  // mean price paid / the category's typical price

  // Funnel and returns.
  int64_t views = 0, carts = 0, purchases = 0, returns = 0;
  std::optional<double> cart_rate, purchase_rate, return_rate;

  // Texts.
  int64_t reviews = 0;
  std::optional<double> sentiment;  // mean, 0 (negative) .. 1 (positive)
  std::vector<Share> keywords;      // TF-IDF scores
  std::vector<Share> demand;        // demand category shares of the user's texts
  std::optional<double> propensity; // purchase propensity, when a model is present

  // Readable levels (low / mid / high among all users), tags, segments.
  std::string monetary_level, frequency_level, activity_level;
  std::vector<std::string> tags;
  int segment = -1;  // learned segment; -1 before segmentation

  nlohmann::json to_json() const;
  static UserProfile from_json(const nlohmann::json& j);
};

nlohmann::json shares_to_json(const std::vector<Share>& shares);
std::vector<Share> shares_from_json(const nlohmann::json& array);

// A feature's value for rules and exports: a number, a text, or absent.
using FeatureValue = std::variant<std::monostate, double, std::string>;

struct FeatureInfo {
  std::string name, type, unit, description;  // type: integer | number | score | level | text | list
  std::function<FeatureValue(const UserProfile&)> get;
};

// Every scalar feature, in export order. Lists (categories, keywords, tags, ...) are exported
// as "name:share;..." text.
const std::vector<FeatureInfo>& feature_schema();
const FeatureInfo* find_feature(std::string_view name);
nlohmann::json feature_schema_json();

}  // namespace persona::profile
