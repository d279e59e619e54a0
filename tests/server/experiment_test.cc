// Experiments end to end: a shop of its own (the sample shop's generator, with the hidden tastes
// its events were drawn from), two recommenders, a server that splits users between them, and
// simulated users who click what they like. The better model must win; an A/A test must not
// find a difference more often than its level says.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <thread>
#include <map>
#include <random>

#include "persona/experiment/experiments.h"
#include "persona/experiment/report.h"
#include "persona/recommend/recommend_model.h"
#include "persona/server/server.h"
#include "persona/store/store.h"
#include "support/pg_server.h"
#include "support/test_support.h"

#include <httplib.h>  // after the persona headers (its <resolv.h> defines _res, which Eigen uses)

namespace persona::server {
namespace {

using test::run_persona;

// A small shop with an item-kNN recommender (models/recommend.model) and a popularity one
// (models/popularity.model), which ignores tastes: the worse of the two.
struct TwoModelShop {
  test::TempDir dir;
  std::string config = dir.file("shop.toml"), store = dir.file("persona.db"), models = dir.file("models");
  std::map<std::string, std::map<std::string, double>> tastes;  // user -> category -> share
  TwoModelShop() {
    EXPECT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
    EXPECT_EQ(run_persona({"ingest", "--config", config, "-q"}).exit_code, 0);
    EXPECT_EQ(run_persona({"train", "recommend", "--config", config, "--models", models, "--method", "item-knn", "-q"}).exit_code, 0);
    EXPECT_EQ(run_persona({"train", "recommend", "--config", config, "--models", models, "--method", "popularity", "--out",
                           models + "/popularity.model", "-q"})
                  .exit_code,
              0);
    std::ifstream in(dir.file("latent.jsonl"));
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line);
      for (const auto& [category, share] : j["tastes"].items()) tastes[j["user_id"]][category] = share.get<double>();
    }
  }
  // The chance a user clicks an item of this category: a floor, plus their hidden taste for it.
  double click_chance(const std::string& user, const std::string& category) const {
    const auto u = tastes.find(user);
    double taste = 0;
    if (u != tastes.end())
      for (const auto& [c, share] : u->second)
        if (c.rfind(category, 0) == 0 || category.rfind(c, 0) == 0) taste += share;
    return 0.02 + 0.5 * std::min(1.0, taste);
  }
};

TwoModelShop& two_model_shop() {
  static TwoModelShop s;
  return s;
}

struct Served {
  explicit Served(const TwoModelShop& shop, const std::string& store = "", const std::string& models = "") {
    ServerOptions o;
    o.port = 0;
    o.store_path = store.empty() ? shop.store : store;
    o.config_path = shop.config;
    o.models_dir = models.empty() ? shop.models : models;
    o.require_keys = false;
    o.rate_per_s = 1e6;  // the simulation is one caller sending thousands of requests
    o.burst = 1e6;
    server = std::make_unique<Server>(o);
    port = server->bind();
    thread = std::thread([this] { server->run(); });
  }
  ~Served() {
    server->stop();
    thread.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    return c;
  }
  std::unique_ptr<Server> server;
  int port = 0;
  std::thread thread;
};

nlohmann::json post(httplib::Client& c, const std::string& path, const nlohmann::json& body, int status) {
  const auto r = c.Post(path, body.dump(), "application/json");
  EXPECT_TRUE(r);
  if (!r) return {};
  EXPECT_EQ(r->status, status) << path << ": " << r->body;
  return nlohmann::json::parse(r->body, nullptr, false);
}

