// The persona binary as a user runs it.
#include <gtest/gtest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "support/test_support.h"

namespace persona {
namespace {

using test::run_persona;

TEST(Cli, HelpEverywhere) {
  auto top = run_persona({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* cmd : {"demo", "generate", "ingest", "clean", "stats", "rejects", "normalise", "presets"}) {
    EXPECT_NE(top.out.find(cmd), std::string::npos) << cmd;
    auto r = run_persona({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("--json"), std::string::npos) << cmd;
  }
  EXPECT_NE(run_persona({}).exit_code, 0);
  EXPECT_NE(run_persona({"frobnicate"}).exit_code, 0);
}

TEST(Cli, HelpTopicsAreTheDocumentation) {
  const auto list = run_persona({"help"});
  ASSERT_EQ(list.exit_code, 0);
  for (const char* word : {"ingest", "serve", "config", "privacy", "api"}) EXPECT_NE(list.out.find(word), std::string::npos) << word;
  // A topic is the document itself, byte for byte, wherever the binary is.
  const auto config = run_persona({"help", "config"});
  ASSERT_EQ(config.exit_code, 0);
  EXPECT_EQ(config.out, test::read_file(std::string(PERSONA_SOURCE_DIR) + "/docs/config.md"));
  const auto train = run_persona({"help", "train", "recommend"});
  ASSERT_EQ(train.exit_code, 0);
  EXPECT_NE(train.out.find("--method"), std::string::npos) << train.out;
  const auto unknown = run_persona({"help", "nosuch"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("persona help"), std::string::npos) << unknown.err;
}

TEST(Cli, InstallPutsPersonaAndItsDashboardUnderAPrefix) {
  // What `./run install` does, into a scratch prefix: the binary runs from there with its help,
  // the documentation and the dashboard's files are installed beside it.
  test::TempDir dir;
  const auto r = test::run_shell(fmt::format("cmake --install {} --prefix {} >/dev/null && {}/bin/persona help privacy | head -1",
                                             PERSONA_BUILD_DIR, dir.path(), dir.path()),
                                 300);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "# Privacy\n");
  EXPECT_TRUE(std::filesystem::exists(dir.file("share/doc/persona/config.md")));
  if (std::filesystem::exists(std::string(PERSONA_BUILD_DIR) + "/dashboard/index.html")) {
    EXPECT_TRUE(std::filesystem::exists(dir.file("share/persona/dashboard/index.html")));
  }
}

TEST(Cli, GenerateIngestStatsOnTheSmallShop) {
  test::TempDir dir;
  auto gen = run_persona({"generate", "--size", "small", "--out", dir.path(), "--json"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const auto shop = nlohmann::json::parse(gen.out);
  auto ing = run_persona({"ingest", "--config", dir.file("shop.toml"), "--json"});
  ASSERT_EQ(ing.exit_code, 0) << ing.err;
  // Not a terminal: no progress bar (no carriage returns) on stderr.
  EXPECT_EQ(ing.err.find('\r'), std::string::npos);
  const auto report = nlohmann::json::parse(ing.out);
  EXPECT_EQ(report["sources"].size(), 4u);
  auto stats = run_persona({"stats", "--config", dir.file("shop.toml"), "--json"});
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  const auto s = nlohmann::json::parse(stats.out);
  EXPECT_EQ(s["texts"], shop["texts"]);
  EXPECT_GT(s["events"].get<int>(), 15000);
  EXPECT_EQ(s["events"].get<int>(), report["sources"][2]["rows_kept"].get<int>());
  EXPECT_TRUE(s.contains("first_event"));
  // The human form names the same numbers.
  auto human = run_persona({"stats", "--config", dir.file("shop.toml")});
  EXPECT_NE(human.out.find("Dataset summary"), std::string::npos);
  EXPECT_NE(human.out.find(std::to_string(s["events"].get<int>())), std::string::npos);
  // Rejects come back as JSON Lines, one per removed row.
  auto rejects = run_persona({"rejects", "--config", dir.file("shop.toml")});
  ASSERT_EQ(rejects.exit_code, 0);
  int flagged = 0;  // flagged rows are in the log too, though kept
  for (const auto& src : report["sources"])
    for (const auto& r : src["rules"]) flagged += r.value("flagged", 0);
  EXPECT_EQ(static_cast<int>(std::count(rejects.out.begin(), rejects.out.end(), '\n')),
            s["rejected_rows"].get<int>() + flagged);
  // Normalisers were fitted and saved; applying one is a CLI call.
  auto norm = run_persona({"normalise", "--config", dir.file("shop.toml"), "--field", "user.age", "--apply", "34", "--json"});
  ASSERT_EQ(norm.exit_code, 0) << norm.err;
  EXPECT_EQ(nlohmann::json::parse(norm.out).size(), 1u);
  // A second ingest adds nothing.
  auto again = run_persona({"ingest", "--config", dir.file("shop.toml")});
  EXPECT_NE(again.out.find("already ingested"), std::string::npos);
}

TEST(Cli, DemoRunsEndToEnd) {
  test::TempDir dir;
  auto r = run_persona({"demo", "--size", "small", "--dir", dir.path(), "--no-serve"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Dataset summary"), std::string::npos);
  EXPECT_NE(r.out.find("exact_duplicate"), std::string::npos);
  auto j = run_persona({"demo", "--size", "small", "--dir", dir.path(), "--json", "--no-serve"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_GT(nlohmann::json::parse(j.out)["stats"]["events"].get<int>(), 0);
}

TEST(Cli, CleanWithAPresetWritesKeptRowsAndRejects) {
  test::TempDir dir;
  test::write_file(dir.file("ratings.csv"), "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,1,4.0,964982703\n2,5,x,964982703\n");
  auto r = run_persona({"clean", "--preset", "movielens", dir.file("ratings.csv"), "--out", dir.file("kept.csv"),
                        "--rejects", dir.file("rejects.jsonl"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["rows_read"], 3);
  EXPECT_EQ(j["rows_kept"], 1);
  EXPECT_EQ(test::read_file(dir.file("kept.csv")), "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n");
  const auto log = test::read_file(dir.file("rejects.jsonl"));
  EXPECT_NE(log.find("\"line\":3,\"rule\":\"exact_duplicate\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"file\":\"" + dir.file("ratings.csv") + "\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"line\":4,\"rule\":\"type_error\",\"field\":\"rating\",\"value\":\"x\""), std::string::npos) << log;
}

TEST(Cli, PresetsAreListed) {
  auto r = run_persona({"presets"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* p : {"online_retail", "movielens_100k", "movielens_1m", "taobao", "banking77", "online_shopping_zh"})
    EXPECT_NE(r.out.find(p), std::string::npos) << p;
}

}  // namespace
}  // namespace persona
