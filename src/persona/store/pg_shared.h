#pragma once
// What several `persona serve` processes on one PostgreSQL store use to agree
// (docs/operations.md, "Several servers"): the changes every writer records in its write
// transactions (pg_store.cc, note_change), followed by LISTEN/NOTIFY; a leader lock; the
// privacy-budget ledger in the database.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "persona/privacy/access.h"
#include "persona/privacy/audit.h"
#include "persona/privacy/dp.h"

namespace persona::store {

namespace pg {
class Connection;
}

// One lock for every writer of a database (advisory locks are per database): the key spells
// "persona" in ASCII.
constexpr const char* kStoreWriteLock = "SELECT pg_advisory_xact_lock(31365354004725345)";

// Records a change that empties servers' answer caches, in the write transaction `seq` (the
// transaction's write count) is of; NOTIFY persona_changes tells the servers at commit.
// `what`: "data" (these users' events, texts or attributes: their answers, and their profiles to
// refresh), "profiles" (these users'), "catalogue", "erasure", "model", "keys" or "all". Users
// by dense id; past 20,000 of them, none listed (Change::everyone).
void record_change(pg::Connection& c, int64_t seq, const char* what, std::vector<int64_t> users = {});

// `body` as one transaction on `c`: committed, or rolled back when it throws.
void in_transaction(pg::Connection& c, const std::function<void()>& body);

// How long the change log keeps a change: a server away for longer empties its cache on return
// instead of replaying what it missed.
constexpr int64_t kChangesKeptSeconds = 3600;

// One committed change that empties answer caches.
struct Change {
  int64_t seq = 0;                 // in commit order
  std::string what;                // "data", "profiles", "catalogue", "erasure" or "all"
  std::vector<std::string> users;  // the users concerned (data, profiles), by their ids
  bool everyone = false;           // too many users to list (a large batch): take it as all of them
};

// Follows the changes committed to a PostgreSQL store, on a connection of its own that LISTENs
// (named "persona change feed" in pg_stat_activity). The first connection starts at the changes
// committed from then on; after a lost connection it reconnects and replays what it missed.
class ChangeFeed {
 public:
  explicit ChangeFeed(std::string url);
  ~ChangeFeed();
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  struct Update {
    std::vector<Change> changes;  // in commit order
    bool missed = false;          // away too long: changes may be lost, empty every cache
    bool reconnected = false;     // the connection was made again (and what it missed replayed)
    std::string error;            // not connected: why (the next wait tries again)
  };
  // Waits up to `timeout` for changes after the last ones returned. Never throws.
  Update wait(std::chrono::milliseconds timeout);

 private:
  bool connect(Update& update);
  void read(Update& update);
  std::string url_;
  std::unique_ptr<pg::Connection> conn_;
  int64_t last_seq_ = -1;    // the last change returned (-1: never connected)
  double last_read_at_ = 0;  // the database's clock when changes were last read
};

// One holder at a time among the servers of a database (a session advisory lock on a
// connection of its own): the leader runs the background work that must run once (profile
// refreshes). A holder that dies loses it with its connection, and another takes it.
class LeaderLock {
 public:
  explicit LeaderLock(std::string url);
  ~LeaderLock();
  LeaderLock(const LeaderLock&) = delete;
  LeaderLock& operator=(const LeaderLock&) = delete;
  // Whether this process leads now: takes the lock when it is free, checks the connection when
  // held. Never throws (a lost database: not leading).
  bool held();

 private:
  std::string url_;
  std::unique_ptr<pg::Connection> conn_;
  bool held_ = false;
};

// The privacy-budget ledger kept in a PostgreSQL store (table dp_ledger): every server of the
// database charges the same accounts, a charge one transaction under a lock, so a budget holds
// exactly however many servers answer queries.
class PgBudgetLedger final : public privacy::BudgetLedger {
 public:
  explicit PgBudgetLedger(const std::string& url, double default_budget = 1.0);
  ~PgBudgetLedger() override;
  void set_budget(const std::string& dataset, const std::string& analyst, double epsilon) override;
  double budget(const std::string& dataset, const std::string& analyst) const override;
  double spent(const std::string& dataset, const std::string& analyst) const override;
  void spend(const std::string& dataset, const std::string& analyst, double epsilon, const std::string& query) override;
  std::vector<Account> accounts(const std::string& dataset) const override;

 private:
  pg::Connection& connection() const;  // connected again when it was lost
  std::string url_;
  mutable std::unique_ptr<pg::Connection> conn_;
  double default_budget_;
};

// The API keys of a PostgreSQL store (table api_keys): every server reads the same keys, and a
// change (made, revoked, a user's erased) is seen by each within a second: at once through the
// change feed ("keys"), or at its next refresh().
class PgKeyStorage final : public privacy::KeyStorage {
 public:
  explicit PgKeyStorage(std::string url);
  ~PgKeyStorage() override;
  std::array<int64_t, 4> version() override { return {1, version_.load(), 0, 0}; }
  std::vector<privacy::ApiKey> load() override;
  void update(const std::function<void(std::vector<privacy::ApiKey>&)>& change) override;
  void refresh() override;
  std::string where() const override;

 private:
  pg::Connection& connection();  // connected again when it was lost
  std::string url_;
  std::mutex mutex_;
  std::unique_ptr<pg::Connection> conn_;
  std::atomic<int64_t> version_{0};
  int64_t last_seen_ = -1;  // the newest "keys" change refresh() saw
};

// The audit log of a PostgreSQL store (tables audit_log and audit_head): one hash chain for
// every server and CLI of the store, an append one transaction under a lock.
class PgAuditStorage final : public privacy::AuditStorage {
 public:
  explicit PgAuditStorage(const std::string& url);
  ~PgAuditStorage() override;
  nlohmann::json append(const std::function<nlohmann::json(const Head&)>& make) override;
  Head head() const override;
  bool exists() const override;
  void for_each(const std::function<void(const std::string& line)>& fn) const override;
  std::string where() const override { return where_; }

 private:
  std::unique_ptr<pg::Connection> conn_;
  std::string where_;
};

// The API keys of a store: `path` when given, else $PERSONA_API_KEYS, else the database of a
// PostgreSQL store, else ./persona-api-keys.json.
std::unique_ptr<privacy::ApiKeyStore> open_api_keys(const std::string& store_location, const std::string& path = "",
                                                    privacy::Argon2Cost cost = privacy::Argon2Cost::interactive());
// Whether a store's API keys are in its database (open_api_keys without a path would find them there).
bool api_keys_in_database(const std::string& store_location);
// The audit log of a store: `path` when given, else $PERSONA_AUDIT_LOG, else the database of a
// PostgreSQL store, else ./persona-audit.jsonl.
privacy::AuditLog open_audit_log(const std::string& store_location, const privacy::KeyRing& keys, const std::string& path = "");

// The ledger of a store: in the database for PostgreSQL, else `path` (a JSON Lines file; ""
// = beside the store, <store>.dp-ledger.jsonl). A path given wins on either.
std::unique_ptr<privacy::BudgetLedger> open_budget_ledger(const std::string& location, const std::string& path = "");

}  // namespace persona::store
