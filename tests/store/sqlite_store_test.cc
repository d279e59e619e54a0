#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <set>
#include <thread>

#include "persona/core/error.h"
#include "persona/store/store.h"
#include "support/test_support.h"

namespace persona::store {
namespace {

Batch sample_batch(int first_line, int n) {
  Batch b;
  for (int i = 0; i < n; ++i) {
    Event e;
    e.user = "u" + std::to_string(i % 7);
    e.item = "i" + std::to_string(i % 5);
    e.type = i % 3 == 0 ? EventType::Purchase : EventType::View;
    e.quantity = 2;
    e.value = 1.5;
    e.timestamp = 1700000000 + i;
    e.session = "s" + std::to_string(i / 4);
    b.events.emplace_back(first_line + i, e);
    b.items.push_back({e.item, "Title " + e.item, "Home > Kitchen", "", "", 9.99});
  }
  b.users.push_back({"u1", 30, "F", "Shanghai", std::nullopt});
  b.rejects.push_back({first_line + n, "missing_user", "user", "", "required value is missing", "raw,row", false});
  return b;
}

TEST(SqliteStore, ItemAvailabilityIsKeptUntilTold) {
  test::TempDir dir;
  auto store = open_sqlite_store(dir.file("a.db"));
  EXPECT_EQ(store->schema_version(), 7);
  const auto ingest = store->begin_ingest("items", "i.jsonl", "hash", "map");
  Batch b;
  for (const char* id : {"in", "out", "unknown"}) b.items.push_back({id, "t", "c", "", "", 1.0});
  b.items[0].available = true;
  b.items[1].available = false;
  store->write_batch(ingest.id, b, 4);
  EXPECT_EQ(store->unavailable_items(), std::vector<std::string>{"out"});
  Batch later;  // a later file without availability leaves it; one that says so changes it
  later.items.push_back({"out", "t2", "", "", "", std::nullopt});
  store->write_batch(ingest.id, later, 5);
  EXPECT_EQ(store->unavailable_items(), std::vector<std::string>{"out"});
  later.items[0].available = true;
  later.items.push_back({"in", "", "", "", "", std::nullopt, false});
  store->write_batch(ingest.id, later, 7);
  EXPECT_EQ(store->unavailable_items(), std::vector<std::string>{"in"});
  // The category's other names are kept the same way: a later file that does not give them keeps them.
  Batch named;
  named.items.push_back({"in", "", "Home > Kitchen", "", "", std::nullopt});
  named.items[0].category_aliases = "家居 > 厨房";
  store->write_batch(ingest.id, named, 8);
  later.items.resize(1);
  store->write_batch(ingest.id, later, 9);
  for (const auto& it : store->items())
    EXPECT_EQ(it.category_aliases, it.id == "in" ? "家居 > 厨房" : "") << it.id;
}

TEST(SqliteStore, AVersionOneStoreGainsProfilesOnOpen) {
  test::TempDir dir;
  const auto path = dir.file("v1.db");
  {
    auto store = open_sqlite_store(path);
    const auto ingest = store->begin_ingest("events", "e.csv", "hash", "map");
    store->write_batch(ingest.id, sample_batch(2, 30), 32);
  }
  {  // back to what a version-1 Persona wrote
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "ALTER TABLE items DROP COLUMN category_aliases; ALTER TABLE items DROP COLUMN aliases; DROP TABLE kg_triples; DROP TABLE kg_entities; "
                                 "ALTER TABLE items DROP COLUMN available; "
                                 "DROP TABLE profiles; DROP INDEX texts_user; "
                                 "ALTER TABLE users DROP COLUMN consent_personalisation; "
                                 "ALTER TABLE users DROP COLUMN consent_analytics; PRAGMA user_version=1", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = open_sqlite_store(path);
  EXPECT_EQ(store->schema_version(), 7);
  EXPECT_EQ(store->stats(3).events, 30);
  store->put_profiles({{"u1", "{}"}, {"u2", "{\"a\":1}"}}, true);
  EXPECT_EQ(store->profile("u2"), "{\"a\":1}");
  store->put_profiles({{"u3", "{}"}}, true);  // replace_all drops the others
  EXPECT_FALSE(store->profile("u1"));
  EXPECT_TRUE(store->profile("u3"));
  const auto mark = store->change_mark();
  EXPECT_EQ(mark.event, 30);
  EXPECT_TRUE(store->users_changed_since(mark).empty());
  EXPECT_EQ(store->users_changed_since({}).size(), 7u);
  const auto some = store->events_of({store->events().user_ids[0]});
  EXPECT_GT(some.size(), 0u);
  EXPECT_LT(some.size(), 30u);
  for (auto u : some.user) EXPECT_EQ(u, some.user[0]);
}

TEST(SqliteStore, FreshStoreHasTheCurrentSchemaAndReopens) {
  test::TempDir dir;
  const auto path = dir.file("p.db");
  {
    auto store = open_sqlite_store(path);
    EXPECT_EQ(store->schema_version(), 7);
    const auto ingest = store->begin_ingest("events", "e.csv", "hash", "map");
    store->write_batch(ingest.id, sample_batch(2, 30), 32);
    store->finish_ingest(ingest.id, {{"rows_read", 31}});
  }
  auto again = open_sqlite_store(path);
  const auto s = again->stats(3);
  EXPECT_EQ(s.events, 30);
  EXPECT_EQ(s.users, 7);
  EXPECT_EQ(s.items, 5);
  EXPECT_EQ(s.rejects, 1);
  EXPECT_EQ(s.sessions, 8);
  EXPECT_EQ(s.top_items.size(), 3u);
  EXPECT_EQ(s.top_items[0].detail.substr(0, 6), "Title ");
  EXPECT_EQ(*s.first_event, 1700000000);
  EXPECT_DOUBLE_EQ(s.revenue, 10 * 2 * 1.5);  // 10 purchases of 2 at 1.5
  ASSERT_EQ(s.ingests.size(), 1u);
  EXPECT_EQ(s.ingests[0].status, "complete");
  EXPECT_EQ(s.ingests[0].summary["rows_read"], 31);
}

TEST(SqliteStore, SameFileAndMappingIsOneIngest) {
  test::TempDir dir;
  auto store = open_sqlite_store(dir.file("p.db"));
  const auto a = store->begin_ingest("events", "e.csv", "hash", "map");
  const auto b = store->begin_ingest("events", "copy.csv", "hash", "map");
  const auto c = store->begin_ingest("events", "e.csv", "hash", "other-map");
  EXPECT_EQ(a.id, b.id);
  EXPECT_NE(a.id, c.id);
}

TEST(SqliteStore, ItemsMergeTheirAttributesAndIdsStayDense) {
  test::TempDir dir;
  auto store = open_sqlite_store(dir.file("p.db"));
  const auto ingest = store->begin_ingest("items", "i.csv", "h", "m");
  Batch b;
  b.items.push_back({"A", "First title", "", "", "", std::nullopt});
  b.items.push_back({"A", "", "Toys", "", "", 3.0});
  b.items.push_back({"B", "Bee", "", "", "", std::nullopt});
  store->write_batch(ingest.id, b, 3);
  Batch c;
  c.items.push_back({"A", "", "", "Lego", "", std::nullopt});
  store->write_batch(ingest.id, c, 4);
  const auto prices = store->numeric_values("item.price");
  ASSERT_EQ(prices.size(), 1u);
  EXPECT_EQ(prices[0], 3.0);
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(dir.file("p.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q;
  sqlite3_prepare_v2(db, "SELECT id, title, category, brand FROM items ORDER BY id", -1, &q, nullptr);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(q, 0), 0);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 1)), "First title");
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 2)), "Toys");
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 3)), "Lego");
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(q, 0), 1);
  sqlite3_finalize(q);
  sqlite3_close(db);
}

