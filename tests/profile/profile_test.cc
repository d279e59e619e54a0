// Profiles: RFM exactly as task R2 defines it, the features, tags from rules, segments, and the
// live path (events applied one by one) against a batch build on the sample shop.
#include <gtest/gtest.h>
#include <fmt/format.h>

#include <cmath>
#include <random>
#include <set>
#include <sstream>

#include "persona/core/error.h"
#include "persona/core/time.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/profiles.h"
#include "persona/pipeline/run.h"
#include "persona/profile/builder.h"
#include "persona/profile/segments.h"
#include "persona/profile/tags.h"
#include "persona/sample/shop_generator.h"
#include "support/test_support.h"

namespace persona::profile {
namespace {

constexpr int64_t kDay = 86400;
const int64_t kT0 = days_from_civil(2024, 1, 1) * kDay;

// A tiny shop in columns: users a, b, c; items in two categories.
store::EventColumns tiny_shop() {
  store::EventColumns e;
  e.user_ids = {"a", "b", "c", "d"};
  e.user_regions = {"", "", "", ""};
  e.user_signups = {INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN};
  e.item_ids = {"i1", "i2", "i3", "i4"};
  e.item_categories = {"books", "books", "shoes", "shoes"};
  e.item_brands = {"acme", "acme", "zeta", "zeta"};
  e.item_prices = {10, 20, 100, 200};
  auto add = [&](int32_t user, int32_t item, EventType type, double qty, double value, int64_t ts, int32_t session) {
    e.user.push_back(user);
    e.item.push_back(item);
    e.type.push_back(static_cast<uint8_t>(type));
    e.quantity.push_back(qty);
    e.value.push_back(value);
    e.timestamp.push_back(ts);
    e.session.push_back(session);
  };
  e.sessions = {"inv1", "inv2", "inv3", "inv4"};
  const double none = std::nan("");
  // a: two invoices (inv1 with two lines), views of books.
  add(0, 0, EventType::View, 1, none, kT0, -1);
  add(0, 0, EventType::Purchase, 3, 0.1, kT0 + 3600, 0);
  add(0, 1, EventType::Purchase, 1, 0.2, kT0 + 3600, 0);
  add(0, 1, EventType::Purchase, 2, 15.0, kT0 + 10 * kDay, 1);
  // b: one purchase of shoes without an invoice id, then a return.
  add(1, 2, EventType::Cart, 1, none, kT0 + 2 * kDay, -1);
  add(1, 2, EventType::Purchase, 1, 80.0, kT0 + 2 * kDay + 60, -1);
  add(1, 2, EventType::Return, 1, 80.0, kT0 + 5 * kDay, -1);
  // c: views only.
  for (int i = 0; i < 12; ++i) add(2, 3, EventType::View, 1, none, kT0 + i * 3600, -1);
  // d: no events at all.
  return e;
}

UserProfile find(const std::vector<UserProfile>& v, const std::string& user) {
  for (const auto& p : v)
    if (p.user == user) return p;
  ADD_FAILURE() << "no profile for " << user;
  return {};
}

std::vector<UserProfile> build_tiny(int64_t as_of) {
  const auto e = tiny_shop();
  ProfileBuilder b(Catalogue::from_events(e), ProfileOptions{});
  b.apply_store(e, nullptr);
  return b.profiles(as_of);
}

TEST(Profile, RfmFollowsTheR2Definition) {
  const int64_t as_of = kT0 + 20 * kDay;
  const auto v = build_tiny(as_of);
  ASSERT_EQ(v.size(), 4u);
  const auto a = find(v, "a"), b = find(v, "b"), c = find(v, "c"), d = find(v, "d");
  EXPECT_EQ(a.recency_days, 10);  // last purchase 10 days before as_of
  EXPECT_EQ(a.frequency, 2);      // inv1 (two lines) and inv2
  EXPECT_DOUBLE_EQ(a.monetary, 30.5);  // 3*0.1 + 0.2 + 2*15, to the cent
  EXPECT_EQ(b.recency_days, 17);  // floor of 17 days and 23h59m
  EXPECT_EQ(b.frequency, 1);      // no invoice id: the purchase time stands for it
  EXPECT_FALSE(c.recency_days.has_value());
  EXPECT_EQ(c.r_score, 0);
  EXPECT_EQ(c.rfm_segment, "no purchases");
  EXPECT_EQ(d.events, 0);
  // Two buyers: rank bins of 5 over two users give bins 1 and 3; R is reversed.
  EXPECT_EQ(a.r_score, 5);
  EXPECT_EQ(b.r_score, 3);
  EXPECT_EQ(a.m_score, 1);  // a spent less
  EXPECT_EQ(b.m_score, 3);
}

TEST(Profile, QuintilesBreakTiesByNumericUserId) {
  // Ten users with the same value: ranks follow the ids 2, 9, 10, ... numerically, not as text.
  std::vector<double> values(10, 1.0);
  std::vector<std::string> ids = {"10", "9", "2", "11", "12", "13", "14", "15", "16", "17"};
  const auto s = quintile_scores(values, ids);
  EXPECT_EQ(s[2], 1);  // "2" ranks first
  EXPECT_EQ(s[1], 1);  // "9" second
  EXPECT_EQ(s[0], 2);  // "10" third
  EXPECT_EQ(s[9], 5);  // "17" last
  EXPECT_TRUE(user_id_less("12346.0", "12347"));
  EXPECT_TRUE(user_id_less("99", "abc"));
}

TEST(Profile, FeaturesOfTheTinyShop) {
  const auto v = build_tiny(kT0 + 20 * kDay);
  const auto a = find(v, "a"), b = find(v, "b"), c = find(v, "c");
  ASSERT_FALSE(a.categories.empty());
  EXPECT_EQ(a.categories[0].name, "books");
  EXPECT_DOUBLE_EQ(a.categories[0].share, 1.0);
  EXPECT_EQ(a.brands[0].name, "acme");
  // a paid 0.1, 0.2 and 15 for books whose typical (median) price is 15: (0.1/15 + 0.2/15 + 15/15) / 3.
  ASSERT_TRUE(a.price_sensitivity);
  EXPECT_NEAR(*a.price_sensitivity, (0.1 / 15 + 0.2 / 15 + 1.0) / 3, 1e-12);
  EXPECT_EQ(b.carts, 1);
  EXPECT_EQ(b.purchases, 1);
  EXPECT_DOUBLE_EQ(*b.purchase_rate, 1.0);
  EXPECT_DOUBLE_EQ(*b.return_rate, 1.0);
  EXPECT_EQ(c.views, 12);
  EXPECT_FALSE(c.cart_rate.value_or(1) != 0);
  EXPECT_EQ(c.peak_hour, 0);  // one event per hour from midnight: the first hour wins ties
  EXPECT_EQ(c.tenure_days, 20);
  EXPECT_EQ(a.tenure_days, 20);
  // 2024-01-01 was a Monday.
  EXPECT_EQ(c.peak_weekday, 0);
  EXPECT_EQ(c.events_30d, 12);
  // The JSON form round-trips.
  EXPECT_EQ(UserProfile::from_json(a.to_json()).to_json(), a.to_json());
}

TEST(Profile, RecentEventsWeighMoreInAffinities) {
  auto e = tiny_shop();
  // User c also viewed a book once, 60 days before the shoes: with a 30-day half-life the book
  // counts a quarter as much as it would today.
  e.user.push_back(2);
  e.item.push_back(0);
  e.type.push_back(static_cast<uint8_t>(EventType::View));
  e.quantity.push_back(1);
  e.value.push_back(std::nan(""));
  e.timestamp.push_back(kT0 - 60 * kDay + 11 * 3600);
  e.session.push_back(-1);
  ProfileBuilder b(Catalogue::from_events(e), ProfileOptions{});
  b.apply_store(e, nullptr);  // out of time order on purpose: a late event enters already aged
  const auto c = find(b.profiles(kT0 + 20 * kDay), "c");
  ASSERT_EQ(c.categories.size(), 2u);
  EXPECT_EQ(c.categories[0].name, "shoes");
  double shoes = 0;  // twelve hourly views, each aged against the last one
  for (int i = 0; i < 12; ++i) shoes += std::pow(0.5, (11 - i) / (30.0 * 24));
  EXPECT_NEAR(c.categories[1].share, 0.25 / (shoes + 0.25), 1e-9);
}

TEST(Profile, RfmSegmentNamesCoverEveryCell) {
  EXPECT_EQ(rfm_segment_name(5, 5), "champions");
  EXPECT_EQ(rfm_segment_name(1, 5), "can't lose them");
  EXPECT_EQ(rfm_segment_name(1, 1), "hibernating");
  EXPECT_EQ(rfm_segment_name(2, 3), "at risk");
  EXPECT_EQ(rfm_segment_name(5, 1), "new customers");
  EXPECT_EQ(rfm_segment_name(3, 3), "need attention");
  for (int r = 1; r <= 5; ++r)
    for (int f = 1; f <= 5; ++f) EXPECT_NE(rfm_segment_name(r, f), "no purchases");
}

TEST(Tags, RulesMatchTheirUsers) {
  const auto v = build_tiny(kT0 + 20 * kDay);
  const auto a = find(v, "a"), c = find(v, "c");
  EXPECT_TRUE(TagRule::compile({"buyer", "frequency >= 2 and monetary > 30"}).matches(a));
  EXPECT_FALSE(TagRule::compile({"buyer", "frequency >= 2 and monetary > 31"}).matches(a));
  EXPECT_TRUE(TagRule::compile({"x", "not (r_score < 5) or views > 100"}).matches(a));
  EXPECT_TRUE(TagRule::compile({"books", "top_category == \"books\""}).matches(a));
  EXPECT_TRUE(TagRule::compile({"books", "categories contains 'books'"}).matches(a));
  EXPECT_FALSE(TagRule::compile({"books", "categories contains 'book'"}).matches(a));
  // A feature the user lacks makes the comparison false, either way round.
  EXPECT_FALSE(TagRule::compile({"r", "recency_days > 1"}).matches(c));
  EXPECT_FALSE(TagRule::compile({"r", "recency_days <= 1"}).matches(c));
  EXPECT_TRUE(TagRule::compile({"window", "views >= 10 and purchases == 0"}).matches(c));
}

TEST(Tags, BadRulesAreClearErrors) {
  try {
    TagRule::compile({"high value", "m_scor == 5"});
    FAIL() << "an unknown feature compiled";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("high value"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("unknown feature \"m_scor\""), std::string::npos);
    EXPECT_NE(e.hint().find("m_score"), std::string::npos);
  }
  for (const char* rule : {"", "m_score ==", "m_score = 5", "(m_score == 5", "m_score == 5 and", "top_category > 'x'",
                           "m_score == 'x'", "top_category == 5", "views contains 'x'", "m_score == 5 extra"})
    EXPECT_THROW(TagRule::compile({"t", rule}), Error) << rule;
}

TEST(Tags, ConfigRulesAreCheckedWithTheirLine) {
  try {
    pipeline::parse_config("[profile]\nhalf_life_days = 14\n\n[[tag]]\nname = \"vip\"\nrule = \"spend > 5\"\n", "shop.toml", ".");
    FAIL() << "an unknown feature in a config rule was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.where().file, "shop.toml");
    EXPECT_EQ(e.where().line, 6);
    EXPECT_NE(std::string(e.what()).find("spend"), std::string::npos);
  }
  const auto c = pipeline::parse_config(
      "[profile]\nhalf_life_days = 14\nsegments = 3\nweights = { purchase = 10 }\n[[tag]]\nname = \"vip\"\nrule = \"m_score == 5\"\n",
      "shop.toml", ".");
  EXPECT_EQ(c.profile.options.half_life_days, 14);
  EXPECT_EQ(c.profile.segments.k, 3);
  EXPECT_EQ(c.profile.options.weights[static_cast<size_t>(EventType::Purchase)], 10);
  ASSERT_EQ(c.profile.tags.size(), 1u);  // [[tag]] entries replace the defaults
  EXPECT_THROW(pipeline::parse_config("[profile]\nweights = { stare = 1 }\n", "x.toml", "."), Error);
  EXPECT_THROW(pipeline::parse_config("[profile]\nhalf_lif = 1\n", "x.toml", "."), Error);
}

// Three well-separated groups of users.
std::vector<UserProfile> three_groups(unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, 0.05);
  std::vector<UserProfile> v;
  for (int g = 0; g < 3; ++g)
    for (int i = 0; i < 60 + 20 * g; ++i) {
      UserProfile p;
      p.user = fmt::format("u{}-{}", g, i);
      p.recency_days = static_cast<int64_t>(std::exp(1 + 2 * g + noise(rng)));
      p.frequency = static_cast<int64_t>(std::exp(3 - g + noise(rng)));
      p.monetary = std::exp(6 - 2 * g + noise(rng));
      p.tenure_days = 300;
      p.events = 10;
      v.push_back(p);
    }
  return v;
}

TEST(Segments, SilhouetteFindsTheGroupsAndIdsAreStable) {
  auto v = three_groups(1);
  SegmentOptions o;
  const auto m = segment_profiles(v, o);
  EXPECT_EQ(m.segments.size(), 3u);
  EXPECT_GT(m.silhouette, 0.5);
  // Ids by size: the largest group (g = 2, 100 users) is segment 0.
  EXPECT_EQ(m.segments[0].size, 100u);
  EXPECT_EQ(m.segments[2].size, 60u);
  for (const auto& p : v) EXPECT_EQ(p.segment, 2 - (p.user[1] - '0')) << p.user;
  auto again = three_groups(1);
  const auto m2 = segment_profiles(again, o);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i].segment, again[i].segment);
  EXPECT_EQ(m.to_json(), m2.to_json());
  // Nearest-centroid assignment agrees with the clustering, also after a JSON round trip.
  const auto loaded = SegmentModel::from_json(m.to_json());
  for (const auto& p : v) EXPECT_EQ(loaded.assign(p), p.segment);
  // A fixed k is respected; one user is one segment.
  o.k = 2;
  auto two = three_groups(2);
  EXPECT_EQ(segment_profiles(two, o).segments.size(), 2u);
  std::vector<UserProfile> one(1);
  EXPECT_EQ(segment_profiles(one, SegmentOptions{}).segments.size(), 1u);
  std::vector<UserProfile> none;
  EXPECT_NO_THROW(segment_profiles(none, SegmentOptions{}));
}

