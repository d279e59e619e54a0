// Feedback from a file through the ingest mapping: bad rows named in the reject log, the rest
// stamped with the running experiment's variants (or the one a row names) and stored once;
// users who refused analytics left out.
#include <gtest/gtest.h>

#include <map>

#include <fmt/format.h>

#include "persona/experiment/experiments.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/run.h"
#include "support/test_support.h"

namespace persona::pipeline {
namespace {

const char* kConfig = R"(
[store]
path = "p.db"
[[sources]]
name = "users"
path = "users.csv"
[sources.user]
id = "user"
consent_analytics = "analytics"
[[sources]]
name = "feedback"
path = "feedback.csv"
[sources.feedback]
request_id = "request"
user = "user"
item = "item"
kind = "what"
position = "pos"
value = "revenue"
experiment = "test"
timestamp = { column = "at", format = "unix" }
)";

experiment::Experiment definition(const std::string& name, const std::string& status) {
  experiment::Experiment e;
  e.name = name;
  e.status = status;
  e.salt = experiment::new_salt();
  e.variants = experiment::parse_variants("a=current,b=current", "");
  e.variants[0].version = "va";
  e.variants[1].version = "vb";
  return e;
}

TEST(FeedbackIngest, AFileOfFeedbackIsStampedAndStoredOnce) {
  test::TempDir dir;
  test::write_file(dir.file("users.csv"), "user,analytics\nu1,yes\nu2,yes\nu9,no\n");
  std::string csv = "request,user,item,what,pos,revenue,at,test\n";
  for (int u = 1; u <= 2; ++u)
    for (int i = 0; i < 3; ++i) csv += fmt::format("r{},u{},i{},impression,{},,1764590400,\n", u, u, i, i);
  csv += "r1,u1,i0,click,0,,1764590460,\n";
  csv += "r1,u1,i0,purchase,0,25.5,1764590470,\n";
  csv += "r1,u1,i0,purchase,0,25.5,1764590470,\n";  // the same feedback twice: stored once
  csv += "r9,u9,i0,click,0,,1764590460,\n";         // refused analytics: not stored
  csv += "r2,u2,i1,stare,1,,1764590460,\n";         // not a kind: rejected, named
  csv += "r7,u2,i1,click,1,,1764590460,old\n";      // names an experiment that has ended
  test::write_file(dir.file("feedback.csv"), csv);
  test::write_file(dir.file("shop.toml"), kConfig);
  const auto config = load_config(dir.file("shop.toml"));
  auto store = store::open_sqlite_store(config.resolve(config.store_path));
  const auto running = definition("ab", "running"), old = definition("old", "stopped");
  store->put_meta("experiments", nlohmann::json::array({old.stored_json(), running.stored_json()}));

  const auto report = ingest(config, *store, {.progress = false});
  ASSERT_FALSE(report.failed());
  const auto& source = report.sources[1];
  EXPECT_EQ(source.summary.rows_read, 12u);
  EXPECT_EQ(source.summary.rows_kept, 11u);
  bool named = false;
  store->for_each_reject(store->ingests().back().id, [&](const store::RejectRow& r) {
    named = named || (r.field == "what" && r.value == "stare" && r.line == 12 && r.rule == "type_error");
  });
  EXPECT_TRUE(named) << "the bad kind is named by line, column and value";

  std::map<std::string, int64_t> impressions, clicks;
  double revenue = 0;
  store->for_each_feedback_tally("ab", [&](const store::FeedbackTally& t) {
    EXPECT_EQ(t.variant, running.variant_of(t.user).name) << t.user;
    EXPECT_NE(t.user, "u9");
    impressions[t.user] += t.impressions;
    clicks[t.user] += t.clicks;
    revenue += t.revenue;
  });
  EXPECT_EQ(impressions["u1"], 3);
  EXPECT_EQ(impressions["u2"], 3);
  EXPECT_EQ(clicks["u1"], 1);
  EXPECT_DOUBLE_EQ(revenue, 25.5);
  int64_t old_rows = 0;
  store->for_each_feedback_tally("old", [&](const store::FeedbackTally& t) {
    EXPECT_EQ(t.variant, old.variant_of("u2").name);
    old_rows += t.clicks;
  });
  EXPECT_EQ(old_rows, 1);
  // The stored model is the variant's version when the row names none.
  int64_t stamped = 0;
  for (const auto& table : store::store_tables())
    if (std::string_view(table.name) == "feedback")
      store->export_table(table, [&](const store::StoreRow& row) {
        // columns: request_id, item, kind, user_id, experiment, variant, model, ...
        if (row[4] && *row[4] == "ab") stamped += row[6] && *row[6] == (*row[5] == "a" ? "va" : "vb");
      });
  EXPECT_EQ(stamped, 8);
}

}  // namespace
}  // namespace persona::pipeline
