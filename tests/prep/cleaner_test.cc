#include "persona/prep/cleaner.h"

#include <gtest/gtest.h>

#include "persona/core/error.h"
#include "persona/io/csv_reader.h"

namespace persona::prep {
namespace {

io::SourceMapping mapping() {
  io::SourceMapping m;
  m.name = "shop";
  m.path = "shop.csv";
  m.outputs.push_back({Entity::Event,
                       {{"user", {.column = "user"}},
                        {"item", {.column = "item"}},
                        {"type", {.column = "type"}},
                        {"quantity", {.column = "qty"}},
                        {"value", {.column = "price"}},
                        {"timestamp", {.column = "ts"}}}});
  m.outputs.push_back({Entity::Item, {{"id", {.column = "item"}}, {"title", {.column = "title"}}}});
  return m;
}

struct Outcome {
  CleanSummary summary;
  std::vector<RowVerdict> verdicts;
  std::vector<std::string> titles;  // of kept rows, after hygiene
};

Outcome clean(const std::string& csv, std::vector<RuleSpec> rules) {
  const auto m = mapping();
  io::CsvReader reader(io::ByteSource::from_memory(csv, "shop.csv"));
  io::Mapper mapper(m, reader.columns(), "shop.csv");
  Cleaner cleaner(std::move(rules), mapper, "shop.csv");
  io::Record r;
  std::vector<io::FieldValue> values;
  Outcome out;
  if (cleaner.needs_first_pass()) {
    while (reader.next(r)) {
      if (r.problem.empty()) mapper.map(r, values);
      cleaner.observe(r, values);
    }
    cleaner.end_first_pass();
    reader = io::CsvReader(io::ByteSource::from_memory(csv, "shop.csv"));
  }
  while (reader.next(r)) {
    if (r.problem.empty()) mapper.map(r, values);
    out.verdicts.push_back(cleaner.apply(r, values));
    if (out.verdicts.back().kept) out.titles.emplace_back(values[mapper.slot(Entity::Item, "title")].text);
  }
  out.summary = cleaner.summary();
  return out;
}

const char* kHeader = "user,item,type,qty,price,ts,title\n";

std::vector<RuleSpec> r1_like() {
  return {{.kind = "exact_duplicate", .name = "duplicate"},
          {.kind = "missing", .name = "missing_user", .fields = {"event.user"}},
          {.kind = "prefix", .name = "refund", .fields = {"type"}, .prefixes = {"ret"}},
          {.kind = "range", .name = "nonpositive_quantity", .fields = {"event.quantity"}, .min = 0, .min_exclusive = true},
          {.kind = "pattern", .name = "non_product", .fields = {"item"}, .regex = "^[0-9]"}};
}

TEST(Cleaner, RulesRunInOrderAndEveryRowIsAccountedFor) {
  const std::string csv = std::string(kHeader) +
                          "u1,100,purchase,1,2.5,2024-01-01,Mug\n"
                          "u1,100,purchase,1,2.5,2024-01-01,Mug\n"      // duplicate
                          ",100,purchase,1,2.5,2024-01-01,Mug\n"        // missing user
                          ",100,purchase,1,2.5,2024-01-01,Mug\n"        // duplicate (of a row missing its user)
                          "u2,101,return,1,2.5,2024-01-02,Cup\n"        // refund
                          "u2,102,purchase,0,2.5,2024-01-02,Pot\n"      // quantity
                          "u2,POST,purchase,1,18,2024-01-02,Postage\n"  // non-product
                          "u3,103,purchase,2,1.0,2024-01-03,Pan\n";
  const auto out = clean(csv, r1_like());
  const auto& s = out.summary;
  EXPECT_EQ(s.rows_read, 8u);
  EXPECT_EQ(s.rows_kept, 2u);
  EXPECT_EQ(s.removed_by("duplicate"), 2u);
  EXPECT_EQ(s.removed_by("missing_user"), 1u);
  EXPECT_EQ(s.removed_by("refund"), 1u);
  EXPECT_EQ(s.removed_by("nonpositive_quantity"), 1u);
  EXPECT_EQ(s.removed_by("non_product"), 1u);
  EXPECT_EQ(s.rows_read, s.rows_kept + s.rows_removed);
  uint64_t sum = 0;
  for (const auto& r : s.rules) sum += r.removed;
  EXPECT_EQ(sum, s.rows_removed);
  EXPECT_EQ(out.verdicts[6].rule, "non_product");
  EXPECT_EQ(out.verdicts[6].field, "item");
  EXPECT_EQ(out.verdicts[6].value, "POST");
}

TEST(Cleaner, ImplicitTypeAndRequiredRulesKeepBadRowsOutOfTheStore) {
  const std::string csv = std::string(kHeader) +
                          "u1,100,purchase,two,2.5,2024-01-01,Mug\n"  // quantity not a number
                          "u1,100,clik,1,2.5,2024-01-01,Mug\n"        // unknown event type
                          "u1,100,view,1,2.5,yesterday,Mug\n"         // bad timestamp
                          "u1,,view,1,2.5,2024-01-01,Mug\n"           // item missing: required
                          "u1,100,view,1,2.5\n"                       // malformed
                          "u1,100,view,1,2.5,2024-01-01,Mug\n";
  const auto out = clean(csv, {});
  EXPECT_EQ(out.summary.removed_by("type_error"), 3u);
  EXPECT_EQ(out.summary.removed_by("missing_required"), 1u);
  EXPECT_EQ(out.summary.removed_by("malformed"), 1u);
  EXPECT_EQ(out.summary.rows_kept, 1u);
  EXPECT_EQ(out.verdicts[0].field, "qty");
  EXPECT_EQ(out.verdicts[0].value, "two");
  EXPECT_NE(out.verdicts[2].reason.find("timestamp"), std::string::npos);
}

TEST(Cleaner, ActionNullClearsBadValuesAndKeepsTheRow) {
  const std::string csv = std::string(kHeader) + "u1,100,view,1,abc,2024-01-01,Mug\nu1,100,view,1,-4,2024-01-01,Mug\n";
  const auto out = clean(csv, {{.kind = "type_error", .name = "bad_price", .fields = {"event.value"}, .action = "null"},
                               {.kind = "range", .name = "negative_price", .fields = {"event.value"}, .min = 0,
                                .action = "null"}});
  EXPECT_EQ(out.summary.rows_kept, 2u);
  EXPECT_EQ(out.summary.rules[1].changed, 1u);
  EXPECT_EQ(out.summary.rules[2].changed, 1u);
}

TEST(Cleaner, DuplicateKeyUsesOnlyTheNamedFields) {
  const std::string csv = std::string(kHeader) +
                          "u1,100,view,1,2.5,2024-01-01,Mug\n"
                          "u1,100,view,3,9.9,2024-01-01,Other\n"
                          "u1,100,view,1,2.5,2024-01-02,Mug\n";
  const auto out = clean(csv, {{.kind = "duplicate_key", .fields = {"event.user", "event.item", "event.timestamp"}}});
  EXPECT_EQ(out.summary.removed_by("duplicate_key"), 1u);
  EXPECT_FALSE(out.verdicts[1].kept);
}

TEST(Cleaner, TextHygieneCountsChangedRows) {
  const std::string csv = std::string(kHeader) + "u1,100,view,1,2.5,2024-01-01,\"  Ｍｕｇ\t big \"\nu1,101,view,1,2.5,2024-01-01,Cup\n";
  const auto out = clean(csv, {{.kind = "text_hygiene", .fields = {"item.title"}}});
  EXPECT_EQ(out.summary.rules[1].changed, 1u);
  EXPECT_EQ(out.titles[0], "Mug big");
  EXPECT_EQ(out.titles[1], "Cup");
}

TEST(Cleaner, OutliersByIqrDropOrFlag) {
  std::string csv = kHeader;
  for (int i = 0; i < 20; ++i) csv += "u1,100,view,1," + std::to_string(10 + i % 5) + ",2024-01-01,Mug\n";
  csv += "u1,100,view,1,500,2024-01-01,Mug\n";
  const auto dropped = clean(csv, {{.kind = "outlier", .fields = {"event.value"}, .method = "iqr", .threshold = 1.5}});
  EXPECT_EQ(dropped.summary.removed_by("outlier"), 1u);
  EXPECT_FALSE(dropped.verdicts.back().kept);
  const auto flagged = clean(csv, {{.kind = "outlier", .fields = {"event.value"}, .action = "flag"}});
  EXPECT_EQ(flagged.summary.rows_kept, 21u);
  EXPECT_EQ(flagged.summary.rules[1].flagged, 1u);
  EXPECT_TRUE(flagged.verdicts.back().flagged);
  const auto z = clean(csv, {{.kind = "outlier", .fields = {"event.value"}, .method = "zscore", .threshold = 3}});
  EXPECT_EQ(z.summary.removed_by("outlier"), 1u);
}

TEST(Cleaner, UnknownFieldsAndBadRulesAreClearErrors) {
  EXPECT_THROW(clean(kHeader, {{.kind = "missing", .fields = {"event.colour"}}}), Error);
  EXPECT_THROW(clean(kHeader, {{.kind = "missing", .fields = {"NoSuchColumn"}}}), Error);
  EXPECT_THROW(clean(kHeader, {{.kind = "pattern", .fields = {"item"}, .regex = "(unclosed"}}), Error);
  EXPECT_THROW(clean(kHeader, {{.kind = "no_such_rule"}}), Error);
  EXPECT_THROW(clean(kHeader, {{.kind = "range", .fields = {"event.value"}}}), Error);
}

}  // namespace
}  // namespace persona::prep