TEST(Experiments, TheBetterModelWinsOverHttpAndEveryListNamesItsVariant) {
  auto& shop = two_model_shop();
  Served s(shop);
  auto c = s.client();
  // Bad definitions are refused with a reason; a good one starts.
  EXPECT_EQ(post(c, "/v1/experiments", {{"name", "x"}, {"variants", {{"a", "/etc/passwd"}, {"b", "current"}}}}, 400)["detail"]
                .get<std::string>()
                .find("file name in the server's model directory") != std::string::npos,
            true);
  post(c, "/v1/experiments", {{"name", "x"}, {"variants", {{"a", "nope.model"}, {"b", "current"}}}}, 400);
  const auto created =
      post(c, "/v1/experiments", {{"name", "pop-vs-knn"}, {"variants", {{"a", "popularity.model"}, {"b", "current"}}}, {"split", "50/50"}}, 201);
  EXPECT_EQ(created["status"], "running");
  EXPECT_FALSE(created.contains("salt"));
  post(c, "/v1/experiments", {{"name", "second"}, {"variants", {{"a", "current"}, {"b", "current"}}}}, 400);

  std::mt19937_64 rng(7);
  std::map<std::string, std::string> variant_of;
  std::set<std::string> request_ids;
  const int users = 300, days = 5;
  for (int day = 0; day < days; ++day) {
    nlohmann::json feedback = nlohmann::json::array();
    for (int u = 1; u <= users; ++u) {
      const std::string user = fmt::format("U{:06d}", u);
      const auto r = c.Get(fmt::format("/v1/users/{}/recommendations?k=10", user));
      ASSERT_TRUE(r && r->status == 200);
      ASSERT_EQ(r->body.rfind("{\"request_id\":\"", 0), 0u) << r->body.substr(0, 80);
      const auto list = nlohmann::json::parse(r->body);
      EXPECT_EQ(list["experiment"], "pop-vs-knn");
      // Sticky: the same variant every day.
      auto [it, fresh] = variant_of.try_emplace(user, list["variant"].get<std::string>());
      EXPECT_EQ(it->second, list["variant"].get<std::string>()) << user;
      EXPECT_TRUE(request_ids.insert(list["request_id"].get<std::string>()).second) << "request ids are new each time";
      const std::string time = fmt::format("2026-03-{:02d}T12:00:00Z", 1 + day);
      int position = 0;
      for (const auto& item : list["recommendations"]) {
        nlohmann::json f = {{"request_id", list["request_id"]}, {"user", user}, {"item", item["item"]}, {"position", position++},
                            {"time", time}, {"model", list["model"]}};
        f["kind"] = "impression";
        feedback.push_back(f);
        if (std::bernoulli_distribution(shop.click_chance(user, item["category"].get<std::string>()))(rng)) {
          f["kind"] = "click";
          feedback.push_back(f);
          if (std::bernoulli_distribution(0.2)(rng)) {
            f["kind"] = "purchase";
            f["value"] = 25.0;
            feedback.push_back(f);
          }
        }
      }
    }
    const auto stored = post(c, "/v1/feedback", feedback, 200);
    EXPECT_EQ(stored["stored"].get<int64_t>(), static_cast<int64_t>(feedback.size()));
    EXPECT_EQ(stored["rejected"], 0);
    // Sent again (a client's retry): nothing is stored twice.
    EXPECT_EQ(post(c, "/v1/feedback", feedback, 200)["already_stored"].get<int64_t>(), static_cast<int64_t>(feedback.size()));
  }
  const auto r = c.Get("/v1/experiments/pop-vs-knn/report");
  ASSERT_TRUE(r && r->status == 200);
  const auto report = nlohmann::json::parse(r->body);
  EXPECT_EQ(report["days"], days);
  EXPECT_FALSE(report["sample_ratio"]["mismatch"].get<bool>()) << report["sample_ratio"].dump();
  bool ctr = false;
  for (const auto& cmp : report["comparisons"])
    if (cmp["metric"] == "ctr") {
      ctr = true;
      EXPECT_TRUE(cmp["significant"].get<bool>()) << cmp.dump();
      EXPECT_GT(cmp["effect"].get<double>(), 0) << cmp.dump();
    }
  EXPECT_TRUE(ctr) << report.dump();
  EXPECT_NE(report["verdict"].get<std::string>().find("b beats a on click-through"), std::string::npos) << report["verdict"];

  // Promoting b stops the experiment and serves its model to everyone.
  const auto promoted = post(c, "/v1/experiments/pop-vs-knn/promote", {{"variant", "b"}}, 200);
  EXPECT_EQ(promoted["status"], "stopped");
  EXPECT_EQ(promoted["promoted"], "b");
  const auto after = nlohmann::json::parse(c.Get("/v1/users/U000001/recommendations")->body);
  EXPECT_FALSE(after.contains("variant"));
  EXPECT_EQ(after["model"], report["variants"][1]["version"]);
}

