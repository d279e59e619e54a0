#include "persona/sample/shop_generator.h"

#include <gtest/gtest.h>

#include "persona/pipeline/config.h"
#include "persona/pipeline/run.h"
#include "support/test_support.h"

namespace persona {
namespace {

sample::ShopReport make_shop(const std::string& dir, uint64_t seed) {
  sample::ShopOptions o;
  o.size = sample::ShopSize::named("small");
  o.seed = seed;
  o.out_dir = dir;
  return sample::generate_shop(o);
}

TEST(SampleShop, SameSeedSameShopOtherSeedOtherShop) {
  test::TempDir a, b, c;
  make_shop(a.path(), 7);
  make_shop(b.path(), 7);
  make_shop(c.path(), 8);
  for (const char* f : {"users.csv", "items.jsonl", "events.csv.gz", "texts.jsonl", "shop.toml"})
    EXPECT_EQ(test::read_file(a.file(f)), test::read_file(b.file(f))) << f;
  EXPECT_NE(test::read_file(a.file("events.csv.gz")), test::read_file(c.file("events.csv.gz")));
}

TEST(SampleShop, HasTheShapeOfAShop) {
  test::TempDir dir;
  const auto shop = make_shop(dir.path(), 42);
  EXPECT_EQ(shop.users, 300);
  EXPECT_EQ(shop.items, 120);
  EXPECT_GT(shop.events, 15000);
  EXPECT_LT(shop.events, 30000);
  EXPECT_GT(shop.texts, 50);
  const std::string texts = test::read_file(dir.file("texts.jsonl"));
  EXPECT_NE(texts.find("\"lang\":\"zh\""), std::string::npos);
  EXPECT_NE(texts.find("\"lang\":\"en\""), std::string::npos);
  EXPECT_NE(texts.find("\"kind\":\"chat\""), std::string::npos);
  EXPECT_NE(test::read_file(dir.file("items.jsonl")).find("title_zh"), std::string::npos);
}

TEST(SampleShop, CleaningFindsExactlyTheDirtThatWasAdded) {
  test::TempDir dir;
  const auto shop = make_shop(dir.path(), 42);
  const auto config = pipeline::load_config(shop.config_path);
  auto store = store::open_sqlite_store(config.resolve(config.store_path));
  const auto report = pipeline::ingest(config, *store, {.progress = false});
  ASSERT_EQ(report.sources.size(), 4u);
  const auto& users = report.sources[0].summary;
  const auto& events = report.sources[2].summary;
  EXPECT_EQ(users.removed_by("duplicate_user"), static_cast<uint64_t>(shop.duplicate_users));
  EXPECT_EQ(events.removed_by("exact_duplicate"), static_cast<uint64_t>(shop.duplicate_events));
  EXPECT_EQ(events.removed_by("missing_user"), static_cast<uint64_t>(shop.missing_user_events));
  EXPECT_EQ(events.removed_by("type_error"), static_cast<uint64_t>(shop.bad_timestamp_events + shop.bad_type_events));
  EXPECT_EQ(events.removed_by("nonpositive_quantity"), static_cast<uint64_t>(shop.negative_quantity_events));
  EXPECT_EQ(events.rows_read, static_cast<uint64_t>(shop.events + shop.duplicate_events));
  EXPECT_EQ(events.rows_read, events.rows_kept + events.rows_removed);
  const auto stats = store->stats();
  EXPECT_EQ(stats.events, static_cast<int64_t>(events.rows_kept));
  EXPECT_EQ(stats.texts, shop.texts);
  for (const auto& m : stats.missing) {
    if (m.name == "users.attributes") {
      EXPECT_EQ(m.count, 0) << "every user has a member level and a channel";
    }
  }
  EXPECT_FALSE(report.normalisers.empty());
  EXPECT_TRUE(report.normalisers.contains("event.value"));
}

}  // namespace
}  // namespace persona
