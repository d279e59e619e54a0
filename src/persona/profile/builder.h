#pragma once
// Builds user profiles from events and texts, in one batch or live: the builder keeps one small
// accumulator per user, so applying new events touches only their users, and applying every
// event in time order gives the same profiles as a batch build (tested against each other).
#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/core/id_map.h"
#include "persona/core/model.h"
#include "persona/profile/profile.h"
#include "persona/store/store.h"
#include "persona/text/keywords.h"

namespace persona::profile {

struct ProfileOptions {
  double half_life_days = 30;  // affinities: an event's weight halves every this many days
  // Weight of each event type in the affinities (view, click, cart, purchase, return, rate,
  // review, search, favourite).
  std::array<double, kEventTypeCount> weights{1, 1, 3, 5, 0, 1, 1, 0.5, 2};
  size_t top_n = 5;     // categories, brands, demand categories kept per user
  size_t keywords = 5;  // keywords per user
  nlohmann::json to_json() const;
};

// Item facts the features compare with: category, brand, price, the price band within the
// category, and each category's typical (median) price. Taken from the catalogue's prices, or,
// for items without one, from the median unit price paid; frozen at a full build, so that live
// updates and a rebuild compare with the same prices.
struct Catalogue {
  IdMap items, categories, brands;
  std::vector<int32_t> item_category, item_brand;  // -1: none
  std::vector<double> item_price;                  // NaN: unknown
  std::vector<int8_t> item_band;                   // 0 low, 1 mid, 2 high, -1 unknown
  std::vector<double> typical_price;               // by category (NaN: unknown)
  std::vector<std::array<double, 2>> band_edges;   // by category: low < edge0 <= mid < edge1 <= high

  static Catalogue from_events(const store::EventColumns& events);
  // An item first seen live: banded against its category's frozen edges.
  int32_t add_item(std::string_view id, std::string_view category, std::string_view brand, double price);
  nlohmann::json to_json() const;
  static Catalogue from_json(const nlohmann::json& j);
};

// What the demand stage's models add: scores for texts without a stored sentiment or category,
// and each user's purchase propensity. All optional.
struct ModelScorers {
  std::function<std::optional<double>(std::string_view text)> sentiment;  // probability positive
  std::function<std::string(std::string_view text)> category;
  std::function<std::optional<double>(const std::string& user)> propensity;
  const text::KeywordIndex* keyword_index = nullptr;
};

// One event as the builder takes it: the user's external id, the catalogue's item index.
struct ProfileEvent {
  std::string_view user;
  int32_t item = -1;
  EventType type = EventType::View;
  double quantity = 1;
  double value = 0;  // unit price; NaN when none
  int64_t timestamp = 0;
  std::string_view session;  // the invoice; empty: the purchase's timestamp stands for it
};

class ProfileBuilder {
 public:
  ProfileBuilder(Catalogue catalogue, ProfileOptions options, ModelScorers scorers = {});
  ~ProfileBuilder();
  ProfileBuilder(ProfileBuilder&&) noexcept;

  // A user with no events yet still gets a profile (sign-up time counts for tenure).
  void add_user(std::string_view user, std::optional<int64_t> signup = std::nullopt);
  void apply(const ProfileEvent& e);
  void apply_text(const Text& t);
  // Every event and text of a store (batch build). Events at or after `before` (a profile's
  // as_of) have not happened yet as far as that profile is concerned: they are left out, and
  // their number returned.
  size_t apply_store(const store::EventColumns& events, const std::function<void(const std::function<void(const Text&)>&)>& texts,
                     int64_t before = std::numeric_limits<int64_t>::max());

  // The users changed since the last call (and forgets them).
  std::vector<std::string> take_touched();

  // Profiles of every user at `as_of`, with the scores and levels that rank users among each
  // other. Tags and segments are added by the caller (tags.h, segments.h).
  std::vector<UserProfile> profiles(int64_t as_of) const;
  size_t users() const { return users_.size(); }
  Catalogue& catalogue() { return catalogue_; }
  const Catalogue& catalogue() const { return catalogue_; }
  const ProfileOptions& options() const { return options_; }

 private:
  struct UserState;
  UserState& state(std::string_view user);
  UserProfile finish(size_t u, int64_t as_of) const;

  Catalogue catalogue_;
  ProfileOptions options_;
  ModelScorers scorers_;
  IdMap users_;
  std::vector<UserState> states_;
  std::vector<uint8_t> is_touched_;  // by user: changed since the last take_touched()
  std::vector<uint32_t> touched_;
  std::string last_user_;            // consecutive events of one user (an invoice's lines) skip the lookup
  uint32_t last_id_ = 0;
};

// Sets the scores and levels that rank users among each other: R, F, M quintiles and the
// frequency and monetary levels among buyers, the RFM segment, the activity level among all.
void rank_profiles(std::vector<UserProfile>& profiles);

// The classic RFM segment name for recency and frequency scores (1-5).
std::string rfm_segment_name(int r, int f);

// Quintile scores 1-5 (five equal-count bins after ranking ascending, ties broken by ascending
// user id: numerically when both ids are numbers). Task R2's definition.
std::vector<int> quintile_scores(const std::vector<double>& values, const std::vector<std::string>& ids);
// Ordering of user ids used for ties: numeric ids by value, then text.
bool user_id_less(const std::string& a, const std::string& b);

// Midnight (UTC) after the last event: the default as_of.
int64_t default_as_of(const store::EventColumns& events);
int64_t midnight_after(int64_t timestamp);

}  // namespace persona::profile
