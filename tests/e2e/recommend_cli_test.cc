// The recommendation commands as a user runs them on the sample shop: train (method chosen on
// validation), recommend with reasons and filters, similar, eval on a temporal split; bad input.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "support/test_support.h"

namespace persona {
namespace {

using test::json_of;
using test::run_persona;

TEST(RecommendCli, TrainRecommendSimilarEval) {
  test::TempDir dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  const std::string config = dir.file("shop.toml"), models = dir.file("models");
  ASSERT_EQ(run_persona({"ingest", "--config", config, "-q"}).exit_code, 0);
  const auto trained = json_of(run_persona({"train", "recommend", "--config", config, "--models", models, "--json"}));
  // --method auto compared the grid on validation and said why it chose what it chose.
  EXPECT_GT(trained["validation"]["trials"].size(), 30u);
  EXPECT_FALSE(trained["validation"]["reason"].get<std::string>().empty());
  EXPECT_EQ(trained["validation"]["protocol"]["protocol"], "temporal");
  EXPECT_TRUE(std::filesystem::exists(models + "/recommend.model"));

  const auto recs = json_of(run_persona({"recommend", "U000001", "--config", config, "--models", models, "-k", "5", "--json"}));
  ASSERT_EQ(recs["recommendations"].size(), 5u);
  for (const auto& r : recs["recommendations"]) EXPECT_FALSE(r["reason"].get<std::string>().empty());
  const auto cold = json_of(run_persona({"recommend", "nobody-yet", "--config", config, "--models", models, "--json"}));
  EXPECT_EQ(cold["history_items"], 0);
  EXPECT_EQ(cold["recommendations"].size(), 10u);
  const std::string item = recs["recommendations"][0]["item"];
  const auto filtered = json_of(run_persona({"recommend", "U000001", "--config", config, "--models", models,
                                             "--exclude-bought", "--max-price", "50", "--json"}));
  for (const auto& r : filtered["recommendations"]) EXPECT_NE(r["reason"], "you chose it before");
  auto human = run_persona({"recommend", "U000001", "--config", config, "--models", models});
  EXPECT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("1."), std::string::npos);

  const auto eval = json_of(run_persona({"eval", "recommend", "--config", config, "--split", "2025-11-01", "--method",
                                         "item-knn", "--json"}));
  ASSERT_GE(eval["results"].size(), 3u);  // the method and the popularity and repurchase baselines
  const auto& chosen = eval["results"][0]["test"];
  EXPECT_GT(chosen["eval_users"].get<int>(), 50);
  EXPECT_GT(chosen["ndcg_at_10"].get<double>(), eval["results"][1]["test"]["ndcg_at_10"].get<double>());  // beats popularity
  EXPECT_EQ(run_persona({"similar", item, "--models", models, "-k", "3"}).exit_code, 0);

