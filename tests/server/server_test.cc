// The HTTP server in-process, over the sample shop (made once with the persona binary): the
// OpenAPI document against the routes, keys and scopes, problems for bad requests, live and
// idempotent ingest, the assistant, DP, erasure, metrics, static files, graceful stop.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "persona/core/error.h"
#include "persona/privacy/access.h"
#include "persona/server/server.h"
#include "persona/store/store.h"
#include "support/test_support.h"
#include "running_server.h"

#include <httplib.h>  // after the persona headers (its <resolv.h> defines _res, which Eigen uses)

namespace persona::server {
namespace {

using namespace testing;
namespace fs = std::filesystem;
using test::run_persona;

TEST(Server, TheOpenApiDocumentHasExactlyTheRoutes) {
  Running s;
  const auto& doc = Server::openapi();
  EXPECT_EQ(doc["openapi"].get<std::string>().rfind("3.", 0), 0u);
  std::set<std::pair<std::string, std::string>> documented, served;
  for (const auto& [path, ops] : doc["paths"].items())
    for (const auto& [method, op] : ops.items()) {
      std::string m = method;
      for (auto& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.insert({m, path});
      EXPECT_TRUE(op.contains("x-scopes")) << m << " " << path;
      EXPECT_TRUE(op.contains("responses")) << m << " " << path;
    }
  for (const auto& r : s.server().routes()) served.insert(r);
  EXPECT_EQ(documented, served);
  // Served at /v1/openapi.json, the same document, without a key.
  const auto r = s.client().Get("/v1/openapi.json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(nlohmann::json::parse(r->body), doc);
  // And the copy in docs/ is the one built in.
  EXPECT_EQ(nlohmann::json::parse(test::read_file(std::string(PERSONA_SOURCE_DIR) + "/docs/openapi.json")), doc);
}

TEST(Server, KeysScopesAndProblems) {
  Running s;
  EXPECT_EQ(s.client().Get("/healthz")->status, 200);
  EXPECT_EQ(s.client().Get("/readyz")->status, 200);
  expect_problem(s.client().Get("/v1/stats"), 401, "API key");
  auto bad = s.client();
  bad.set_bearer_token_auth("pk_nope_nothing");
  expect_problem(bad.Get("/v1/stats"), 401, "not valid");
  expect_problem(s.client("service").Get("/v1/stats"), 403, "service");
  EXPECT_EQ(s.client("analyst").Get("/v1/stats")->status, 200);
  expect_problem(s.client("analyst").Get("/v1/users/U000001/recommendations"), 403);
  // A user-role key: its own user only.
  EXPECT_EQ(s.client("user").Get("/v1/users/U000002/recommendations")->status, 200);
  expect_problem(s.client("user").Get("/v1/users/U000003/recommendations"), 403, "another user");
  EXPECT_EQ(s.client("user").Post("/v1/chat", R"({"user":"U000002","message":"hello"})", "application/json")->status, 200);
  expect_problem(s.client("user").Post("/v1/chat", R"({"user":"U000003","message":"hello"})", "application/json"), 403);
  expect_problem(s.client("service").Delete("/v1/users/U000001"), 403);
  // Bad requests.
  expect_problem(s.client("admin").Get("/v1/no/such/route"), 404, "no route");
  expect_problem(s.client("admin").Post("/v1/analyze", "{not json", "application/json"), 400, "not valid JSON");
  expect_problem(s.client("admin").Post("/v1/analyze", R"({"text": 42})", "application/json"), 400, "wrong type");
  expect_problem(s.client("admin").Get("/v1/users/U000001/recommendations?k=many"), 400, "not a number");
  expect_problem(s.client("admin").Get("/v1/users/U000001/recommendations?k=5000"), 400, "1000");
  expect_problem(s.client("admin").Post("/v1/stats/dp", R"({"statistic":"median"})", "application/json"), 400, "unknown statistic");
  expect_problem(s.client("admin").Post("/v1/events", std::string(17u << 20, 'x'), "application/json"), 413);
  // The server is still up and answering.
  EXPECT_EQ(s.client("admin").Get("/v1/stats")->status, 200);
  // The access log names routes and key ids, never user ids or secrets.
  s.stop();
  const std::string log = test::read_file(s.log_path());
  EXPECT_NE(log.find("/v1/users/{id}/recommendations"), std::string::npos);
  EXPECT_EQ(log.find("U000003"), std::string::npos);
  for (const auto& [role, secret] : shop().key) EXPECT_EQ(log.find(secret), std::string::npos) << role;
}

TEST(Server, RateLimitsPerKey) {
  ServerOptions o;
  o.rate_per_s = 1;
  o.burst = 3;
  Running s(o);
  int ok = 0;
  auto c = s.client("analyst");
  for (int i = 0; i < 5; ++i) {
    const auto r = c.Get("/v1/stats");
    ok += r && r->status == 200;
  }
  EXPECT_EQ(ok, 3);
  const auto last = c.Get("/v1/stats");
  expect_problem(last, 429, "rate");
  EXPECT_FALSE(last->get_header_value("Retry-After").empty());
  EXPECT_EQ(s.client("admin").Get("/v1/stats")->status, 200);  // another key has its own bucket
}

TEST(Server, IngestIsLiveIdempotentAndAccountsForEveryRecord) {
  Running s;
  auto c = s.client("service");
  // A new user: a stranger's recommendations first (and cached), then theirs once events arrive.
  const auto before = json_of(c.Get("/v1/users/ULIVE1/recommendations?k=5"));
  ASSERT_TRUE(before.contains("recommendations")) << before.dump();
  EXPECT_EQ(before["history_items"], 0);
  const std::string batch = R"([
    {"user":"ULIVE1","item":"P00007","type":"purchase","quantity":2,"value":9.5,"timestamp":"2025-12-01T10:00:00Z"},
    {"user":"ULIVE1","item":"P00008","type":"purchase","timestamp":1764590400},
    {"user":"U000005","item":"P00009","type":"teleport","timestamp":"2025-12-01T10:00:00Z"},
    {"user":"U000005","type":"view","timestamp":"2025-12-01T10:00:00Z"},
    {"user":"U000005","item":"P00009","type":"view","timestamp":"yesterday"},
    {"user":"U000005","item":"P00009","type":"view","timestamp":"2025-12-01T10:00:00Z","colour":"red"},
    [1, 2]
  ])";
  const auto r = json_of(c.Post("/v1/events", batch, "application/json"));
  EXPECT_EQ(r["accepted"], 2) << r.dump();
  EXPECT_EQ(r["rejected"], 5);
  const std::vector<std::pair<int, std::string>> expected = {
      {2, "type"}, {3, "item"}, {4, "timestamp"}, {5, "colour"}, {6, "(record)"}};
  ASSERT_EQ(r["errors"].size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(r["errors"][i]["index"], expected[i].first);
    EXPECT_EQ(r["errors"][i]["field"], expected[i].second);
    EXPECT_FALSE(r["errors"][i]["reason"].get<std::string>().empty());
  }
  EXPECT_EQ(r["profiles"], "updating") << "profiles are refreshed in a moment";
  // Live: the recommendations see the new purchases at once.
  const auto after = json_of(c.Get("/v1/users/ULIVE1/recommendations?k=5"));
  EXPECT_EQ(after["history_items"], 2) << after.dump();
  EXPECT_NE(after["recommendations"], before["recommendations"]);
  // The same batch again is not ingested twice.
  const auto again = json_of(c.Post("/v1/events", batch, "application/json"));
  EXPECT_EQ(again["status"], "already ingested");
  EXPECT_EQ(json_of(c.Get("/v1/users/ULIVE1/recommendations?k=5"))["history_items"], 2);
  // Their profile follows within moments (one refresh for a burst of requests).
  int status = 0;
  for (int i = 0; i < 200 && status != 200; ++i) {
    status = c.Get("/v1/users/ULIVE1/profile")->status;
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(status, 200) << "the new user's profile was built";
  EXPECT_EQ(json_of(c.Get("/v1/users/ULIVE1/profile"))["rfm"]["frequency"], 2);
  // JSON Lines too; nothing usable is a 422 with the reasons; not JSON is a 400.
  EXPECT_EQ(json_of(c.Post("/v1/users", "{\"id\":\"UNEW1\",\"age\":30}\n{\"id\":\"UNEW2\",\"consent_analytics\":false}\n",
                           "application/x-ndjson"))["accepted"],
            2);
  expect_problem(c.Post("/v1/texts", R"([{"kind":"review"}])", "application/json"), 422, "body");
  expect_problem(c.Post("/v1/items", "[{\"id\":", "application/json"), 400, "not valid JSON");
  // Texts are stored without their PII.
  ASSERT_EQ(json_of(c.Post("/v1/texts", R"([{"user":"U000005","kind":"review","body":"call me on 13912345678"}])",
                           "application/json"))["accepted"],
            1);
  auto store = store::open_sqlite_store(shop().store);
  bool redacted = false;
  store->for_each_text(store::Use::Any, [&](const Text& t) {
    EXPECT_EQ(t.body.find("13912345678"), std::string::npos);
    redacted = redacted || t.body == "call me on [PHONE]";
  });
  EXPECT_TRUE(redacted);
  // Every rejected record is in the reject log with its reason.
  int64_t rejects = 0;
  for (const auto& ingest : store->ingests())
    if (ingest.source == "api:events") store->for_each_reject(ingest.id, [&](const store::RejectRow&) { ++rejects; });
  EXPECT_EQ(rejects, 5);
}

TEST(Server, AssistantAnalysisSegmentsDpModelsAndErasure) {
  Running s;
  const auto chat = json_of(s.client("service").Post("/v1/chat", R"({"user":"U000001","message":"where is my last order?"})",
                                                      "application/json"));
  EXPECT_EQ(chat["intent"], "last_order") << chat.dump();
  const std::string session = chat["session"];
  EXPECT_EQ(session.size(), 33u) << "s and 128 random bits in hex: " << session;
  EXPECT_EQ(session.substr(1).find_first_not_of("0123456789abcdef"), std::string::npos) << session;
  const auto other = json_of(s.client("service").Post("/v1/chat", R"({"user":"U000001","message":"hello"})", "application/json"));
  EXPECT_NE(other["session"], chat["session"]) << "a new conversation, a new session";
  const auto next = json_of(s.client("service").Post(
      "/v1/chat", nlohmann::json{{"user", "U000001"}, {"session", chat["session"]}, {"message", "I want a human"}}.dump(),
      "application/json"));
  EXPECT_TRUE(next["handoff"].get<bool>()) << next.dump();
  const auto analysis = json_of(s.client("service").Post("/v1/analyze", R"({"text":"物流太慢了，很失望"})", "application/json"));
  EXPECT_EQ(analysis["language"], "zh") << analysis.dump();
  EXPECT_TRUE(json_of(s.client("analyst").Get("/v1/segments")).contains("segments"));
  const auto dp = json_of(s.client("analyst").Post("/v1/stats/dp", R"({"statistic":"count","epsilon":0.5})", "application/json"));
  EXPECT_NEAR(dp["result"]["value"].get<double>(), 300, 60) << dp.dump();
  EXPECT_LT(dp["budget_left"].get<double>(), 1.0);
  EXPECT_EQ(json_of(s.client("analyst").Get("/v1/models"))["recommend"]["items"].get<int>() > 0, true);
  EXPECT_EQ(s.client("admin").Get("/v1/users/U000009/profile")->status, 200);
  const auto erasing = s.client("admin").Delete("/v1/users/U000009");
  ASSERT_TRUE(erasing);
  EXPECT_EQ(erasing->status, 202) << "answered when the data is gone, the recommender retrains after";
  const auto erased = json_of(erasing);
  EXPECT_EQ(erased["status"], "retraining") << erased.dump();
  EXPECT_TRUE(erased["found"].get<bool>()) << erased.dump();
  EXPECT_GT(erased["deleted"]["events"].get<int>(), 0);
  EXPECT_EQ(erased.dump().find("U000009"), std::string::npos) << "the answer does not name them";
  expect_problem(s.client("admin").Get("/v1/users/U000009/profile"), 404);
  const auto recs = json_of(s.client("admin").Get("/v1/users/U000009/recommendations"));
  EXPECT_EQ(recs["history_items"], 0) << "served as a stranger from now on";
  expect_problem(s.client("admin").Delete("/v1/users/U000009"), 404);
  // Its status: retraining, then complete with the model retrained; only for erasure keys.
  const std::string url = erased["status_url"];
  expect_problem(s.client("analyst").Get(url.c_str()), 403);
  nlohmann::json status = erased;
  for (int i = 0; i < 600 && status["status"] == "retraining"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = json_of(s.client("admin").Get(url.c_str()));
  }
  EXPECT_EQ(status["status"], "complete") << status.dump();
  EXPECT_EQ(status["models_retrained"].size(), 1u) << status.dump();
  EXPECT_TRUE(status["models_pending"].empty()) << status.dump();
  expect_problem(s.client("admin").Get("/v1/erasures/e0000"), 404);
}

TEST(Server, DashboardAggregatesFollowIngestAndErasure) {
  // Kept between requests. After an ingest the earlier answer is served at once while a fresh one
  // is computed in the background (it follows within seconds); after an erasure the answer is
  // never the earlier one.
  Running s;
  auto analyst = s.client("analyst");
  const auto before = json_of(analyst.Get("/v1/stats"));
  const auto day_before = json_of(analyst.Get("/v1/stats/timeline?days=3660"));
  EXPECT_EQ(json_of(analyst.Get("/v1/stats")), before) << "the kept answer";
  // Every RFM segment's users page, kept too: each must follow the data like the rest.
  auto service = s.client("service");
  auto members_of = [&](const std::string& segment) {
    return json_of(service.Get(("/v1/segments/" + httplib::detail::encode_query_param(segment) + "/users?limit=1000").c_str()));
  };
  const auto rfm_before = json_of(analyst.Get("/v1/segments/rfm"));
  for (const auto& seg : rfm_before["rfm_segments"]) members_of(seg["segment"]);
  const auto r = json_of(s.client("service").Post(
      "/v1/events",
      R"([{"user":"UAGG1","item":"P00007","type":"purchase","value":10,"timestamp":"2025-12-01T10:00:00Z"},
          {"user":"UAGG1","item":"P00008","type":"view","timestamp":"2025-12-01T11:00:00Z"}])",
      "application/json"));
  ASSERT_EQ(r["accepted"], 2) << r.dump();
  auto after = json_of(analyst.Get("/v1/stats"));
  for (int i = 0; i < 300 && after["events"] == before["events"]; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = json_of(analyst.Get("/v1/stats"));
  }
  EXPECT_EQ(after["events"].get<int64_t>(), before["events"].get<int64_t>() + 2) << after.dump();
  EXPECT_EQ(after["users"].get<int64_t>(), before["users"].get<int64_t>() + 1);
  EXPECT_NEAR(after["revenue"].get<double>(), before["revenue"].get<double>() + 10, 1e-6);
  auto timeline = json_of(analyst.Get("/v1/stats/timeline?days=3660"));
  for (int i = 0; i < 300 && timeline == day_before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    timeline = json_of(analyst.Get("/v1/stats/timeline?days=3660"));
  }
  EXPECT_NE(timeline, day_before);
  // The new buyer's profile is built live; their RFM segment's page lists them within seconds.
  std::string segment;
  for (int i = 0; i < 300 && segment.empty(); ++i) {
    const auto p = service.Get("/v1/users/UAGG1/profile");
    if (p && p->status == 200) segment = nlohmann::json::parse(p->body)["rfm"]["segment"];
    else std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(segment.empty()) << "no profile for the new buyer";
  auto listed = [&] {
    const auto page = members_of(segment);
    for (const auto& u : page["users"])
      if (u["user"] == "UAGG1") return true;
    return false;
  };
  bool found = listed();
  for (int i = 0; i < 300 && !found; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    found = listed();
  }
  EXPECT_TRUE(found) << "the segment \"" << segment << "\" page follows the data";
  const auto erased = s.client("admin").Delete("/v1/users/UAGG1");
  ASSERT_TRUE(erased);
  ASSERT_LT(erased->status, 300) << erased->body;
  const auto gone = json_of(analyst.Get("/v1/stats"));
  EXPECT_EQ(gone["events"], before["events"]) << gone.dump();
  EXPECT_NEAR(gone["revenue"].get<double>(), before["revenue"].get<double>(), 1e-6);
  EXPECT_FALSE(listed()) << "after an erasure, never the earlier answer";
}

TEST(Server, DashboardRoutesAnswerWithTheShopsNumbers) {
  Running s;
  const auto stats = json_of(s.client("analyst").Get("/v1/stats"));
  const auto timeline = json_of(s.client("analyst").Get("/v1/stats/timeline?days=3660"));
  ASSERT_EQ(timeline["days"].size(), 3660u) << timeline.dump().substr(0, 300);
  double events = 0, revenue = 0;
  for (const auto& [type, series] : timeline["events"].items())
    for (const auto& v : series) events += v.get<double>();
  for (const auto& v : timeline["revenue"]) revenue += v.get<double>();
  EXPECT_EQ(events, stats["events"].get<double>()) << "every event is on some day";
  EXPECT_NEAR(revenue, stats["revenue"].get<double>(), 0.01 * timeline["days"].size());
  EXPECT_GT(timeline["funnel"][2]["users"].get<int>(), 0);
  EXPECT_EQ(json_of(s.client("analyst").Get("/v1/stats/timeline?days=30"))["days"].size(), 30u);
  expect_problem(s.client("analyst").Get("/v1/stats/timeline?days=0"), 400, "days");

  const auto rfm = json_of(s.client("analyst").Get("/v1/segments/rfm"));
  int64_t in_cells = 0;
  for (const auto& c : rfm["cells"]) in_cells += c["users"].get<int64_t>();
  EXPECT_GT(rfm["profiles"].get<int64_t>(), 0);
  EXPECT_EQ(in_cells, rfm["profiles"].get<int64_t>());

  // A segment's members, most valuable first; every profiled user is in exactly one RFM segment.
  int64_t members = 0;
  for (const auto& seg : rfm["rfm_segments"]) {
    const std::string name = seg["segment"];
    const auto page = json_of(s.client("service").Get(("/v1/segments/" + httplib::detail::encode_query_param(name) + "/users?limit=1000").c_str()));
    EXPECT_EQ(page["total"].get<int64_t>(), seg["users"].get<int64_t>()) << name;
    members += page["total"].get<int64_t>();
    for (size_t i = 0; i < page["users"].size(); ++i) {
      EXPECT_EQ(page["users"][i]["rfm_segment"], name);
      if (i) EXPECT_GE(page["users"][i - 1]["monetary"].get<double>(), page["users"][i]["monetary"].get<double>());
    }
  }
  EXPECT_EQ(members, rfm["profiles"].get<int64_t>());
  const auto learned = json_of(s.client("service").Get("/v1/segments/0/users?limit=2&offset=1"));
  EXPECT_LE(learned["users"].size(), 2u);
  EXPECT_EQ(learned["users"][0]["segment"], 0);
  expect_problem(s.client("service").Get("/v1/segments/nobody/users"), 404, "nobody");
  expect_problem(s.client("service").Get("/v1/segments/0/users?limit=0"), 400, "limit");
  expect_problem(s.client("analyst").Get("/v1/segments/0/users"), 403);  // user ids: not an analyst's

  // Categories with their Chinese names, at every level of the path.
  const auto categories = json_of(s.client("analyst").Get("/v1/categories"))["categories"];
  ASSERT_FALSE(categories.empty());
  int with_zh = 0, top_level_zh = 0;
  for (const auto& c : categories) {
    if (!c.contains("name_zh")) continue;
    ++with_zh;
    const std::string name = c["name"];
    const std::string zh = c["name_zh"];
    EXPECT_EQ(std::count(name.begin(), name.end(), '>'), std::count(zh.begin(), zh.end(), '>')) << name << " / " << zh;
    top_level_zh += name.find(" > ") == std::string::npos;
  }
  EXPECT_EQ(with_zh, static_cast<int>(categories.size())) << "the sample shop names every category in Chinese";
  EXPECT_GT(top_level_zh, 0);

  const auto mine = json_of(s.client("user").Get("/v1/users/U000002/events?limit=5"));
  EXPECT_GT(mine["total"].get<int>(), 0) << mine.dump();
  for (const auto& e : mine["events"])  // names, not only ids: the sample shop titles every item
    if (!e.value("item", "").empty()) EXPECT_FALSE(e.value("title", "").empty()) << e.dump();
  const auto recs = json_of(s.client("service").Get("/v1/users/U000002/recommendations?k=5"));
  ASSERT_FALSE(recs["recommendations"].empty()) << recs.dump();
  bool some_zh = false;
  for (const auto& r : recs["recommendations"]) {
    EXPECT_FALSE(r.value("title", "").empty()) << r.dump();
    some_zh = some_zh || !r.value("title_zh", "").empty();
  }
  EXPECT_TRUE(some_zh) << "the catalogue's Chinese names come along: " << recs.dump();
  ASSERT_FALSE(mine["events"].empty());
  EXPECT_LE(mine["events"].size(), 5u);
  for (size_t i = 1; i < mine["events"].size(); ++i)
    EXPECT_GE(mine["events"][i - 1]["time"].get<std::string>(), mine["events"][i]["time"].get<std::string>()) << "newest first";
  EXPECT_TRUE(mine["consent"]["personalisation"].get<bool>());
  expect_problem(s.client("user").Get("/v1/users/U000001/events"), 403);

  const auto demand = json_of(s.client("analyst").Get("/v1/demand?weeks=8"));
  EXPECT_EQ(demand["weeks"].size(), 8u) << demand.dump().substr(0, 300);
  const int last_week_days = demand["last_week_days"];  // the newest week ends with the data
  EXPECT_GE(last_week_days, 1);
  EXPECT_LE(last_week_days, 7);
  EXPECT_GT(demand["texts"].get<int>(), 0);
  EXPECT_FALSE(demand["keywords"].empty());
  EXPECT_FALSE(demand["sentiment"].empty());
  EXPECT_EQ(json_of(s.client("analyst").Get("/v1/demand?weeks=8")), demand) << "the cached answer is the same";

  const auto models = json_of(s.client("analyst").Get("/v1/models"));
  bool listed = false;
  for (const auto& f : models["files"]) listed = listed || (f["file"] == "recommend.model" && f["kind"] == "recommender");
  EXPECT_TRUE(listed) << models["files"].dump();
  EXPECT_FALSE(models["history"].empty()) << "training notes every model it writes";

  expect_problem(s.client("analyst").Get("/v1/privacy"), 403);
  const auto privacy = json_of(s.client("admin").Get("/v1/privacy"));
  EXPECT_TRUE(privacy["budgets"].is_array()) << privacy.dump();
  EXPECT_TRUE(privacy.contains("sealed"));
  EXPECT_TRUE(privacy["consent_refused"].contains("analytics"));
}

TEST(Server, RetrainRunsInTheBackgroundAndSwapsTheModelIn) {
  Running s;
  expect_problem(s.client("analyst").Post("/v1/models/recommend/retrain", "", "application/json"), 403);
  const auto before = json_of(s.client("admin").Get("/v1/models"))["history"].size();
  const auto started = s.client("admin").Post("/v1/models/recommend/retrain", "", "application/json");
  ASSERT_TRUE(started);
  EXPECT_EQ(started->status, 202) << started->body;
  // Requests go on while it trains; the new model is written (and noted) when it is ready.
  size_t after = before;
  for (int i = 0; i < 600 && after == before; ++i) {
    EXPECT_EQ(s.client("service").Get("/v1/users/U000003/recommendations?k=3")->status, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = json_of(s.client("admin").Get("/v1/models"))["history"].size();
  }
  EXPECT_EQ(after, before + 1) << "the retrained model was written";
  s.stop();  // waits for the swap
  Running again;
  const auto models = json_of(again.client("admin").Get("/v1/models"));
  EXPECT_EQ(models["recommend"]["retrain_error"], "") << models.dump();
  EXPECT_EQ(json_of(again.client("service").Get("/v1/users/U000003/recommendations?k=3"))["recommendations"].size(), 3u);
}

TEST(Server, MetricsCountEveryRoute) {
  Running s;
  for (int i = 0; i < 3; ++i) s.client("analyst").Get("/v1/stats");
  s.client().Get("/v1/stats");
  const auto r = s.client("analyst").Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find(R"(persona_http_requests_total{method="GET",route="/v1/stats",status="200"} 3)"), std::string::npos)
      << r->body;
  EXPECT_NE(r->body.find(R"(persona_http_requests_total{method="GET",route="/v1/stats",status="401"} 1)"), std::string::npos);
  EXPECT_NE(r->body.find(R"(persona_http_request_duration_seconds_bucket{method="GET",route="/v1/stats",le="+Inf"} 4)"),
            std::string::npos);
  EXPECT_NE(r->body.find("persona_recommend_model_loaded 1"), std::string::npos);
  EXPECT_NE(r->body.find(R"(persona_model_file_time_seconds{model="recommend",method="item-knn"})"), std::string::npos);
}

// A client that sends half a request and stops is cut off after the read timeout; everyone else
// is served meanwhile.
TEST(Server, ASlowClientIsCutOffAndOthersAreServed) {
  ServerOptions o;
  o.read_timeout_s = 1;
  Running s(o);
  const int sock = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(s.port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(sock, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string half = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(send(sock, half.data(), half.size(), 0), static_cast<ssize_t>(half.size()));
  EXPECT_EQ(s.client().Get("/healthz")->status, 200);  // served while the slow one hangs
  timeval wait{5, 0};
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  char buffer[512];
  const auto t0 = std::chrono::steady_clock::now();
  const ssize_t n = recv(sock, buffer, sizeof buffer, 0);  // 0: closed, or an error answer before it
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(waited, 4.0) << "cut off by the read timeout, not left hanging";
  if (n > 0) {  // an answer first: a 4xx
    EXPECT_EQ(std::string(buffer, static_cast<size_t>(n)).rfind("HTTP/1.1 4", 0), 0u) << std::string(buffer, static_cast<size_t>(n));
  }
  close(sock);
}

TEST(Server, StaticFilesStayInsideTheirFolder) {
  test::TempDir web;
  fs::create_directories(web.file("site"));
  test::write_file(web.file("site/index.html"), "<h1>dashboard</h1>");
  test::write_file(web.file("site/dashboard-files.txt"), "index.html\n");
  // A build tree puts more than the dashboard in its folder: only the listed files are served.
  test::write_file(web.file("site/cmake_install.cmake"), "# /home/someone/build/paths");
  test::write_file(web.file("secret.txt"), "the secret");
  ServerOptions o;
  o.web_dir = web.file("site");
  Running s(o);
  const auto index = s.client().Get("/index.html");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->body, "<h1>dashboard</h1>");
  EXPECT_EQ(s.client().Get("/")->body, "<h1>dashboard</h1>");
  for (const char* path : {"/cmake_install.cmake", "/dashboard-files.txt", "/site/index.html"}) {
    const auto r = s.client().Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(r->body.find("/home/someone"), std::string::npos) << path;
  }
  // A folder without the build's list of files is not a dashboard.
  fs::remove(web.file("site/dashboard-files.txt"));
  EXPECT_THROW(Running{o}, Error);
  for (const char* path : {"/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/site/../../secret.txt"}) {
    const auto r = s.client().Get(path);
    if (r) {
      EXPECT_GE(r->status, 400) << path;
      EXPECT_EQ(r->body.find("the secret"), std::string::npos) << path;
    }
  }
}

TEST(Server, ServesHttpsWithACertificate) {
  test::TempDir tls;
  const std::string cert = tls.file("cert.pem"), key = tls.file("key.pem");
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " + cert +
                          " -days 1 -subj /CN=localhost >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "no openssl command to make a certificate";
  ServerOptions o;
  o.port = 0;
  o.store_path = shop().store;
  o.models_dir = shop().models;
  o.api_keys_path = shop().api_keys;
  o.tls_cert = cert;
  o.tls_key = key;
  o.access_log = "";
  Server server(o);
  const int port = server.bind();
  std::thread t([&] { server.run(); });
  httplib::SSLClient c("127.0.0.1", port);
  c.enable_server_certificate_verification(false);
  c.set_bearer_token_auth(shop().key.at("analyst").c_str());
  const auto r = c.Get("/v1/stats");
  EXPECT_TRUE(r);
  if (r) {
    EXPECT_EQ(r->status, 200);
  }
  httplib::Client plain("127.0.0.1", port);
  const auto p = plain.Get("/healthz");
  EXPECT_TRUE(!p || p->status != 200) << "plain HTTP is not answered on an HTTPS port";
  server.stop();
  t.join();
  o.tls_key = tls.file("missing.pem");
  EXPECT_THROW(Server{o}, Error);
}

// Stopping while batches are being posted: every batch the server said it accepted is in the store.
TEST(Server, StopLosesNoAcceptedEvent) {
  auto s = std::make_unique<Running>();
  std::atomic<int64_t> accepted{0};
  std::atomic<bool> go{true};
  std::vector<std::thread> senders;
  for (int t = 0; t < 3; ++t)
    senders.emplace_back([&, t] {
      auto c = s->client("service");
      for (int b = 0; go && b < 200; ++b) {
        nlohmann::json batch = nlohmann::json::array();
        for (int i = 0; i < 50; ++i)
          batch.push_back({{"user", "UST" + std::to_string(t)}, {"item", "P0000" + std::to_string(1 + i % 9)}, {"type", "view"},
                           {"timestamp", 1764590400 + t * 100000 + b * 100 + i}});
        const auto r = c.Post("/v1/events", batch.dump(), "application/json");
        if (r && r->status == 200) accepted += nlohmann::json::parse(r->body)["accepted"].get<int64_t>();
        if (!r) return;  // the server has gone
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  s->stop();
  go = false;
  for (auto& t : senders) t.join();
  s.reset();
  EXPECT_GT(accepted.load(), 0);
  auto store = store::open_sqlite_store(shop().store);
  const auto events = store->events(store::Use::Any);
  int64_t stored = 0;
  for (size_t i = 0; i < events.size(); ++i)
    stored += events.user_ids[static_cast<size_t>(events.user[i])].rfind("UST", 0) == 0;
  EXPECT_EQ(stored, accepted.load());
}

}  // namespace
}  // namespace persona::server