// The sample shop in a store.
struct ShopStore {
  test::TempDir dir;
  std::unique_ptr<store::Store> store;
  ShopStore() {
    sample::ShopOptions o;
    o.size = sample::ShopSize::named("small");
    o.out_dir = dir.path();
    const auto report = sample::generate_shop(o);
    auto config = pipeline::load_config(report.config_path);
    config.store_path = dir.file("shop.db");
    store = store::open_sqlite_store(config.store_path);
    pipeline::RunOptions ro;
    ro.progress = false;
    pipeline::ingest(config, *store, ro);
  }
};

nlohmann::json without_segment(const UserProfile& p) {
  auto j = p.to_json();
  j.erase("segment");
  return j;
}

TEST(ProfileLive, EventsOneByOneGiveTheBatchProfiles) {
  ShopStore shop;
  const auto events = shop.store->events();
  ASSERT_GT(events.size(), 1000u);
  const int64_t as_of = default_as_of(events);
  std::vector<Text> texts;
  shop.store->for_each_text([&](const Text& t) { texts.push_back(t); });
  auto feed_texts = [&](const std::function<void(const Text&)>& fn) {
    for (const auto& t : texts) fn(t);
  };

  ProfileBuilder batch(Catalogue::from_events(events), ProfileOptions{});
  batch.apply_store(events, feed_texts);
  const auto expected = batch.profiles(as_of);

  // Live: the catalogue and the users known up front, then the events one at a time.
  ProfileBuilder live(Catalogue::from_events(events), ProfileOptions{});
  for (size_t u = 0; u < events.user_ids.size(); ++u)
    live.add_user(events.user_ids[u], events.user_signups[u] == INT64_MIN ? std::nullopt : std::optional(events.user_signups[u]));
  for (const auto& t : texts) live.apply_text(t);
  live.take_touched();
  const size_t half = events.size() / 2;
  std::set<std::string> touched_late;
  for (size_t k = 0; k < events.size(); ++k) {
    ProfileEvent e;
    e.user = events.user_ids[static_cast<size_t>(events.user[k])];
    e.item = events.item[k];
    e.type = static_cast<EventType>(events.type[k]);
    e.quantity = events.quantity[k];
    e.value = events.value[k];
    e.timestamp = events.timestamp[k];
    e.session = events.session[k] >= 0 ? std::string_view(events.sessions[static_cast<size_t>(events.session[k])]) : "";
    live.apply(e);
    if (k == half) live.take_touched();
    if (k > half) touched_late.insert(std::string(e.user));
  }
  const auto touched = live.take_touched();
  EXPECT_EQ(std::set<std::string>(touched.begin(), touched.end()), touched_late);  // only the affected users
  const auto got = live.profiles(as_of);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(without_segment(got[i]), without_segment(expected[i])) << got[i].user;
}

