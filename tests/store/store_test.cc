#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <atomic>
#include <cstdlib>
#include <set>
#include <thread>

#include "persona/core/error.h"
#include "persona/privacy/keys.h"
#include "persona/store/store.h"
#include "persona/store/store_copy.h"
#include "store/store_backends.h"
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


using StoreTest = StoreBackendTest;
INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, testing::Values(Backend::Sqlite, Backend::Postgres), backend_name);

TEST_P(StoreTest, ItemAvailabilityIsKeptUntilTold) {
  auto store = open();
  EXPECT_EQ(store->schema_version(), 11);
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
                                 "ALTER TABLE users DROP COLUMN consent_analytics; DROP TABLE stream_batches; DROP TABLE streams; DROP TABLE feedback; PRAGMA user_version=1",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = open_sqlite_store(path);
  EXPECT_EQ(store->schema_version(), 11);
  EXPECT_EQ(store->stats(3).events, 30);
  store->put_profiles({{"u1", "{}"}, {"u2", "{\"a\":1}"}}, true);  // the tables it gained work
  EXPECT_EQ(store->profile("u2"), "{\"a\":1}");
  EXPECT_EQ(store->change_mark().event, 30);
}

TEST_P(StoreTest, FreshStoreHasTheCurrentSchemaAndReopens) {
  {
    auto store = open();
    EXPECT_EQ(store->schema_version(), 11);
    const auto ingest = store->begin_ingest("events", "e.csv", "hash", "map");
    store->write_batch(ingest.id, sample_batch(2, 30), 32);
    store->finish_ingest(ingest.id, {{"rows_read", 31}});
  }
  auto again = open();
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

TEST_P(StoreTest, SameFileAndMappingIsOneIngest) {
  auto store = open();
  const auto a = store->begin_ingest("events", "e.csv", "hash", "map");
  const auto b = store->begin_ingest("events", "copy.csv", "hash", "map");
  const auto c = store->begin_ingest("events", "e.csv", "hash", "other-map");
  EXPECT_EQ(a.id, b.id);
  EXPECT_NE(a.id, c.id);
}

TEST_P(StoreTest, ItemsMergeTheirAttributesAndIdsStayDense) {
  auto store = open();
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
  const auto items = store->items();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].id, "A");
  EXPECT_EQ(items[0].title, "First title");
  EXPECT_EQ(items[0].category, "Toys");
  EXPECT_EQ(items[0].brand, "Lego");
  EXPECT_EQ(items[1].id, "B");
  EXPECT_EQ(first_row("SELECT id FROM items WHERE ext_id='B'")[0], "1");
}