TEST(SqliteStore, UserAttributesMergeAsJson) {
  test::TempDir dir;
  {
    auto store = open_sqlite_store(dir.file("p.db"));
    const auto ingest = store->begin_ingest("users", "u.csv", "h", "m");
    Batch a;
    a.users.push_back({"U1", 30, "", "", std::nullopt, {{"level", "gold"}, {"channel", "app"}}});
    store->write_batch(ingest.id, a, 1);
    Batch b;
    b.users.push_back({"U1", std::nullopt, "", "", std::nullopt, {{"level", "silver"}}});
    b.users.push_back({"U2", std::nullopt, "", "", std::nullopt, {}});
    store->write_batch(ingest.id, b, 3);
    EXPECT_EQ(store->stats().missing[4].name, "users.attributes");
    EXPECT_EQ(store->stats().missing[4].count, 1);  // U2 has none
  }
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(dir.file("p.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q;
  sqlite3_prepare_v2(db, "SELECT age, json_extract(attrs, '$.level'), json_extract(attrs, '$.channel') FROM users "
                         "WHERE ext_id='U1'", -1, &q, nullptr);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(q, 0), 30);  // kept: the second row had no age
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 1)), "silver");
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 2)), "app");
  sqlite3_finalize(q);
  sqlite3_close(db);
}