TEST(ProfileLive, StoreBuildShowsTagsSegmentsAndEveryUser) {
  ShopStore shop;
  pipeline::ProfileConfig config;
  const auto report = pipeline::build_profiles(*shop.store, config, "");
  const auto profiles = pipeline::load_profiles(*shop.store);
  EXPECT_EQ(profiles.size(), report.users);
  EXPECT_EQ(shop.store->events().user_ids.size(), profiles.size());
  const auto seg = pipeline::load_segments(*shop.store);
  ASSERT_TRUE(seg);
  EXPECT_GE(seg->segments.size(), 2u);
  size_t tagged = 0, champions = 0, with_sentiment = 0;
  for (const auto& p : profiles) {
    EXPECT_GE(p.segment, 0);
    EXPECT_LT(p.segment, static_cast<int>(seg->segments.size()));
    tagged += !p.tags.empty();
    champions += p.rfm_segment == "champions";
    with_sentiment += p.sentiment.has_value();
  }
  EXPECT_GT(tagged, 0u);
  EXPECT_GT(champions, 0u);
  EXPECT_GT(with_sentiment, 0u);  // the sample shop's reviews carry ratings
  // Exports: one line per profile, and the CSV header is the schema.
  std::stringstream jsonl, csv;
  EXPECT_EQ(pipeline::export_profiles(*shop.store, "jsonl", jsonl), profiles.size());
  EXPECT_EQ(pipeline::export_profiles(*shop.store, "csv", csv), profiles.size());
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header.rfind("user,recency_days,frequency,monetary,r_score", 0), 0u);
  EXPECT_THROW(pipeline::export_profiles(*shop.store, "xml", csv), Error);
}

}  // namespace
}  // namespace persona::profile

