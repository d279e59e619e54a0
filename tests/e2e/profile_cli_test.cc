// The profile commands as a user runs them: build, show, update after new events (equal to a
// rebuild on all the data), export, schema, segments; and their answers to bad input.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "support/test_support.h"

namespace persona {
namespace {

using test::json_of;
using test::run_persona;

std::map<std::string, nlohmann::json> exported(const std::string& store) {
  auto r = run_persona({"profile", "export", "--store", store, "--format", "jsonl", "--real-ids"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, nlohmann::json> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("segment");  // re-learned by a build, nearest centroid in an update
    out[j["user"]] = j;
  }
  return out;
}

TEST(ProfileCli, UpdateAfterNewEventsEqualsARebuild) {
  test::TempDir dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  const std::string a = dir.file("a.db"), b = dir.file("b.db"), models = dir.file("no-models");
  std::filesystem::create_directories(models);
  ASSERT_EQ(run_persona({"ingest", "--config", dir.file("shop.toml"), "--store", a, "-q"}).exit_code, 0);
  const auto built = json_of(run_persona({"profile", "build", "--store", a, "--as-of", "2026-01-01", "--models", models, "--json"}));
  EXPECT_EQ(built["mode"], "build");
  EXPECT_GT(built["users"].get<int>(), 100);

  // New events: purchases of priced items by two known users and a new one, and a view.
  std::ifstream items(dir.file("items.jsonl"));
  std::vector<std::string> priced;
  for (std::string line; std::getline(items, line) && priced.size() < 3;) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("price") && j["price"].is_number() && j["price"].get<double>() > 0)
      priced.push_back(j["item_id"]);
  }
  ASSERT_EQ(priced.size(), 3u);
  const auto before = exported(a);
  const std::string u1 = before.begin()->first, u2 = std::next(before.begin(), 7)->first;
  test::write_file(dir.file("extra.csv"),
                   "user_id,item_id,event,quantity,price,timestamp,session_id\n" +
                       u1 + "," + priced[0] + ",purchase,2,19.5,2025-12-30 10:00:00,new-1\n" +
                       u1 + "," + priced[1] + ",view,1,,2025-12-30 09:00:00,\n" +
                       u2 + "," + priced[2] + ",purchase,1,5.25,2025-12-31 20:00:00,new-2\n" +
                       "brand-new-user," + priced[0] + ",purchase,1,7,2025-12-31 21:00:00,new-3\n");
  test::write_file(dir.file("extra.toml"),
                   "[[sources]]\nname = \"extra\"\npath = \"extra.csv\"\n[sources.event]\nuser = \"user_id\"\n"
                   "item = \"item_id\"\ntype = \"event\"\nquantity = \"quantity\"\nvalue = \"price\"\n"
                   "timestamp = \"timestamp\"\nsession = \"session_id\"\n");
  ASSERT_EQ(run_persona({"ingest", "--config", dir.file("extra.toml"), "--store", a, "-q"}).exit_code, 0);
  const auto update = json_of(run_persona({"profile", "update", "--store", a, "--models", models, "--json"}));
  EXPECT_EQ(update["mode"], "update");
  EXPECT_EQ(update["updated_users"], 3);  // u1, u2 and the new user, recomputed from their histories
  EXPECT_EQ(update["events"].get<int>(), json_of(run_persona({"profile", "show", u1, "--store", a, "--json"}))["activity"]["events"].get<int>() +
                                             json_of(run_persona({"profile", "show", u2, "--store", a, "--json"}))["activity"]["events"].get<int>() + 1);

  // The same data ingested at once and built: the same profiles.
  ASSERT_EQ(run_persona({"ingest", "--config", dir.file("shop.toml"), "--store", b, "-q"}).exit_code, 0);
  ASSERT_EQ(run_persona({"ingest", "--config", dir.file("extra.toml"), "--store", b, "-q"}).exit_code, 0);
  ASSERT_EQ(run_persona({"profile", "build", "--store", b, "--as-of", "2026-01-01", "--models", models, "-q"}).exit_code, 0);
  const auto updated = exported(a), rebuilt = exported(b);
  ASSERT_EQ(updated.size(), rebuilt.size());
  EXPECT_EQ(updated.size(), before.size() + 1);
  for (const auto& [user, p] : rebuilt) ASSERT_EQ(updated.at(user), p) << user;
  EXPECT_NE(before.at(u1), updated.at(u1));
  EXPECT_EQ(updated.at("brand-new-user")["rfm"]["frequency"], 1);

  // Readable output, the segments and the schema.
  auto show = run_persona({"profile", "show", u1, "--store", a});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("RFM"), std::string::npos);
  EXPECT_NE(show.out.find("Segment"), std::string::npos);
  auto seg = json_of(run_persona({"segments", "--store", a, "--json"}));
  EXPECT_GE(seg["segments"].size(), 2u);
  EXPECT_EQ(seg["users"], updated.size());
  auto schema = json_of(run_persona({"profile", "schema", "--json"}));
  EXPECT_EQ(schema[0]["name"], "user");
  // Exports carry pseudonyms: without a key, real ids only when asked for.
  auto refused = run_persona({"profile", "export", "--store", a, "--format", "csv", "-o", dir.file("p.csv")});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("--real-ids"), std::string::npos) << refused.err;
  auto csv = run_persona({"profile", "export", "--store", a, "--format", "csv", "--real-ids", "-o", dir.file("p.csv")});
  EXPECT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(test::read_file(dir.file("p.csv")).rfind("user,recency_days", 0), 0u);
}

TEST(ProfileCli, BadInputGetsClearErrors) {
  test::TempDir dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  const std::string store = dir.file("s.db");
  ASSERT_EQ(run_persona({"ingest", "--config", dir.file("shop.toml"), "--store", store, "-q"}).exit_code, 0);
  auto r = run_persona({"profile", "update", "--store", store});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("profile build"), std::string::npos) << r.err;
  r = run_persona({"profile", "show", "nobody", "--store", store});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no profile"), std::string::npos) << r.err;
  r = run_persona({"segments", "--store", store});
  EXPECT_EQ(r.exit_code, 1);
  test::write_file(dir.file("bad.toml"), "[store]\npath = \"s.db\"\n[[tag]]\nname = \"vip\"\nrule = \"monetray > 5\"\n");
  r = run_persona({"profile", "build", "--config", dir.file("bad.toml")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("monetray"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bad.toml"), std::string::npos) << r.err;
  r = run_persona({"profile", "build", "--store", store, "--as-of", "yesterday-ish"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--as-of"), std::string::npos) << r.err;
  r = run_persona({"profile", "show", "x", "--store", dir.file("missing.db")});
  EXPECT_EQ(r.exit_code, 1);
}

}  // namespace
}  // namespace persona