TEST(SqliteStore, NotAStoreAndNewerSchemaAreClearErrors) {
  test::TempDir dir;
  test::write_file(dir.file("junk.db"), std::string(4096, 'j'));
  EXPECT_THROW(open_sqlite_store(dir.file("junk.db")), Error);
  {
    auto store = open_sqlite_store(dir.file("new.db"));
  }
  sqlite3* db;
  sqlite3_open(dir.file("new.db").c_str(), &db);
  sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  try {
    open_sqlite_store(dir.file("new.db"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos);
  }
}

TEST(SqliteStore, MetaAndNumericFields) {
  test::TempDir dir;
  auto store = open_sqlite_store(dir.file("p.db"));
  store->put_meta("normalisers", {{"event.value", {{"method", "zscore"}}}});
  EXPECT_EQ((*store->get_meta("normalisers"))["event.value"]["method"], "zscore");
  EXPECT_FALSE(store->get_meta("absent").has_value());
  EXPECT_THROW(store->numeric_values("event.colour"), Error);
}

// A crash in the middle of a batch's transaction leaves nothing of that batch; one right after
// the commit leaves all of it. The crash is injected (PERSONA_CRASH_AT) in a forked child.
void crash_in_child(const std::string& path, const char* when) {
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("PERSONA_CRASH_AT", when, 1);
    auto store = open_sqlite_store(path);
    const auto ingest = store->begin_ingest("events", "e.csv", "hash", "map");
    store->write_batch(ingest.id, sample_batch(2, 10), 11);
    store->write_batch(ingest.id, sample_batch(12, 10), 21);
    store->write_batch(ingest.id, sample_batch(22, 10), 31);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 137);
}

TEST(SqliteStore, CrashBeforeCommitLosesOnlyThatBatch) {
  test::TempDir dir;
  crash_in_child(dir.file("p.db"), "2:before");
  auto store = open_sqlite_store(dir.file("p.db"));
  EXPECT_EQ(store->stats().events, 10);
  EXPECT_EQ(store->ingests()[0].last_line, 11);
  EXPECT_EQ(store->ingests()[0].status, "running");
}

TEST(SqliteStore, CrashAfterCommitKeepsThatBatch) {
  test::TempDir dir;
  crash_in_child(dir.file("p.db"), "2:after");
  auto store = open_sqlite_store(dir.file("p.db"));
  EXPECT_EQ(store->stats().events, 20);
  EXPECT_EQ(store->ingests()[0].last_line, 21);
}


// ---- several connections on one store (a server's pool, a second process) -------------------

Batch users_batch(const std::vector<std::string>& ids) {
  Batch b;
  for (const auto& id : ids) {
    User u;
    u.id = id;
    b.users.push_back(u);
  }
  return b;
}

void expect_dense_unique(Store& store) {
  const auto e = store.events(Use::Any);
  std::set<std::string> ids(e.user_ids.begin(), e.user_ids.end());
  EXPECT_EQ(ids.size(), e.user_ids.size()) << "an id given twice";
  EXPECT_FALSE(ids.count("")) << "a gap in the dense ids";
}

TEST(SqliteStore, EveryConnectionHandsOutTheStoresNextIdNotItsOwn) {
  test::TempDir dir;
  auto a = open_sqlite_store(dir.file("s.db"));
  auto b = open_sqlite_store(dir.file("s.db"));  // its id maps were read now
  const auto ingest = a->begin_ingest("api", "POST", "h", "m");
  a->write_batch(ingest.id, users_batch({"alice", "bob"}), 1);
  b->write_batch(ingest.id, users_batch({"carol"}), 2);  // used to take alice's id: UNIQUE constraint failed
  a->write_batch(ingest.id, users_batch({"dave", "carol"}), 3);
  const auto users = a->users(Use::Any);
  ASSERT_EQ(users.size(), 4u);
  EXPECT_EQ(users[2].id, "carol");
  EXPECT_EQ(users[3].id, "dave");
  expect_dense_unique(*b);
}

// A statement that failed used to keep its old bindings (binding to it failed silently), so every
// later insert of a new user failed the same way until a restart.
TEST(SqliteStore, AFailedWriteLeavesTheNextOneUnharmed) {
  test::TempDir dir;
  auto store = open_sqlite_store(dir.file("s.db"));
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(dir.file("s.db").c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "CREATE TRIGGER poison BEFORE INSERT ON users WHEN NEW.ext_id = 'poison' "
                                "BEGIN SELECT RAISE(ABORT, 'poisoned'); END;", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(raw);
  }
  const auto ingest = store->begin_ingest("api", "POST", "h", "m");
  store->write_batch(ingest.id, users_batch({"first"}), 1);
  EXPECT_THROW(store->write_batch(ingest.id, users_batch({"poison"}), 2), Error);
  store->write_batch(ingest.id, users_batch({"fine"}), 3);
  const auto users = store->users(Use::Any);
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[1].id, "fine");
}