TEST_P(StoreTest, UserAttributesMergeAsJson) {
  {
    auto store = open();
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
  const auto row = first_row("SELECT age, attrs FROM users WHERE ext_id='U1'");
  ASSERT_EQ(row.size(), 2u);
  EXPECT_EQ(row[0], "30");  // kept: the second row had no age
  const auto attrs = nlohmann::json::parse(row[1].value_or("null"));
  EXPECT_EQ(attrs["level"], "silver");
  EXPECT_EQ(attrs["channel"], "app");
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

TEST_P(StoreTest, MetaAndNumericFields) {
  auto store = open();
  store->put_meta("normalisers", {{"event.value", {{"method", "zscore"}}}});
  EXPECT_EQ((*store->get_meta("normalisers"))["event.value"]["method"], "zscore");
  EXPECT_FALSE(store->get_meta("absent").has_value());
  EXPECT_THROW(store->numeric_values("event.colour"), Error);
}

// A crash in the middle of a batch's transaction leaves nothing of that batch; one right after
// the commit leaves all of it. The crash is injected (PERSONA_CRASH_AT) in a forked child.
void crash_in_child(const std::string& location, const char* when) {
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("PERSONA_CRASH_AT", when, 1);
    auto store = open_store(location);
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

TEST_P(StoreTest, CrashBeforeCommitLosesOnlyThatBatch) {
  crash_in_child(location_, "2:before");
  auto store = open();
  EXPECT_EQ(store->stats().events, 10);
  EXPECT_EQ(store->ingests()[0].last_line, 11);
  EXPECT_EQ(store->ingests()[0].status, "running");
}

TEST_P(StoreTest, CrashAfterCommitKeepsThatBatch) {
  crash_in_child(location_, "2:after");
  auto store = open();
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

TEST_P(StoreTest, EveryConnectionHandsOutTheStoresNextIdNotItsOwn) {
  auto a = open();
  auto b = open();  // its id maps were read now
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
TEST_P(StoreTest, AFailedWriteLeavesTheNextOneUnharmed) {
  auto store = open();
  exec_raw("CREATE TRIGGER poison BEFORE INSERT ON users WHEN NEW.ext_id = 'poison' "
           "BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
           "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.ext_id = 'poison' THEN "
           "RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$; "
           "CREATE TRIGGER poison BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION poison()");
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
TEST_P(StoreTest, AnErasedIdWrittenElsewhereStartsANewUser) {
  auto a = open();
  auto b = open();
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
  if (postgres())
    EXPECT_EQ(first_row("SELECT count(*) FROM users WHERE attrs LIKE '%example.com%'")[0], "0");
  else
    EXPECT_EQ(test::read_file(sqlite_path(location_)).find("example.com"), std::string::npos);
}

// Writers on their own connections at once (as two ingests or a server's pool): every batch
// lands, ids stay dense and unique; a new store opened by several at once is made once.
TEST_P(StoreTest, ConcurrentWritersOnANewStoreAgree) {
  if (postgres()) location_ = test::PgServer::shared(nullptr)->url(test::PgServer::shared(nullptr)->create_database(true));
  constexpr int kWriters = 4, kBatches = 20;
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWriters; ++w)
    writers.emplace_back([&, w] {
      try {
        auto store = open();
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
  auto store = open();
  EXPECT_EQ(store->ingests().size(), 1u);
  const auto e = store->events(Use::Any);
  EXPECT_EQ(e.size(), static_cast<size_t>(kWriters * kBatches * 5));
  EXPECT_EQ(e.user_ids.size(), static_cast<size_t>(kWriters * kBatches * 5));
  EXPECT_EQ(e.item_ids.size(), 13u);
  expect_dense_unique(*store);
}

TEST_P(StoreTest, GenerationMovesWithEveryChangeAndOnlyThen) {
  // What the server's kept whole-store answers (the dashboard's aggregates) are keyed by: it must
  // move with every kind of change, seen by every connection, and stand still on reads.
  auto writer = open();
  auto reader = open();
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

// The same rows written in one transaction or in two (as an ingest killed and resumed writes
// them): equal without times, where only the count of write transactions differs.
TEST(StoreDigest, WithoutTimesItIsOfTheRowsNotOfHowManyWritesMadeThem) {
  test::TempDir dir;
  auto whole = open_store("sqlite:" + dir.file("whole.db"));
  auto pieces = open_store("sqlite:" + dir.file("pieces.db"));
  const Batch all = sample_batch(2, 20);
  Batch first, second;  // `all` split after its tenth event
  first.events.assign(all.events.begin(), all.events.begin() + 10);
  first.items.assign(all.items.begin(), all.items.begin() + 10);
  first.users = all.users;
  second.events.assign(all.events.begin() + 10, all.events.end());
  second.items.assign(all.items.begin() + 10, all.items.end());
  second.rejects = all.rejects;
  const auto a = whole->begin_ingest("events", "e.csv", "hash", "map");
  whole->write_batch(a.id, all, 22);
  whole->finish_ingest(a.id, {{"rows", 20}});
  const auto b = pieces->begin_ingest("events", "e.csv", "hash", "map");
  pieces->write_batch(b.id, first, 12);
  pieces->write_batch(b.id, second, 22);
  pieces->finish_ingest(b.id, {{"rows", 20}});
  ASSERT_NE(whole->generation(), pieces->generation());
  EXPECT_EQ(digest(*whole, false), digest(*pieces, false));
  EXPECT_NE(digest(*whole, true), digest(*pieces, true)) << "a copy's digest keeps the counter";
  pieces->put_meta("normalisers", {{"x", 1}});
  EXPECT_NE(digest(*whole, false), digest(*pieces, false)) << "the rest of meta still counts";
}

// What the profile and incremental stages read: profiles replaced whole or in part, the change
// mark, the users changed since one, some users' events.
TEST_P(StoreTest, ProfilesChangeMarksAndSomeUsersEvents) {
  auto store = open();
  const auto ingest = store->begin_ingest("events", "e.csv", "hash", "map");
  store->write_batch(ingest.id, sample_batch(2, 30), 32);
  store->put_profiles({{"u1", "{}"}, {"u2", "{\"a\":1}"}, {"u1", "{\"b\":2}"}}, true);
  EXPECT_EQ(store->profile("u2"), "{\"a\":1}");
  EXPECT_EQ(store->profile("u1"), "{\"b\":2}");  // the later row wins
  std::vector<std::string> seen;
  store->for_each_profile([&](const std::string& user, const std::string&) { seen.push_back(user); });
  EXPECT_EQ(seen, (std::vector<std::string>{"u1", "u2"}));
  store->put_profiles({{"u3", "{}"}}, true);  // replace_all drops the others
  EXPECT_FALSE(store->profile("u1"));
  EXPECT_TRUE(store->profile("u3"));
  const auto mark = store->change_mark();
  EXPECT_EQ(mark.event, 30);
  EXPECT_TRUE(store->users_changed_since(mark).empty());
  EXPECT_EQ(store->users_changed_since({}).size(), 7u);
  store->write_batch(ingest.id, sample_batch(40, 3), 43);
  EXPECT_EQ(store->users_changed_since(mark), (std::vector<std::string>{"u0", "u1", "u2"}));
  const auto some = store->events_of({store->events().user_ids[0]});
  EXPECT_GT(some.size(), 0u);
  EXPECT_LT(some.size(), 33u);
  for (auto u : some.user) EXPECT_EQ(u, some.user[0]);
  const auto one = store->history("u3");
  ASSERT_GT(one.size(), 0u);
  EXPECT_EQ(one.user_ids, std::vector<std::string>{"u3"});
  EXPECT_TRUE(std::is_sorted(one.timestamp.begin(), one.timestamp.end()));
  EXPECT_EQ(one.item_prices[0], 9.99);
}

// Profiles computed before an erasure committed are refused whole (they may hold the person);
// computed after it, written.
TEST_P(StoreTest, ProfilesComputedBeforeAnErasureAreNotWritten) {
  auto store = open();
  const auto ingest = store->begin_ingest("events", "e.csv", "hash", "map");
  store->write_batch(ingest.id, sample_batch(2, 30), 32);
  store->put_profiles({{"u1", "{\"v\":1}"}, {"u2", "{\"v\":1}"}}, true);
  const int64_t before = store->erasure_count();
  ASSERT_TRUE(store->erase_user("u1").found);
  const int64_t generation = store->generation();
  EXPECT_FALSE(store->put_profiles({{"u1", "{\"v\":2}"}, {"u2", "{\"v\":2}"}}, true, before));
  EXPECT_FALSE(store->profile("u1")) << "the erased user's profile came back";
  EXPECT_EQ(store->profile("u2"), "{\"v\":1}") << "a refused write changes nothing";
  EXPECT_EQ(store->generation(), generation);
  EXPECT_TRUE(store->put_profiles({{"u2", "{\"v\":3}"}}, false, store->erasure_count()));
  EXPECT_EQ(store->profile("u2"), "{\"v\":3}");
}

// A stream's entries are stored with their batch: asked again, they are known; a batch with one
// of them already stored is refused whole; batches wholly below a watermark are forgotten; Kafka's
// partitions and other streams are apart.
TEST_P(StoreTest, StreamEntriesAreStoredOnceWithTheirBatch) {
  auto store = open();
  const std::string stream = "redis-stream://h/k#g";
  const auto ingest = store->begin_ingest("events", stream, "stream:1", "map");
  Batch b = sample_batch(1, 3);
  b.stream = {stream, {{"", 1700000000000, 0}, {"", 1700000000000, 1}, {"", 1700000000001, 0}}};
  store->write_batch(ingest.id, b, 3);
  EXPECT_EQ(store->stored_stream_entries({stream, {{"", 1700000000000, 1}, {"", 1700000000002, 0}}}),
            (std::vector<bool>{true, false}));
  EXPECT_EQ(store->stored_stream_entries({"redis-stream://h/k#other", {{"", 1700000000000, 1}}}), std::vector<bool>{false});
  EXPECT_EQ(store->stored_stream_entries({stream, {{"0", 1700000000000, 1}}}), std::vector<bool>{false});

  const auto events = store->stats().events;
  Batch again = sample_batch(4, 2);
  again.stream = {stream, {{"", 1700000000001, 0}, {"", 1700000000002, 0}}};
  EXPECT_THROW(store->write_batch(ingest.id, again, 5), StreamEntriesStored);
  EXPECT_EQ(store->stats().events, events) << "a refused batch wrote something";
  again.stream.keys.erase(again.stream.keys.begin());
  store->write_batch(ingest.id, again, 5);
  EXPECT_EQ(store->stats().events, events + 2);

  Batch kafka = sample_batch(6, 1);
  kafka.stream = {"kafka://b/t#g", {{"3", 41, 0}, {"we\"ird\\part", 7, 0}}};
  store->write_batch(ingest.id, kafka, 6);
  EXPECT_EQ(store->stored_stream_entries({"kafka://b/t#g", {{"3", 41, 0}, {"2", 41, 0}, {"we\"ird\\part", 7, 0}}}),
            (std::vector<bool>{true, false, true}));

  // Keys are forgotten a batch at a time: the first batch's last key is not below this mark yet...
  store->prune_stream_entries(stream, {"", 1700000000001, 0});
  const StreamEntries all = {stream, {{"", 1700000000000, 0}, {"", 1700000000000, 1}, {"", 1700000000001, 0}, {"", 1700000000002, 0}}};
  EXPECT_EQ(store->stored_stream_entries(all), (std::vector<bool>{true, true, true, true}));
  // ...and is below this one; the second batch is not.
  store->prune_stream_entries(stream, {"", 1700000000001, 1});
  EXPECT_EQ(store->stored_stream_entries(all), (std::vector<bool>{false, false, false, true}));
  EXPECT_EQ(store->stored_stream_entries({"kafka://b/t#g", {{"3", 41, 0}}}), std::vector<bool>{true}) << "pruned another stream";
}

// Feedback: once per request, item and kind; summed per variant, user and day for the report;
// gone with the user on erasure (also someone the store has no other row of); copied with the store.
TEST_P(StoreTest, FeedbackIsStoredOnceTalliedAndErased) {
  auto store = open();
  const auto ingest = store->begin_ingest("events", "e.csv", "hash", "map");
  store->write_batch(ingest.id, sample_batch(1, 3), 3);
  const int64_t day = 20000 * 86400;
  std::vector<Feedback> rows = {
      {"r1", "u0", "i0", "impression", "x", "a", "v1", 0, 0, day + 10},
      {"r1", "u0", "i0", "click", "x", "a", "v1", 0, 0, day + 20},
      {"r1", "u0", "i0", "purchase", "x", "a", "v1", 0, 12.5, day + 30},
      {"r1", "u0", "i1", "impression", "x", "a", "v1", 1, 0, day + 10},
      {"r2", "u0", "i1", "impression", "x", "a", "v1", 0, 0, day + 86400},
      {"r3", "stranger", "i2", "impression", "x", "b", "v2", 0, 0, day},
      {"r4", "u1", "i2", "impression", "other", "a", "v1", -1, 0, day},
  };
  EXPECT_EQ(store->put_feedback(rows), 7);
  EXPECT_EQ(store->put_feedback({rows[1], rows[2]}), 0) << "the same feedback sent again";
  std::vector<FeedbackTally> tallies;
  store->for_each_feedback_tally("x", [&](const FeedbackTally& t) { tallies.push_back(t); });
  ASSERT_EQ(tallies.size(), 3u);
  EXPECT_EQ(tallies[0].variant, "a");
  EXPECT_EQ(tallies[0].user, "u0");
  EXPECT_EQ(tallies[0].day, 20000);
  EXPECT_EQ(tallies[0].impressions, 2);
  EXPECT_EQ(tallies[0].clicks, 1);
  EXPECT_EQ(tallies[0].purchases, 1);
  EXPECT_DOUBLE_EQ(tallies[0].revenue, 12.5);
  EXPECT_EQ(tallies[1].day, 20001);
  EXPECT_EQ(tallies[2].variant, "b");
  EXPECT_EQ(tallies[2].user, "stranger");

  const auto erased = store->erase_user("u0");
  EXPECT_EQ(erased.feedback, 5);
  const auto stranger = store->erase_user("stranger");
  EXPECT_TRUE(stranger.found);
  EXPECT_EQ(stranger.feedback, 1);
  tallies.clear();
  store->for_each_feedback_tally("x", [&](const FeedbackTally& t) { tallies.push_back(t); });
  EXPECT_TRUE(tallies.empty());
  int64_t left = 0;
  for (const auto& table : store_tables())
    if (std::string_view(table.name) == "feedback") store->export_table(table, [&](const StoreRow&) { ++left; });
  EXPECT_EQ(left, 1) << "only u1's row";
}

// A time window of the events: only those at or after it, in time order, ids as in the whole.
TEST_P(StoreTest, EventsSinceReadOnlyTheWindow) {
  auto store = open();
  const auto ingest = store->begin_ingest("events", "e.csv", "hash", "map");
  store->write_batch(ingest.id, sample_batch(2, 30), 32);
  const auto all = store->events(Use::Any);
  const auto window = store->events_since(Use::Any, 1700000020);
  ASSERT_EQ(window.size(), 10u);
  EXPECT_EQ(window.timestamp.front(), 1700000020);
  EXPECT_EQ(window.user_ids, all.user_ids);
  EXPECT_EQ(window.item_ids, all.item_ids);
  for (size_t i = 0; i < window.size(); ++i) {
    EXPECT_EQ(window.user[i], all.user[20 + i]);
    EXPECT_EQ(window.item[i], all.item[20 + i]);
  }
  EXPECT_EQ(store->events_since(Use::Any, 1800000000).size(), 0u);
  EXPECT_EQ(store->events_since(Use::Any, std::numeric_limits<int64_t>::min()).size(), 30u);
}

// A bulk load gives the rows of a normal one; one that dies leaves its indexes to the next open.
TEST_P(StoreTest, ABulkLoadGivesTheSameRowsAndItsIndexesComeBack) {
  auto index_count = [&] {
    return postgres() ? std::stoi(first_row("SELECT count(*) FROM pg_indexes WHERE tablename IN ('events', 'texts')")[0].value())
                      : 0;
  };
  {
    auto store = open();
    const int indexes = index_count();
    store->begin_bulk_load();
    if (postgres()) EXPECT_EQ(index_count(), 0);
    const auto ingest = store->begin_ingest("events", "e.csv", "hash", "map");
    store->write_batch(ingest.id, sample_batch(2, 30), 32);
    store->write_batch(ingest.id, sample_batch(40, 10), 50);
    store->end_bulk_load();
    EXPECT_EQ(index_count(), indexes);
    EXPECT_EQ(store->events(Use::Any).size(), 40u);
    EXPECT_EQ(store->history("u3").size(), 5u);
  }
  const pid_t pid = fork();
  if (pid == 0) {
    auto store = open_store(location_);
    store->begin_bulk_load();
    const auto ingest = store->begin_ingest("events", "f.csv", "hash2", "map");
    store->write_batch(ingest.id, sample_batch(2, 10), 12);
    std::_Exit(137);  // dies with the indexes gone
  }
  int status = 0;
  waitpid(pid, &status, 0);
  const int left = index_count();
  auto store = open();
  if (postgres()) {
    EXPECT_EQ(left, 0);
    EXPECT_EQ(index_count(), 5) << "built again by the next open";
  }
  EXPECT_EQ(store->events(Use::Any).size(), 50u);
}

TEST_P(StoreTest, ANewerSchemaIsAClearError) {
  open();
  exec_raw("PRAGMA user_version=99", "UPDATE schema_version SET version=99");
  try {
    open();
    FAIL() << "opened a store of a newer schema";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
}

// Texts, consent, the knowledge graph, erasure and values that must come back bit for bit.
TEST_P(StoreTest, TextsConsentGraphAndExactValues) {
  auto store = open();
  const auto ingest = store->begin_ingest("mixed", "m.jsonl", "h", "m");
  Batch b;
  b.users.push_back({"refuser", std::nullopt, "", "", std::nullopt});
  b.users[0].consent_analytics = false;
  b.users.push_back({"张伟", 41, "M", "北京", 1600000000, {{"email", "zhang@example.cn"}}});
  Event e;
  e.user = "张伟";
  e.item = "茶\t壶\\";  // a tab and a backslash survive COPY
  e.type = EventType::Purchase;
  e.quantity = 0.1 + 0.2;  // not a short decimal
  e.value = 1e-300;
  e.timestamp = -5;  // before 1970
  b.events.emplace_back(1, e);
  e.user = "refuser";
  e.value = std::nullopt;
  e.timestamp = 7;
  b.events.emplace_back(2, e);
  Text t;
  t.user = "张伟";
  t.kind = TextKind::Review;
  t.body = "很好\n第二行 call me at zhang@example.cn";
  t.sentiment = -0.25;
  b.texts.emplace_back(3, t);
  t.user = "";
  t.body = "no user";
  t.sentiment = std::nullopt;
  b.texts.emplace_back(4, t);
  b.rejects.push_back({5, "bad_time", "timestamp", "zhang@example.cn", "unparseable", "5,zhang@example.cn", false});
  store->write_batch(ingest.id, b, 5);
  const auto all = store->events(Use::Any);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all.timestamp[0], -5);
  EXPECT_EQ(all.quantity[0], 0.1 + 0.2);
  EXPECT_EQ(all.value[0], 1e-300);
  EXPECT_EQ(all.item_ids[all.item[0]], "茶\t壶\\");
  EXPECT_EQ(store->events(Use::Analytics).size(), 1u);
  EXPECT_EQ(store->users_refusing(Use::Analytics), std::vector<std::string>{"refuser"});
  EXPECT_FALSE(store->consent("refuser").analytics);
  EXPECT_TRUE(store->consent("nobody").analytics);
  std::vector<Text> texts;
  store->for_each_text(Use::Any, [&](const Text& x) { texts.push_back(x); });
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_EQ(texts[0].body, "很好\n第二行 call me at zhang@example.cn");
  ASSERT_TRUE(texts[0].sentiment);
  EXPECT_EQ(*texts[0].sentiment, -0.25);
  EXPECT_EQ(texts[1].user, "");
  const auto users = store->users(Use::Any);
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[1].region, "北京");
  EXPECT_EQ(users[1].signup_time, 1600000000);

  store->put_graph({{{"茶壶", "item"}, {"Tea", "category"}}, {{0, "in_category", 1, ""}, {0, "price", -1, "12.5"}}});
  const auto g = store->graph();
  ASSERT_EQ(g.triples.size(), 2u);
  EXPECT_EQ(g.entities[0].name, "茶壶");
  EXPECT_EQ(g.triples[1].literal, "12.5");
  EXPECT_EQ(g.triples[1].object, -1);

  const auto erased = store->erase_user("张伟");
  EXPECT_TRUE(erased.found);
  EXPECT_EQ(erased.events, 1);
  EXPECT_EQ(erased.texts, 1);
  EXPECT_EQ(erased.rejects, 1);
  std::vector<RejectRow> rejects;
  store->for_each_reject(ingest.id, [&](const RejectRow& r) { rejects.push_back(r); });
  EXPECT_TRUE(rejects.empty());
  EXPECT_EQ(store->users(Use::Any)[1].id, "(erased)#1");
  EXPECT_FALSE(store->erase_user("张伟").found);
}

// The same writes into both backends leave the same rows, value for value, on data that tends
// to differ between databases; then erasure and the same data written again.
TEST(StoreBackends, EdgeValuesAreStoredAlikeOnBoth) {
  PERSONA_NEED_PG(server);
  test::TempDir dir;
  auto sqlite = open_store("sqlite:" + dir.file("edge.db"));
  auto pg = open_store(server->url(server->create_database()));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto edge_batch = [&] {
    Batch b;
    b.users.push_back({"emoji😀", std::numeric_limits<int64_t>::max(), "", "", std::numeric_limits<int64_t>::min()});
    b.users.push_back({"e\u0301mile", 0, "F", "", std::nullopt, {{"name", "Émile Zola"}, {"note", ""}}});
    b.items.push_back({"item\tone", "", "", "", "", nan});  // NaN price: no price
    b.items.push_back({"茶壶", "紫砂茶壶", "茶具 > 壶", "宜兴", "", 1e308});
    int64_t line = 1;
    for (const double v : {-0.0, 1e308, 5e-324, nan, 0.1 + 0.2}) {
      Event e;
      e.user = line % 2 ? "emoji😀" : "e\u0301mile";
      e.item = line % 2 ? "茶壶" : "item\tone";
      e.type = EventType::Purchase;
      e.quantity = v == v ? v : 1;
      e.value = v;
      e.timestamp = line < 3 ? 1700000000 : std::numeric_limits<int64_t>::max() - line;  // equal times too
      e.session = line == 1 ? "" : "s\\1";
      b.events.emplace_back(line++, e);
    }
    Text big;
    big.user = "e\u0301mile";
    big.body = std::string(10 << 20, 'x') + "尾";  // a 10 MiB text
    b.texts.emplace_back(line++, big);
    Text empty_label;
    empty_label.body = "\\N is not NULL";
    empty_label.label = "";
    b.texts.emplace_back(line++, empty_label);
    b.rejects.push_back({line++, "r", "", "", "", "", false});
    return b;
  };
  for (Store* s : {sqlite.get(), pg.get()}) {
    const auto ingest = s->begin_ingest("edge", "e", "h", "m");
    s->write_batch(ingest.id, edge_batch(), 100);
    s->finish_ingest(ingest.id, {{"rows", 8}});
  }
  std::vector<TableCount> a, b;
  EXPECT_EQ(digest(*pg, false, &b), digest(*sqlite, false, &a));
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) EXPECT_EQ(b[i].digest, a[i].digest) << a[i].table;
  const auto pe = pg->events(Use::Any), se = sqlite->events(Use::Any);
  ASSERT_EQ(pe.size(), 5u);
  for (size_t i = 0; i < pe.size(); ++i) {
    EXPECT_EQ(pe.timestamp[i], se.timestamp[i]);
    EXPECT_EQ(std::isnan(pe.value[i]), std::isnan(se.value[i]));
    if (!std::isnan(pe.value[i])) EXPECT_EQ(pe.value[i], se.value[i]) << i;
    EXPECT_EQ(pe.sessions.empty() ? -2 : pe.session[i], se.sessions.empty() ? -2 : se.session[i]);
  }
  std::vector<Text> pt, st;
  pg->for_each_text(Use::Any, [&](const Text& t) { pt.push_back(t); });
  sqlite->for_each_text(Use::Any, [&](const Text& t) { st.push_back(t); });
  ASSERT_EQ(pt.size(), 2u);
  EXPECT_EQ(pt[0].body.size(), st[0].body.size());
  EXPECT_TRUE(pt[0].body == st[0].body);
  EXPECT_EQ(pt[1].body, "\\N is not NULL");
  EXPECT_EQ(pg->items()[1].price, 1e308);
  EXPECT_FALSE(pg->items()[0].price) << "NaN is kept as no price, as SQLite keeps it";

  // Erased, then the same data written again: a new user, the same on both.
  for (Store* s : {sqlite.get(), pg.get()}) {
    EXPECT_TRUE(s->erase_user("e\u0301mile").found);
    const auto again = s->begin_ingest("edge", "e", "h2", "m");
    s->write_batch(again.id, edge_batch(), 100);
  }
  EXPECT_EQ(digest(*pg, false), digest(*sqlite, false));
  EXPECT_EQ(pg->users(Use::Any).size(), 3u);
}

// Sealed values copied between backends stay sealed (no key on the way) and open at the other end.
TEST(StoreBackends, SealedStoresCopyBothWaysWithoutTheKey) {
  PERSONA_NEED_PG(server);
  test::TempDir dir;
  auto keys = std::make_shared<privacy::KeyRing>(privacy::KeyRing::create(dir.file("persona.key")));
  auto source = open_store("sqlite:" + dir.file("sealed.db"), {keys});
  source->reseal();
  const auto ingest = source->begin_ingest("s", "s.csv", "h", "m");
  source->write_batch(ingest.id, sample_batch(2, 30), 32);
  Batch texts;
  Text t;
  t.user = "u1";
  t.body = "call me at 13912345678";
  texts.texts.emplace_back(40, t);
  source->write_batch(ingest.id, texts, 40);
  const std::string pg_location = server->url(server->create_database());
  {
    auto bare_source = open_store("sqlite:" + dir.file("sealed.db"));
    auto bare_pg = open_store(pg_location);
    const auto report = copy_store(*bare_source, *bare_pg);
    EXPECT_TRUE(report.same());
    EXPECT_TRUE(bare_pg->sealed());
    EXPECT_THROW(bare_pg->for_each_text(Use::Any, [](const Text&) {}), Error);
  }
  auto pg = open_store(pg_location, {keys});
  std::vector<std::string> bodies;
  pg->for_each_text(Use::Any, [&](const Text& x) { bodies.push_back(x.body); });
  EXPECT_EQ(bodies, std::vector<std::string>{"call me at 13912345678"});
  auto back = open_store("sqlite:" + dir.file("back.db"));
  EXPECT_TRUE(copy_store(*pg, *back).same());
  EXPECT_EQ(digest(*back), digest(*source));
}

}  // namespace
}  // namespace persona::store
