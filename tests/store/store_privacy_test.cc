// The store's part of privacy: sealed sensitive columns, consent filters, erasure.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "persona/core/error.h"
#include "persona/privacy/crypto.h"
#include "persona/privacy/keys.h"
#include "persona/store/store.h"
#include "store/store_backends.h"
#include "support/test_support.h"

namespace persona::store {
namespace {

// Two users: "alice" (consents to nothing stated), "bob" (refuses analytics), "carol" (refuses
// personalisation). Alice has an email attribute, a review with her phone number, a reject row.
Batch people() {
  Batch b;
  User alice{"alice", 31, "F", "Hangzhou", std::nullopt};
  alice.attributes = {{"name", "Alice Zhangwei"}, {"email", "alice.z@example.com"}, {"level", "gold"}};
  User bob{"bob", 40, "M", "Beijing", std::nullopt};
  bob.consent_analytics = false;
  User carol{"carol", 22, "F", "Shanghai", std::nullopt};
  carol.consent_personalisation = false;
  b.users = {alice, bob, carol};
  int64_t line = 1;
  for (const char* u : {"alice", "alice", "bob", "carol"}) {
    Event e;
    e.user = u;
    e.item = "i1";
    e.type = EventType::Purchase;
    e.value = 10;
    e.timestamp = 1700000000 + line;
    b.events.emplace_back(line++, e);
  }
  Text t;
  t.user = "alice";
  t.item = "i1";
  t.body = "Call me on 13912345678 about the kettle";
  b.texts.emplace_back(line++, t);
  Text anon;
  anon.body = "no author here";
  b.texts.emplace_back(line++, anon);
  Text bobs;
  bobs.user = "bob";
  bobs.body = "bob's review";
  b.texts.emplace_back(line++, bobs);
  b.rejects.push_back({line++, "bad_value", "event.value", "x", "is not a number", "alice,i1,purchase,x", false});
  b.rejects.push_back({line++, "bad_value", "event.value", "y", "is not a number", "dave,i1,purchase,y", false});
  return b;
}

std::shared_ptr<const privacy::KeyRing> make_keys(const test::TempDir& dir) {
  return std::make_shared<privacy::KeyRing>(privacy::KeyRing::create(dir.file("persona.key")));
}

class StorePrivacy : public StoreBackendTest {
 protected:
  // A store sealed by the explicit act (reseal() marks it: writes from then on are sealed).
  std::unique_ptr<Store> open_sealed(std::shared_ptr<const privacy::KeyRing> keys) {
    auto store = open({std::move(keys)});
    store->reseal();
    return store;
  }
};
INSTANTIATE_TEST_SUITE_P(Backends, StorePrivacy, testing::Values(Backend::Sqlite, Backend::Postgres), backend_name);

void fill(Store& store) {
  const auto ingest = store.begin_ingest("s", "s.csv", "hash", "map");
  store.write_batch(ingest.id, people(), 20);
  store.finish_ingest(ingest.id, {});
}

std::vector<std::string> text_bodies(Store& store, Use use) {
  std::vector<std::string> out;
  store.for_each_text(use, [&](const Text& t) { out.push_back(t.body); });
  return out;
}

TEST_P(StorePrivacy, SealedColumnsAreCiphertextOnDiskAndPlainThroughTheStore) {
  test::TempDir dir;
  const auto keys = make_keys(dir);
  {
    auto store = open_sealed(keys);
    fill(*store);
    EXPECT_TRUE(store->sealed());
    const auto bodies = text_bodies(*store, Use::Any);
    ASSERT_EQ(bodies.size(), 3u);
    EXPECT_EQ(bodies[0], "Call me on 13912345678 about the kettle");
    std::vector<RejectRow> rejects;
    store->for_each_reject(1, [&](const RejectRow& r) { rejects.push_back(r); });
    ASSERT_EQ(rejects.size(), 2u);
    EXPECT_EQ(rejects[0].raw, "alice,i1,purchase,x");
  }
  for (const char* plain : {"13912345678", "alice.z@example.com", "Zhangwei", "purchase,x"}) EXPECT_FALSE(holds(plain)) << plain;
  EXPECT_TRUE(holds("pv1."));

  // Without the key: reading a sealed value, or writing, is a clear error; counts still work.
  auto bare = open();
  EXPECT_TRUE(bare->sealed());
  EXPECT_EQ(bare->stats(3).texts, 3);
  try {
    text_bodies(*bare, Use::Any);
    FAIL() << "read a sealed text without the key";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sealed"), std::string::npos) << e.what();
  }
  const auto ingest = bare->begin_ingest("t", "t.csv", "hash2", "map");
  EXPECT_THROW(bare->write_batch(ingest.id, people(), 20), Error);

  // Another key ring: refused, never garbage.
  test::TempDir other;
  auto wrong = open({make_keys(other)});
  EXPECT_THROW(text_bodies(*wrong, Use::Any), Error);
}

TEST_P(StorePrivacy, ACiphertextMovedToAnotherRowDoesNotOpen) {
  test::TempDir dir;
  auto store = open_sealed(make_keys(dir));
  fill(*store);
  const std::string move = "UPDATE texts SET body=(SELECT body FROM texts WHERE line=5) WHERE line=6";
  exec_raw(move, move);
  EXPECT_THROW(text_bodies(*store, Use::Any), Error);
}

TEST_P(StorePrivacy, RotationResealsEveryValueAndReadsGoOnThroughout) {
  test::TempDir dir;
  auto ring = std::make_shared<privacy::KeyRing>(privacy::KeyRing::create(dir.file("persona.key")));
  {
    auto store = open_sealed(ring);
    fill(*store);
  }
  const uint32_t old_key = ring->active_id();
  ring->rotate();
  auto store = open({ring});
  EXPECT_EQ(text_bodies(*store, Use::Any)[0], "Call me on 13912345678 about the kettle");  // old key still opens
  // texts 3 + attrs 1 + reject values 2 + reject rows 2
  EXPECT_EQ(store->reseal(), 8);
  EXPECT_EQ(store->reseal(), 0);  // nothing left under the old key
  const auto sealed = column_values("SELECT body FROM texts UNION ALL SELECT attrs FROM users WHERE attrs IS NOT NULL "
                                     "UNION ALL SELECT raw FROM rejects");
  EXPECT_EQ(sealed.size(), 6u);
  for (const auto& v : sealed) {
    EXPECT_EQ(privacy::sealed_key_id(v), ring->active_id());
    EXPECT_NE(privacy::sealed_key_id(v), old_key);
  }
  EXPECT_EQ(text_bodies(*store, Use::Any)[0], "Call me on 13912345678 about the kettle");
}

TEST_P(StorePrivacy, APlainStoreIsSealedAfterTheFactByReseal) {
  test::TempDir dir;
  {
    auto store = open();
    fill(*store);
    EXPECT_FALSE(store->sealed());
    EXPECT_THROW(store->reseal(), Error);  // no key
  }
  const auto keys = make_keys(dir);
  {
    // A key at hand does not seal it: opening (even for stats) and writing leave it plain, and
    // it says so.
    auto store = open({keys});
    EXPECT_FALSE(store->sealed());
    const auto ingest = store->begin_ingest("t", "t.csv", "hash2", "map");
    store->write_batch(ingest.id, people(), 20);
    store->finish_ingest(ingest.id, {});
  }
  EXPECT_TRUE(holds("13912345678")) << "still plain, as it says";
  EXPECT_FALSE(open()->sealed());
  auto store = open({keys});
  EXPECT_EQ(store->reseal(), 15);  // texts 6, one user's attributes, reject values 4 and rows 4
  EXPECT_TRUE(store->sealed());
  EXPECT_TRUE(open()->sealed());
  EXPECT_EQ(text_bodies(*store, Use::Any).size(), 6u);
}

TEST_P(StorePrivacy, ConsentFiltersEveryUse) {
  auto store = open();
  fill(*store);
  EXPECT_TRUE(store->consent("alice").analytics);
  EXPECT_TRUE(store->consent("alice").personalisation);
  EXPECT_FALSE(store->consent("bob").analytics);
  EXPECT_FALSE(store->consent("carol").personalisation);
  EXPECT_TRUE(store->consent("nobody").analytics);
  EXPECT_EQ(store->users_refusing(Use::Analytics), std::vector<std::string>{"bob"});
  EXPECT_EQ(store->users_refusing(Use::Personalisation), std::vector<std::string>{"carol"});

  auto users_of = [](const EventColumns& e) {
    std::vector<std::string> out;
    for (auto u : e.user) out.push_back(e.user_ids[static_cast<size_t>(u)]);
    return out;
  };
  EXPECT_EQ(users_of(store->events(Use::Any)), (std::vector<std::string>{"alice", "alice", "bob", "carol"}));
  EXPECT_EQ(users_of(store->events(Use::Analytics)), (std::vector<std::string>{"alice", "alice", "carol"}));
  EXPECT_EQ(users_of(store->events()), (std::vector<std::string>{"alice", "alice", "carol"}));
  EXPECT_EQ(users_of(store->events(Use::Personalisation)), (std::vector<std::string>{"alice", "alice", "bob"}));
  EXPECT_EQ(users_of(store->events_of({"bob"})), std::vector<std::string>{"bob"});  // their own data
  const auto alice = store->history("alice");  // the compact read: only what alice touches
  EXPECT_EQ(users_of(alice), (std::vector<std::string>{"alice", "alice"}));
  EXPECT_EQ(alice.item_ids, std::vector<std::string>{"i1"});
  EXPECT_EQ(alice.value[0], 10);
  EXPECT_EQ(store->history("nobody").size(), 0u);
  EXPECT_EQ(text_bodies(*store, Use::Analytics).size(), 2u);  // bob's review left out, the anonymous one in
  const auto analysed = store->users(Use::Analytics);
  ASSERT_EQ(analysed.size(), 2u);
  EXPECT_EQ(analysed[0].id, "alice");
  EXPECT_EQ(analysed[0].age, 31);
  EXPECT_TRUE(analysed[0].attributes.empty());  // never the free-form attributes
  EXPECT_EQ(analysed[1].id, "carol");
  EXPECT_EQ(store->users(Use::Any).size(), 3u);
  EXPECT_EQ(text_bodies(*store, Use::Any).size(), 3u);

  // A later row that states consent changes it; one that says nothing leaves it.
  const auto ingest = store->begin_ingest("u", "u.csv", "hash-u", "map");
  Batch b;
  User bob{"bob", std::nullopt, "", "", std::nullopt};
  bob.consent_analytics = true;
  User carol{"carol", std::nullopt, "", "", std::nullopt};
  b.users = {bob, carol};
  store->write_batch(ingest.id, b, 2);
  EXPECT_TRUE(store->consent("bob").analytics);
  EXPECT_FALSE(store->consent("carol").personalisation);
}

TEST_P(StorePrivacy, EraseLeavesNoTraceInTheStore) {
  for (const bool sealed : {false, true}) {
    SCOPED_TRACE(sealed ? "sealed" : "plain");
    SetUp();  // a new store for each
    test::TempDir dir;
    auto store = sealed ? open_sealed(make_keys(dir)) : open();
    fill(*store);
    store->put_profiles({{"alice", "{\"user\":\"alice\"}"}, {"bob", "{\"user\":\"bob\"}"}}, true);
    const auto before = store->events(Use::Any);

    const Erasure e = store->erase_user("alice");
    EXPECT_TRUE(e.found);
    EXPECT_EQ(e.events, 2);
    EXPECT_EQ(e.texts, 1);
    EXPECT_EQ(e.profiles, 1);
    EXPECT_EQ(e.rejects, 1);
    for (const char* trace : {"alice", "Alice Zhangwei", "alice.z@example.com", "13912345678"})
      EXPECT_NE(std::find(e.traces.begin(), e.traces.end(), trace), e.traces.end()) << trace;
    EXPECT_EQ(std::find(e.traces.begin(), e.traces.end(), "gold"), e.traces.end());  // not identifying

    // The rest is untouched and dense ids still line up.
    const auto after = store->events(Use::Any);
    EXPECT_EQ(after.size(), before.size() - 2);
    EXPECT_EQ(after.user_ids.size(), before.user_ids.size());
    EXPECT_EQ(std::count(after.user_ids.begin(), after.user_ids.end(), "alice"), 0);
    EXPECT_TRUE(store->profile("bob"));
    EXPECT_FALSE(store->profile("alice"));
    EXPECT_EQ(text_bodies(*store, Use::Any).size(), 2u);
    std::vector<RejectRow> rejects;
    store->for_each_reject(1, [&](const RejectRow& r) { rejects.push_back(r); });
    ASSERT_EQ(rejects.size(), 1u);
    EXPECT_EQ(rejects[0].raw, "dave,i1,purchase,y");
    EXPECT_FALSE(store->erase_user("alice").found);

    // A user of the same name later is a new person.
    const auto ingest = store->begin_ingest("again", "a.csv", "hash-again", "map");
    Batch b;
    b.users.push_back({"alice", 50, "", "", std::nullopt});
    store->write_batch(ingest.id, b, 1);
    EXPECT_TRUE(store->consent("alice").analytics);
    store->erase_user("alice");

    // Searched while the store is still open (as a server holds it): SQLite's WAL counts too.
    for (const char* trace : {"alice", "Zhangwei", "example.com", "13912345678", "kettle", "purchase,x"})
      EXPECT_FALSE(holds(trace)) << trace;
    EXPECT_TRUE(holds("carol"));  // the search can find what is there
    store.reset();
  }
}

}  // namespace
}  // namespace persona::store
