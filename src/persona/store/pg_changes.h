#pragma once
// What several `persona serve` processes on one PostgreSQL store use to agree
// (docs/operations.md, "Several servers"): the changes every writer records in its write
// transactions (pg_store.cc, note_change), followed by LISTEN/NOTIFY; a leader lock; the
// privacy-budget ledger in the database.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "persona/privacy/dp.h"

namespace persona::store {

namespace pg {
class Connection;
}

// How long the change log keeps a change: a server away for longer empties its cache on return
// instead of replaying what it missed.
constexpr int64_t kChangesKeptSeconds = 3600;

// One committed change that empties answer caches.
struct Change {
  int64_t seq = 0;                 // in commit order
  std::string what;                // "data", "profiles", "catalogue", "erasure" or "all"
  std::vector<std::string> users;  // the users concerned (data, profiles), by their ids
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
  std::unique_ptr<pg::Connection> conn_;
  double default_budget_;
};

// The ledger of a store: in the database for PostgreSQL, else `path` (a JSON Lines file; ""
// = beside the store, <store>.dp-ledger.jsonl). A path given wins on either.
std::unique_ptr<privacy::BudgetLedger> open_budget_ledger(const std::string& location, const std::string& path = "");

}  // namespace persona::store