namespace persona::profile {
namespace {

TEST(ProfileBadInput, UnknownItemsFutureEventsAndAHeavyUser) {
  auto e = tiny_shop();
  // An event whose item the catalogue lacks, and one after as_of.
  const int64_t as_of = kT0 + 20 * kDay;
  Catalogue catalogue = Catalogue::from_events(e);
  ProfileBuilder b(std::move(catalogue), ProfileOptions{});
  b.apply_store(e, nullptr);
  ProfileEvent unknown;
  unknown.user = "c";
  unknown.item = 999;  // not in the catalogue
  unknown.type = EventType::Purchase;
  unknown.value = 5;
  unknown.timestamp = kT0 + 15 * kDay;
  b.apply(unknown);
  const auto c = find(b.profiles(as_of), "c");
  EXPECT_EQ(c.purchases, 1);
  EXPECT_EQ(c.recency_days, 5);
  EXPECT_DOUBLE_EQ(c.monetary, 5);
  EXPECT_EQ(c.categories.size(), 1u);  // only the shoes it viewed
  EXPECT_FALSE(c.price_sensitivity.has_value());

  e.user.push_back(0);
  e.item.push_back(0);
  e.type.push_back(static_cast<uint8_t>(EventType::Purchase));
  e.quantity.push_back(100);
  e.value.push_back(1000);
  e.timestamp.push_back(as_of + kDay);
  e.session.push_back(3);
  ProfileBuilder later(Catalogue::from_events(e), ProfileOptions{});
  EXPECT_EQ(later.apply_store(e, nullptr, as_of), 1u);
  const auto a = find(later.profiles(as_of), "a");
  EXPECT_DOUBLE_EQ(a.monetary, 30.5);  // the future purchase is not in the profile as of as_of
  EXPECT_EQ(a.frequency, 2);

  // One user with a million events: bounded state, exact counts.
  ProfileBuilder heavy(Catalogue::from_events(tiny_shop()), ProfileOptions{});
  std::vector<std::string> invoices;
  for (int i = 0; i < 1000; ++i) invoices.push_back("inv" + std::to_string(i));
  for (int i = 0; i < 1000000; ++i) {
    ProfileEvent ev;
    ev.user = "whale";
    ev.item = i % 4;
    ev.type = i % 10 == 0 ? EventType::Purchase : EventType::View;
    ev.value = 2;
    ev.timestamp = kT0 + i * 10;
    ev.session = i % 10 == 0 ? std::string_view(invoices[static_cast<size_t>(i / 10 % 1000)]) : std::string_view();
    heavy.apply(ev);
  }
  const auto whale = heavy.profiles(kT0 + 200 * kDay).front();
  EXPECT_EQ(whale.events, 1000000);
  EXPECT_EQ(whale.purchases, 100000);
  EXPECT_EQ(whale.frequency, 1000);
  EXPECT_DOUBLE_EQ(whale.monetary, 200000);
  EXPECT_EQ(whale.active_days, 116);  // ten million seconds
}

}  // namespace
}  // namespace persona::profile