// After an erasure on one connection, the erased id written through another (whose maps still
// named the tombstone's row) starts a new user, and a second erasure finds that one.
TEST(SqliteStore, AnErasedIdWrittenElsewhereStartsANewUser) {
  test::TempDir dir;
  auto a = open_sqlite_store(dir.file("s.db"));
  auto b = open_sqlite_store(dir.file("s.db"));
  const auto ingest = a->begin_ingest("api", "POST", "h", "m");
  Batch first = users_batch({"U1", "U2"});
  first.users[1].attributes = {{"email", "old@example.com"}};
  b->write_batch(ingest.id, first, 1);
  EXPECT_TRUE(a->erase_user("U2").found);
  Batch back = users_batch({"U2"});
  back.users[0].attributes = {{"email", "new@example.com"}};
  b->write_batch(ingest.id, back, 2);  // used to write onto the tombstone "(erased)#1"
  const auto users = a->users(Use::Any);
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users[1].id, "(erased)#1");
  EXPECT_EQ(users[2].id, "U2");
  const auto again = b->erase_user("U2");
  EXPECT_TRUE(again.found);
  EXPECT_NE(std::find(again.traces.begin(), again.traces.end(), "new@example.com"), again.traces.end());
  a.reset();
  b.reset();
  EXPECT_EQ(test::read_file(dir.file("s.db")).find("example.com"), std::string::npos);
}

// Writers on their own connections at once (as two ingests or a server's pool): every batch
// lands, ids stay dense and unique; a new store opened by several at once is made once.
TEST(SqliteStore, ConcurrentWritersOnANewStoreAgree) {
  test::TempDir dir;
  const std::string path = dir.file("s.db");
  constexpr int kWriters = 4, kBatches = 20;
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWriters; ++w)
    writers.emplace_back([&, w] {
      try {
        auto store = open_sqlite_store(path);
        const auto ingest = store->begin_ingest("file", "f.csv", "same-hash", "same-mapping");  // one record for all
        for (int b = 0; b < kBatches; ++b) {
          Batch batch;
          for (int i = 0; i < 5; ++i) {
            Event e;
            e.user = "user-" + std::to_string(w) + "-" + std::to_string(b * 5 + i);
            e.item = "item-" + std::to_string((b + i) % 13);
            e.type = EventType::View;
            e.timestamp = 1700000000 + b;
            batch.events.emplace_back((w * kBatches + b) * 5 + i + 1, e);
          }
          store->write_batch(ingest.id, batch, b);
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++failures;
      }
    });
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto store = open_sqlite_store(path);
  EXPECT_EQ(store->ingests().size(), 1u);
  const auto e = store->events(Use::Any);
  EXPECT_EQ(e.size(), static_cast<size_t>(kWriters * kBatches * 5));
  EXPECT_EQ(e.user_ids.size(), static_cast<size_t>(kWriters * kBatches * 5));
  EXPECT_EQ(e.item_ids.size(), 13u);
  expect_dense_unique(*store);
}

TEST(SqliteStore, GenerationMovesWithEveryChangeAndOnlyThen) {
  // What the server's kept whole-store answers (the dashboard's aggregates) are keyed by: it must
  // move with every kind of change, seen by every connection, and stand still on reads.
  test::TempDir dir;
  const auto path = dir.file("g.db");
  auto writer = open_sqlite_store(path);
  auto reader = open_sqlite_store(path);
  const int64_t g0 = reader->generation();
  const auto ingest = writer->begin_ingest("events", "e.csv", "hash", "map");
  writer->write_batch(ingest.id, sample_batch(2, 10), 12);
  const int64_t g1 = reader->generation();
  EXPECT_GT(g1, g0) << "a written batch";
  reader->stats(3);
  reader->events();
  EXPECT_EQ(reader->generation(), g1) << "reads change nothing";
  writer->put_profiles({{"u1", "{}"}}, false);
  const int64_t g2 = reader->generation();
  EXPECT_GT(g2, g1) << "profiles written (the RFM grid and segments' users read them)";
  writer->erase_user("u1");
  EXPECT_GT(reader->generation(), g2) << "an erasure";
}

}  // namespace
}  // namespace persona::store