TEST(Experiments, BadFeedbackIsNamedAndTheRestIsStored) {
  auto& shop = two_model_shop();
  Served s(shop);
  auto c = s.client();
  const nlohmann::json body = nlohmann::json::array({
      {{"request_id", "r1"}, {"user", "U000001"}, {"item", "P00001"}, {"kind", "impression"}},
      {{"request_id", "r1"}, {"user", "U000001"}, {"item", "P00001"}, {"kind", "stare"}},
      {{"user", "U000001"}, {"item", "P00001"}, {"kind", "click"}},
      {{"request_id", "r1"}, {"user", "U000001"}, {"item", "P00002"}, {"kind", "click"}, {"position", -1}},
      {{"request_id", "r1"}, {"user", "U000001"}, {"item", "P00002"}, {"kind", "purchase"}, {"value", "lots"}},
  });
  const auto answer = post(c, "/v1/feedback", body, 200);
  EXPECT_EQ(answer["stored"], 1);
  EXPECT_EQ(answer["rejected"], 4);
  ASSERT_EQ(answer["errors"].size(), 4u);
  EXPECT_EQ(answer["errors"][0]["field"], "kind");
  EXPECT_EQ(answer["errors"][0]["value"], "stare");
  EXPECT_EQ(answer["errors"][1]["field"], "request_id");
  EXPECT_EQ(answer["errors"][2]["field"], "position");
  EXPECT_EQ(answer["errors"][3]["field"], "value");
  const auto none = post(c, "/v1/feedback", nlohmann::json::array({{{"kind", "click"}}}), 422);
  EXPECT_EQ(none["errors"].size(), 1u);
  post(c, "/v1/feedback", nlohmann::json("not an object"), 422);
  EXPECT_EQ(c.Get("/v1/experiments/none/report")->status, 404);
  // A report through DP is charged to the caller's budget (1 by default): the second one is refused.
  post(c, "/v1/experiments", {{"name", "dp"}, {"variants", {{"a", "current"}, {"b", "current"}}}}, 201);
  EXPECT_EQ(c.Get("/v1/experiments/dp/report?epsilon=-2")->status, 400);
  const auto released = c.Get("/v1/experiments/dp/report?epsilon=0.6");
  ASSERT_TRUE(released);
  EXPECT_EQ(released->status, 200) << released->body;
  EXPECT_EQ(nlohmann::json::parse(released->body)["dp"]["epsilon"], 0.6);
  EXPECT_EQ(c.Get("/v1/experiments/dp/report?epsilon=0.6")->status, 403);
  post(c, "/v1/experiments/dp/stop", nlohmann::json::object(), 200);
  post(c, "/v1/experiments/dp/stop", nlohmann::json::object(), 400);
  EXPECT_EQ(c.Get("/healthz")->status, 200);
}

// The assistant's settings as variants: each user's chats come from their variant (sticky), and
// say so; bad settings are refused; promoting a variant makes its settings everyone's.
TEST(Experiments, AssistantSettingsCanBeVariants) {
  auto& shop = two_model_shop();
  Served s(shop);
  auto c = s.client();
  post(c, "/v1/experiments",
       {{"name", "bad"}, {"surface", "assistant"}, {"variants", {{"a", "current"}, {"b", {{"max_failures", "lots"}}}}}}, 400);
  post(c, "/v1/experiments",
       {{"name", "bad2"}, {"surface", "assistant"}, {"variants", {{"a", "current"}, {"b", "popularity.model"}}}}, 400);
  const auto created = post(
      c, "/v1/experiments",
      {{"name", "patience"}, {"surface", "assistant"}, {"variants", {{"a", "current"}, {"b", {{"max_failures", 0}}}}}}, 201);
  EXPECT_EQ(created["surface"], "assistant");
  // A recommender experiment may run beside it (another surface).
  post(c, "/v1/experiments", {{"name", "lists"}, {"variants", {{"a", "current"}, {"b", "popularity.model"}}}}, 201);
  std::map<std::string, int> handoffs, chats;
  for (int u = 1; u <= 40; ++u) {
    const std::string user = fmt::format("U{:06d}", u);
    const auto reply = post(c, "/v1/chat", {{"user", user}, {"message", "qwzx vbnm plk"}}, 200);
    ASSERT_EQ(reply["experiment"], "patience") << reply.dump();
    ASSERT_EQ(reply["request_id"].get<std::string>().size(), 16u);
    const std::string variant = reply["variant"];
    ++chats[variant];
    handoffs[variant] += reply["handoff"].get<bool>();
    const auto again = post(c, "/v1/chat", {{"user", user}, {"message", "hello"}}, 200);
    EXPECT_EQ(again["variant"], variant) << "sticky";
  }
  ASSERT_GT(chats["a"], 0);
  ASSERT_GT(chats["b"], 0);
  // With no patience (b), the first misunderstanding goes to a person; with the default (a), not.
  EXPECT_EQ(handoffs["b"], chats["b"]);
  EXPECT_EQ(handoffs["a"], 0);
  post(c, "/v1/experiments/patience/promote", {{"variant", "b"}}, 200);
  for (int u = 1; u <= 10; ++u) {
    const auto reply = post(c, "/v1/chat", {{"user", fmt::format("U{:06d}", u)}, {"message", "qwzx vbnm plk"}}, 200);
    EXPECT_FALSE(reply.contains("variant"));
    EXPECT_TRUE(reply["handoff"].get<bool>()) << "the promoted settings answer everyone: " << reply.dump();
  }
  // The recommender experiment still runs.
  EXPECT_EQ(nlohmann::json::parse(c.Get("/v1/users/U000001/recommendations")->body)["experiment"], "lists");
}