  // The shop marks some items out of stock (items.jsonl in_stock): never recommended, unless asked.
  std::set<std::string> out_of_stock;
  for (const auto& line : test::lines_of(dir.file("items.jsonl"))) {
    const auto j = nlohmann::json::parse(line);
    if (!j["in_stock"].get<bool>()) out_of_stock.insert(j["item_id"]);
  }
  ASSERT_FALSE(out_of_stock.empty());
  bool shown_when_asked = false;
  for (const char* user : {"U000001", "U000002", "U000003", "nobody-yet"}) {
    const auto all = json_of(run_persona({"recommend", user, "--config", config, "--models", models, "-k", "200", "--json"}));
    for (const auto& r : all["recommendations"]) EXPECT_FALSE(out_of_stock.count(r["item"])) << r["item"];
    const auto any = json_of(run_persona({"recommend", user, "--config", config, "--models", models, "-k", "200",
                                          "--include-unavailable", "--json"}));
    for (const auto& r : any["recommendations"]) shown_when_asked |= out_of_stock.count(r["item"]) > 0;
  }
  EXPECT_TRUE(shown_when_asked);
}

// The sample shop's events are drawn from hidden per-user category tastes (latent.jsonl). A
// recommender that learned something recommends from the categories each user actually likes;
// popularity gives everyone the same list, about as taste-blind as a random draw.
std::map<std::string, double> taste_agreement(const std::string& shop, const std::string& lists_file) {
  std::map<std::string, std::map<std::string, double>> tastes;
  for (const auto& line : test::lines_of(shop + "/latent.jsonl")) {
    const auto j = nlohmann::json::parse(line);
    for (const auto& [category, share] : j["tastes"].items()) tastes[j["user_id"]][category] = share;
  }
  std::map<std::string, std::string> category;
  for (const auto& line : test::lines_of(shop + "/items.jsonl")) {
    const auto j = nlohmann::json::parse(line);
    category[j["item_id"]] = j["category"];
  }
  std::map<std::string, std::pair<double, int>> sums;  // by method: agreement sum, users
  for (const auto& line : test::lines_of(lists_file)) {
    const auto j = nlohmann::json::parse(line);
    const auto& mine = tastes.at(j["user"]);
    double agreement = 0;
    for (const auto& item : j["items"]) {
      const auto it = mine.find(category.at(item));
      agreement += it == mine.end() ? 0 : it->second / static_cast<double>(j["items"].size());
    }
    auto& s = sums[j["method"]["method"]];
    s.first += agreement, s.second += 1;
  }
  std::map<std::string, double> out;
  for (const auto& [method, s] : sums) out[method] = s.first / s.second;
  return out;
}

TEST(RecommendCli, RecommendationsFollowTheSampleShopsHiddenTastes) {
  test::TempDir dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  const std::string config = dir.file("shop.toml"), lists = dir.file("lists.jsonl");
  ASSERT_EQ(run_persona({"ingest", "--config", config, "-q"}).exit_code, 0);
  const auto r = run_persona({"eval", "recommend", "--config", config, "--split", "2025-11-01", "--method", "user-knn",
                              "--lists", lists, "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto agreement = taste_agreement(dir.path(), lists);
  ASSERT_EQ(agreement.count("user-knn"), 1u);
  ASSERT_EQ(agreement.count("popularity"), 1u);
  EXPECT_GT(agreement.at("user-knn"), 1.5 * agreement.at("popularity"));
  EXPECT_GT(agreement.at("user-knn"), 0.12);  // a uniform draw from the catalogue agrees about 0.08
}

TEST(RecommendCli, BatchListsAreTheOneUserListsFromOneLoad) {
  test::TempDir dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  const std::string config = dir.file("shop.toml"), models = dir.file("models");
  ASSERT_EQ(run_persona({"ingest", "--config", config, "-q"}).exit_code, 0);
  ASSERT_EQ(run_persona({"train", "recommend", "--config", config, "--models", models, "--method", "item-knn", "-q"}).exit_code, 0);
  auto r = run_persona({"recommend", "--all", "--config", config, "--models", models, "-k", "5", "--exclude-bought",
                        "--threads", "2", "--out", dir.file("lists.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, nlohmann::json> lists;
  for (const auto& line : test::lines_of(dir.file("lists.jsonl"))) {
    const auto j = nlohmann::json::parse(line);
    lists[j["user"]] = j["recommendations"];
  }
  EXPECT_GT(lists.size(), 100u);  // every user of the store
  for (const char* user : {"U000001", "U000002", "U000017", "U000100"}) {
    ASSERT_EQ(lists.count(user), 1u) << user;
    const auto one = json_of(run_persona({"recommend", user, "--config", config, "--models", models, "-k", "5",
                                          "--exclude-bought", "--json"}));
    ASSERT_EQ(lists[user].size(), one["recommendations"].size()) << user;
    for (size_t i = 0; i < lists[user].size(); ++i) {
      EXPECT_EQ(lists[user][i]["item"], one["recommendations"][i]["item"]) << user << " #" << i;
      EXPECT_EQ(lists[user][i]["score"], one["recommendations"][i]["score"]) << user << " #" << i;
      EXPECT_EQ(lists[user][i]["reason"], one["recommendations"][i]["reason"]) << user << " #" << i;
    }
  }
  // A file of ids, CSV out: an unknown user gets what the one-user path gives a stranger.
  {
    std::ofstream ids(dir.file("users.txt"));
    ids << "U000002\n\n  nobody-yet \r\n";
  }
  r = run_persona({"recommend", "--users", dir.file("users.txt"), "--config", config, "--models", models, "-k", "3",
                   "--out", dir.file("lists.csv")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = test::lines_of(dir.file("lists.csv"));
  ASSERT_EQ(rows.size(), 7u);  // the header, three for each user
  EXPECT_EQ(rows[0], "user,rank,item,score,category,reason,because");
  const auto stranger = json_of(run_persona({"recommend", "nobody-yet", "--config", config, "--models", models, "-k", "3", "--json"}));
  const std::string first = stranger["recommendations"][0]["item"];
  EXPECT_EQ(rows[4].rfind("nobody-yet,1," + first + ",", 0), 0u) << rows[4];
  // One user or a batch, not both, not neither.
  r = run_persona({"recommend", "--config", config, "--models", models});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--all"), std::string::npos) << r.err;
  r = run_persona({"recommend", "U000001", "--all", "--config", config, "--models", models});
  EXPECT_EQ(r.exit_code, 1);
  r = run_persona({"recommend", "--users", dir.file("missing.txt"), "--config", config, "--models", models});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing.txt"), std::string::npos) << r.err;
}

TEST(RecommendCli, EvaluatesOnAnyProtocolAndOnYourOwnSplit) {
  test::TempDir dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  const std::string config = dir.file("shop.toml");
  ASSERT_EQ(run_persona({"ingest", "--config", config, "-q"}).exit_code, 0);
  // --method auto on a random per-user split (it used to be refused): validated on another draw
  // of the same protocol with the same seen-item rule, and not below popularity on test.
  const auto random = json_of(run_persona({"eval", "recommend", "--config", config, "--protocol", "random-per-user", "--ratio",
                                           "0.25", "--seed", "3", "--exclude-seen", "--json"}));
  EXPECT_EQ(random["protocol"]["protocol"], "random-per-user");
  EXPECT_EQ(random["protocol"]["ratio"], 0.25);
  EXPECT_EQ(random["protocol"]["exclude_seen"], true);
  EXPECT_EQ(random["validation"]["protocol"]["protocol"], "random-per-user");
  EXPECT_EQ(random["validation"]["protocol"]["seed"], 4);
  EXPECT_EQ(random["validation"]["exclude_seen"], true);
  const auto& results = random["results"];
  ASSERT_GE(results.size(), 2u);
  for (const auto& r : results) {
    if (r["method"]["method"] == "popularity") {
      EXPECT_GE(results[0]["test"]["ndcg_at_10"].get<double>(), r["test"]["ndcg_at_10"].get<double>());
    }
  }
  const auto last = json_of(run_persona({"eval", "recommend", "--config", config, "--protocol", "leave-last-out", "--method",
                                         "item-knn", "--json"}));
  EXPECT_EQ(last["protocol"]["last"], 1);

  // Your own split, in MovieLens 100K's format: two tastes of ten items each; the test file names
  // each user's next item of their taste (one line is malformed: rejected, the rest goes on).
  {
    std::ofstream train(dir.file("train.tsv")), test(dir.file("test.tsv"));
    for (int u = 1; u <= 40; ++u) {
      const int base = u <= 20 ? 1 : 11;
      for (int n = 0; n < 5; ++n) train << u << '\t' << base + (u + n * 3) % 10 << "\t4\t" << 1000000 + n * 86400 << '\n';
      test << u << '\t' << base + (u + 7) % 10 << "\t5\t" << 2000000 << '\n';
    }
    test << "41\tnot-a-number\t5\tyesterday\n";
  }
  const auto own = json_of(run_persona({"eval", "recommend", "--train", dir.file("train.tsv"), "--test", dir.file("test.tsv"),
                                        "--preset", "movielens_100k", "--method", "item-knn", "--exclude-seen", "--json"}));
  EXPECT_EQ(own["protocol"]["protocol"], "given");
  ASSERT_GE(own["results"].size(), 2u);
  EXPECT_EQ(own["results"][0]["test"]["eval_users"], 40);
  EXPECT_GT(own["results"][0]["test"]["ndcg_at_10"].get<double>(), own["results"][1]["test"]["ndcg_at_10"].get<double>());
  EXPECT_EQ(own["files"]["test"]["sources"][0]["rows_removed"], 1) << own["files"].dump();
  EXPECT_FALSE(own["files"]["test"].contains("reject_log"));  // a temporary directory, removed: not named
  // The same split with a config's mapping instead of the preset: the same figures.
  test::write_file(dir.file("ratings.toml"), "[[sources]]\npath = \"unused.tsv\"\npreset = \"movielens_100k\"\n");
  const auto by_config = json_of(run_persona({"eval", "recommend", "--train", dir.file("train.tsv"), "--test", dir.file("test.tsv"),
                                              "--config", dir.file("ratings.toml"), "--method", "item-knn", "--exclude-seen", "--json"}));
  ASSERT_EQ(by_config["results"].size(), own["results"].size()) << by_config.dump();
  for (size_t i = 0; i < own["results"].size(); ++i) {
    EXPECT_EQ(by_config["results"][i]["test"]["eval_users"], own["results"][i]["test"]["eval_users"]);
    EXPECT_EQ(by_config["results"][i]["test"]["ndcg_at_10"], own["results"][i]["test"]["ndcg_at_10"]);
  }
  // Both files are needed, with a mapping.
  auto r = run_persona({"eval", "recommend", "--train", dir.file("train.tsv"), "--preset", "movielens_100k"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--test"), std::string::npos) << r.err;
  r = run_persona({"eval", "recommend", "--train", dir.file("train.tsv"), "--test", dir.file("test.tsv")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("mapping"), std::string::npos) << r.err;
}

TEST(RecommendCli, BadInputGetsClearErrors) {
  test::TempDir dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  const std::string config = dir.file("shop.toml"), models = dir.file("models");
  ASSERT_EQ(run_persona({"ingest", "--config", config, "-q"}).exit_code, 0);
  auto r = run_persona({"recommend", "U000001", "--config", config, "--models", models});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("recommend.model"), std::string::npos) << r.err;
  r = run_persona({"eval", "recommend", "--config", config, "--split", "2030-01-01", "--method", "popularity"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("split"), std::string::npos) << r.err;
  r = run_persona({"train", "recommend", "--config", config, "--models", models, "--method", "ease", "--before", "1990-01-01"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no interactions"), std::string::npos) << r.err;
  ASSERT_EQ(run_persona({"train", "recommend", "--config", config, "--models", models, "--method", "popularity", "-q"}).exit_code, 0);
  r = run_persona({"similar", "no-such-item", "--models", models});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no-such-item"), std::string::npos) << r.err;
  r = run_persona({"recommend", "U000001", "--config", config, "--models", models, "-k", "-3"});
  EXPECT_EQ(r.exit_code, 2);
  r = run_persona({"eval"});  // neither a file nor the subcommand
  EXPECT_NE(r.exit_code, 0);
}

}  // namespace
}  // namespace persona
