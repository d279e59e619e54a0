// What several servers of one PostgreSQL store share: the change log and its feed, the leader
// lock, the privacy-budget ledger (pg_shared.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>

#include "persona/privacy/dp.h"
#include "persona/privacy/keys.h"
#include "persona/store/pg_client.h"
#include "persona/store/pg_shared.h"
#include "persona/store/store.h"
#include "support/pg_server.h"
#include "support/test_support.h"

namespace persona::store {
namespace {

Batch events_of(const std::vector<std::string>& users, int first_line) {
  Batch b;
  int line = first_line;
  for (const auto& u : users) {
    Event e;
    e.user = u;
    e.item = "i1";
    e.timestamp = 1700000000 + line;
    b.events.emplace_back(line++, e);
  }
  return b;
}

// Waits (a few seconds at most) until the feed has returned `n` changes.
std::vector<Change> changes(ChangeFeed& feed, size_t n, ChangeFeed::Update* last = nullptr) {
  std::vector<Change> out;
  for (int i = 0; i < 40 && out.size() < n; ++i) {
    auto u = feed.wait(std::chrono::milliseconds(100));
    for (auto& c : u.changes) out.push_back(std::move(c));
    if (last && (u.reconnected || u.missed)) *last = u;
  }
  return out;
}

TEST(PgShared, EveryWriteThatEmptiesCachesIsHeardInCommitOrderAndReplayedAfterALostConnection) {
  PERSONA_NEED_PG(server);
  const std::string url = server->url(server->create_database());
  auto store = open_store(url);
  ChangeFeed feed(url);
  EXPECT_TRUE(feed.wait(std::chrono::milliseconds(10)).changes.empty()) << "connects: nothing before it is replayed";

  const auto ingest = store->begin_ingest("events", "e.csv", "h", "m");
  store->write_batch(ingest.id, events_of({"u2", "u1", "u2"}, 2), 4);
  auto got = changes(feed, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].what, "data");
  std::sort(got[0].users.begin(), got[0].users.end());
  EXPECT_EQ(got[0].users, (std::vector<std::string>{"u1", "u2"}));

  // The catalogue changes only when an item's attributes do.
  Batch items;
  items.items.push_back({"i1", "Kettle", "Home > Kitchen", "", "", 20.0});
  store->write_batch(ingest.id, items, 5);
  got = changes(feed, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].what, "catalogue");
  store->write_batch(ingest.id, items, 6);  // the same again: data (nobody), no catalogue
  got = changes(feed, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].what, "data");

  // The feed's connection cut: what is written meanwhile comes on reconnection, in order.
  pg::Connection admin(url);
  admin.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'persona change feed'");
  store->write_batch(ingest.id, events_of({"u3"}, 7), 7);
  store->put_profiles({{"u1", "{}"}}, false);
  EXPECT_TRUE(store->erase_user("u2").found);
  ChangeFeed::Update reconnection;
  got = changes(feed, 3, &reconnection);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(reconnection.reconnected);
  EXPECT_FALSE(reconnection.missed);
  EXPECT_EQ(got[0].what, "data");
  EXPECT_EQ(got[0].users, std::vector<std::string>{"u3"});
  EXPECT_EQ(got[1].what, "profiles");
  EXPECT_EQ(got[1].users, std::vector<std::string>{"u1"});
  EXPECT_EQ(got[2].what, "erasure");
  EXPECT_TRUE(got[2].users.empty()) << "the log never names the person erased";
  EXPECT_LT(got[0].seq, got[1].seq);
  EXPECT_LT(got[1].seq, got[2].seq);
  EXPECT_EQ(admin.exec("SELECT count(*) FROM changes WHERE users::text LIKE '%u2%'").int64(0, 0), 0);
  // A batch of more users than a change lists: none listed, "everyone".
  std::vector<std::string> many;
  for (int i = 0; i < 20001; ++i) many.push_back("m" + std::to_string(i));
  store->write_batch(ingest.id, events_of(many, 100), 20100);
  got = changes(feed, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].what, "data");
  EXPECT_TRUE(got[0].everyone);
  EXPECT_TRUE(got[0].users.empty());
  // A model published (by a server's retrain, or the CLI).
  ASSERT_TRUE(store->publish_model("recommend", "model bytes"));
  got = changes(feed, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].what, "model");
}

TEST(PgShared, OneLeaderAtATimeAndAnotherTakesOverWhenItsConnectionDies) {
  PERSONA_NEED_PG(server);
  const std::string url = server->url(server->create_database());
  open_store(url);
  auto a = std::make_unique<LeaderLock>(url);
  LeaderLock b(url);
  EXPECT_TRUE(a->held());
  EXPECT_FALSE(b.held());
  EXPECT_TRUE(a->held()) << "kept while its connection lives";
  pg::Connection(url).exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'persona leader lock' "
                           "AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)");
  EXPECT_FALSE(a->held()) << "its connection was cut: it no longer leads";
  bool taken = false;
  for (int i = 0; i < 50 && !taken; ++i) {
    taken = b.held();
    if (!taken) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(taken);
  EXPECT_FALSE(a->held()) << "and the first does not take it back";
  a.reset();
  EXPECT_TRUE(b.held());
}