namespace persona::prep {
namespace {

TEST(Cleaner, RangeOnTimestampsUsesTheTime) {
  const std::string csv = std::string(kHeader) + "u1,100,view,1,2.5,2024-01-01,Mug\nu1,100,view,1,2.5,2030-01-01,Mug\n";
  const auto out = clean(csv, {{.kind = "range", .name = "future", .fields = {"event.timestamp"}, .max = 1893455999}});
  EXPECT_EQ(out.summary.removed_by("future"), 1u);
  EXPECT_TRUE(out.verdicts[0].kept);
}

TEST(SeenHashes, ABoundedMemoryRemembersAtLeastItsLimitAndForgetsOlderRows) {
  SeenHashes seen;
  seen.limit_to(4);
  for (uint64_t i = 0; i < 10; ++i) EXPECT_FALSE(seen.insert_seen({i, 0})) << i;
  // Rows 6..9 are always remembered (at least the last 4); 0 and 1 are forgotten (at most 8).
  for (uint64_t i = 6; i < 10; ++i) EXPECT_TRUE(seen.insert_seen({i, 0})) << i;
  EXPECT_FALSE(seen.insert_seen({0, 0}));
  SeenHashes all;  // unlimited: a file remembers every row
  for (uint64_t i = 0; i < 1000; ++i) EXPECT_FALSE(all.insert_seen({i, 1}));
  for (uint64_t i = 0; i < 1000; ++i) EXPECT_TRUE(all.insert_seen({i, 1}));
}

}  // namespace
}  // namespace persona::prep