// Two servers of one PostgreSQL store, each with a model directory of its own: an experiment
// started on one is served by the other within seconds (the variants' models through the store),
// with the same user in the same variant; feedback sent to either is in the report of both.
TEST(Experiments, EveryServerOfAPostgresStoreServesTheSameSplit) {
  PERSONA_NEED_PG(pg);
  auto& shop = two_model_shop();
  const std::string url = pg->url(pg->create_database());
  test::TempDir dir;
  const std::string models_a = dir.file("models-a"), models_b = dir.file("models-b");
  ASSERT_EQ(run_persona({"ingest", "--config", shop.config, "--store", url, "-q"}).exit_code, 0);
  ASSERT_EQ(run_persona({"train", "recommend", "--store", url, "--models", models_a, "--method", "item-knn", "-q"}).exit_code, 0);
  ASSERT_EQ(run_persona({"train", "recommend", "--store", url, "--models", models_a, "--method", "popularity", "--out",
                         models_a + "/popularity.model", "-q"})
                .exit_code,
            0);
  Served a(shop, url, models_a), b(shop, url, models_b);
  auto ca = a.client(), cb = b.client();
  post(ca, "/v1/experiments", {{"name", "shared"}, {"variants", {{"a", "popularity.model"}, {"b", "current"}}}}, 201);
  nlohmann::json from_b;
  for (int i = 0; i < 100; ++i) {
    from_b = nlohmann::json::parse(cb.Get("/v1/users/U000003/recommendations")->body);
    if (from_b.contains("experiment")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(from_b["experiment"], "shared") << "the other server did not pick the experiment up in 10 s";
  for (int u = 1; u <= 20; ++u) {
    const std::string path = fmt::format("/v1/users/U{:06d}/recommendations", u);
    const auto ja = nlohmann::json::parse(ca.Get(path)->body), jb = nlohmann::json::parse(cb.Get(path)->body);
    EXPECT_EQ(ja["variant"], jb["variant"]);
    EXPECT_EQ(ja["model"], jb["model"]) << "the same variant's model on both servers";
    EXPECT_EQ(ja["recommendations"], jb["recommendations"]);
  }
  post(cb, "/v1/feedback", nlohmann::json::array({{{"request_id", "x1"}, {"user", "U000003"}, {"item", "P00001"}, {"kind", "impression"}}}),
       200);
  const auto report = nlohmann::json::parse(ca.Get("/v1/experiments/shared/report")->body);
  EXPECT_EQ(report["variants"][0]["impressions"].get<double>() + report["variants"][1]["impressions"].get<double>(), 1);
}

// The A/A check over many seeded runs, on the shop's own users, model and tastes: the real
// lists, the real assignment (a fresh salt per run) and the real report, with clicks drawn from
// the hidden tastes, looked at every day. Both variants serve the same model.
TEST(Experiments, AnAaTestFindsADifferenceNoMoreOftenThanItsLevel) {
  auto& shop = two_model_shop();
  const auto model = recommend::RecommendModel::load(shop.models + "/recommend.model");
  auto store = store::open_store(shop.store);
  // Each user's list, once: the chance of a click on each of its items.
  std::vector<std::pair<std::string, std::vector<double>>> lists;
  for (int u = 1; u <= 300; ++u) {
    const std::string user = fmt::format("U{:06d}", u);
    recommend::RecommendRequest q;
    q.k = 10;
    std::vector<double> chances;
    for (const auto& r : model.recommend(model.history(store->history(user)), q)) chances.push_back(shop.click_chance(user, r.category));
    lists.emplace_back(user, chances);
  }
  const int runs = 200;
  int false_positives = 0, compared = 0;
  for (int run = 0; run < runs; ++run) {
    experiment::Experiment e;
    e.name = "aa";
    e.salt = fmt::format("{:064x}", run);  // seeded: the same runs every time
    e.variants = experiment::parse_variants("a=current,b=current", "50/50");
    std::mt19937_64 rng(run);
    std::vector<store::FeedbackTally> tallies;
    for (int day = 0; day < 7; ++day)
      for (const auto& [user, chances] : lists) {
        store::FeedbackTally t{e.variant_of(user).name, user, 20000 + day, static_cast<int64_t>(chances.size())};
        for (double p : chances) t.clicks += std::bernoulli_distribution(p)(rng);
        tallies.push_back(t);
      }
    const auto report = experiment::experiment_report(e, tallies);
    for (const auto& c : report["comparisons"])
      if (c["metric"] == "ctr") {
        ++compared;
        false_positives += c["significant"].get<bool>();
      }
  }
  EXPECT_EQ(compared, runs);
  std::printf("A/A on the shop's tastes, %d runs of 7 daily looks: %d false positives\n", runs, false_positives);
  // alpha 0.05, with room for chance over 200 runs (three standard errors).
  EXPECT_LE(false_positives, static_cast<int>(runs * (0.05 + 3 * std::sqrt(0.05 * 0.95 / runs)))) << false_positives;
}

}  // namespace
}  // namespace persona::server