TEST(PgShared, TheBudgetHoldsExactlyUnderConcurrentChargesFromSeveralConnections) {
  PERSONA_NEED_PG(server);
  const std::string url = server->url(server->create_database());
  auto first = open_budget_ledger(url);
  first->set_budget("shop", "ana", 1.0);
  std::atomic<int> charged{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      PgBudgetLedger mine(url);  // a connection of its own, as each server has
      for (int i = 0; i < 10; ++i) {
        try {
          mine.spend("shop", "ana", 0.1, "count");
          ++charged;
        } catch (const privacy::BudgetExhausted&) {
          ++refused;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(charged.load(), 10);
  EXPECT_EQ(refused.load(), 30);
  EXPECT_NEAR(first->spent("shop", "ana"), 1.0, 1e-9);
  const auto accounts = first->accounts("shop");
  ASSERT_EQ(accounts.size(), 1u);
  EXPECT_EQ(accounts[0].queries, 10);
  EXPECT_EQ(accounts[0].budget, 1.0);
  EXPECT_EQ(first->budget("shop", "bob"), 1.0) << "the default budget";
  // A file ledger when one is named, whatever the store.
  EXPECT_EQ(dynamic_cast<privacy::JsonlBudgetLedger*>(open_budget_ledger(url, "/nonexistent/ledger.jsonl").get()) != nullptr, true);
}

// A published model: refused when an erasure committed since its training began, checked
// against its checksum when taken, withdrawn when removed.
TEST(PgShared, AModelIsPublishedOnlyIfNoErasureCommittedWhileItTrained) {
  PERSONA_NEED_PG(server);
  const std::string url = server->url(server->create_database());
  auto store = open_store(url);
  const auto ingest = store->begin_ingest("events", "e.csv", "h", "m");
  store->write_batch(ingest.id, events_of({"u1", "u2"}, 2), 3);
  const int64_t before = store->erasure_count();
  EXPECT_TRUE(store->erase_user("u1").found);  // by another server, while this one trained
  EXPECT_FALSE(store->publish_model("recommend", "model bytes v1", before));
  EXPECT_FALSE(store->published_model("recommend", ""));
  EXPECT_TRUE(store->publish_model("recommend", "model bytes v2", store->erasure_count()));
  EXPECT_EQ(store->published_model("recommend", "").value_or(""), "model bytes v2");
  EXPECT_FALSE(store->published_model("recommend", model_checksum("model bytes v2"))) << "the same: nothing to take";
  pg::Connection(url).exec("UPDATE models SET bytes = 'damaged'::bytea");
  EXPECT_THROW(store->published_model("recommend", ""), Error);
  store->withdraw_model("recommend");
  EXPECT_FALSE(store->published_model("recommend", ""));
  // SQLite: nothing published, always "done".
  test::TempDir dir;
  auto file = open_store("sqlite:" + dir.file("s.db"));
  EXPECT_TRUE(file->publish_model("recommend", "x", 12345));
  EXPECT_FALSE(file->published_model("recommend", ""));
}

// A profile write holds the store's write lock only at its end: an ingest goes on while its rows
// are written (here: a transaction holding the profiles' lock and a profile row, as
// put_profiles does before the write lock), and an erasure of that user waits for it instead of
// deadlocking with it.
TEST(PgShared, AnIngestDoesNotWaitForAProfileWriteAndAnErasureWaitsWithoutDeadlock) {
  PERSONA_NEED_PG(server);
  const std::string url = server->url(server->create_database());
  auto store = open_store(url);
  const auto ingest = store->begin_ingest("events", "e.csv", "h", "m");
  store->write_batch(ingest.id, events_of({"u1", "u2"}, 2), 3);
  pg::Connection profiles(url);
  profiles.exec("BEGIN");
  profiles.exec("SELECT pg_advisory_xact_lock(31651020176714853)");
  profiles.exec("INSERT INTO profiles(user_id, profile) VALUES ('u1', '{}')");

  // On threads of their own, so that one that waits (the fault looked for) fails the test
  // instead of hanging it: the profile write's lock is let go below either way.
  auto ingested = std::async(std::launch::async, [&] {
    open_store(url)->write_batch(ingest.id, events_of({"u3"}, 10), 11);
  });
  EXPECT_EQ(ingested.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "the ingest waited for the profiles";

  std::atomic<bool> erased{false};
  std::thread eraser([&] {
    try {
      open_store(url)->erase_user("u1");
      erased = true;
    } catch (const std::exception& e) {  // a deadlock PostgreSQL broke by aborting the erasure
      ADD_FAILURE() << e.what();
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(erased) << "the erasure did not wait for the profile write";
  profiles.exec(kStoreWriteLock);  // the end of a profile write: deadlocks if the erasure took it first
  profiles.exec("COMMIT");
  eraser.join();
  ingested.get();
  EXPECT_TRUE(erased);
  EXPECT_FALSE(store->profile("u1")) << "the erasure ran before the profile's commit";

  // Many at once: profile writes (refused after an erasure), ingests and erasures; none fails.
  std::atomic<int> failures{0}, written{0};
  std::vector<std::thread> writers;
  writers.emplace_back([&] {
    auto s = open_store(url);
    for (int i = 0; i < 30; ++i) try {
        const int64_t before = s->erasure_count();
        std::vector<std::pair<std::string, std::string>> rows;
        for (int u = 0; u < 40; ++u) rows.emplace_back("p" + std::to_string(u), "{}");
        written += s->put_profiles(rows, i % 2 == 0, before) ? 1 : 0;
      } catch (const std::exception& e) {
        ++failures;
        ADD_FAILURE() << e.what();
      }
  });
  writers.emplace_back([&] {
    auto s = open_store(url);
    for (int i = 0; i < 30; ++i) try {
        const auto user = "p" + std::to_string(i);
        s->write_batch(ingest.id, events_of({user}, 100 + i), 101 + i);
        if (i % 3 == 0) s->erase_user(user);
      } catch (const std::exception& e) {
        ++failures;
        ADD_FAILURE() << e.what();
      }
  });
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(written, 0);
}

// The audit log in the database: appends from several connections at once make one chain, which
// verifies; a changed or removed entry is found.
TEST(PgShared, TheAuditLogIsOneChainForEveryWriterAndTamperingIsFound) {
  PERSONA_NEED_PG(server);
  const std::string url = server->url(server->create_database());
  test::TempDir dir;
  const auto keys = privacy::KeyRing::create(dir.file("persona.key"));
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t)
    writers.emplace_back([&, t] {
      auto log = open_audit_log(url, keys);  // a connection of its own, as each server has
      for (int i = 0; i < 10; ++i) log.append("api:k" + std::to_string(t), "dp.count", {{"i", i}});
    });
  for (auto& w : writers) w.join();
  auto log = open_audit_log(url, keys);
  EXPECT_NE(log.path().find("table audit_log"), std::string::npos);
  auto v = log.verify();
  EXPECT_TRUE(v.intact) << v.problem;
  EXPECT_EQ(v.entries, 30);
  pg::Connection admin(url);
  admin.exec("UPDATE audit_log SET entry = replace(entry, 'dp.count', 'dp.sum') WHERE seq = 7");
  v = log.verify();
  EXPECT_FALSE(v.intact);
  EXPECT_EQ(v.first_bad_line, 7);
  admin.exec("UPDATE audit_log SET entry = replace(entry, 'dp.sum', 'dp.count') WHERE seq = 7");
  admin.exec("DELETE FROM audit_log WHERE seq = 30");
  v = log.verify();
  EXPECT_FALSE(v.intact) << "an entry cut off the end is found by the head";
  EXPECT_NE(v.problem.find("cut off"), std::string::npos) << v.problem;
}

// API keys in the database: made on one connection, seen on another at its next refresh, and a
// revocation with them.
TEST(PgShared, ApiKeysInTheDatabaseAreSeenByEveryServerAfterARefresh) {
  PERSONA_NEED_PG(server);
  const std::string url = server->url(server->create_database());
  auto mine = open_api_keys(url, "", privacy::Argon2Cost::minimal());
  auto theirs = open_api_keys(url, "", privacy::Argon2Cost::minimal());
  EXPECT_TRUE(theirs->list().empty());
  const auto made = mine->create("svc", privacy::Role::Service);
  EXPECT_NE(mine->path().find("table api_keys"), std::string::npos);
  theirs->refresh();
  ASSERT_TRUE(theirs->authenticate(made.secret));
  EXPECT_TRUE(theirs->authenticate_cached(made.secret));
  EXPECT_TRUE(mine->revoke(made.key.id));
  EXPECT_TRUE(theirs->authenticate_cached(made.secret)) << "until it looks again";
  theirs->refresh();
  EXPECT_FALSE(theirs->authenticate_cached(made.secret));
  EXPECT_FALSE(theirs->authenticate(made.secret));
  mine->create("u", privacy::Role::User, "alice");
  EXPECT_EQ(theirs->forget_user("alice"), 1u);
  EXPECT_EQ(mine->list().size(), 1u) << "the revoked key stays listed, the user's is gone";
  // A file named wins over the database.
  test::TempDir dir;
  EXPECT_EQ(open_api_keys(url, dir.file("keys.json"))->path(), dir.file("keys.json"));
}

}  // namespace
}  // namespace persona::store
