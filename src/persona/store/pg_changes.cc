#include "persona/store/pg_changes.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/store/pg_client.h"
#include "persona/store/store.h"
#include "persona/store/store_rules.h"

namespace persona::store {

using pg::Param;

namespace {

// Session advisory lock keys: "leader" and "budget" in ASCII (the store's write lock spells
// "persona").
constexpr const char* kLeaderLock = "119251126109554";
constexpr const char* kBudgetLock = "108641877190772";

// A bigint[] as PostgreSQL prints it: {1,2,3}.
std::vector<int64_t> parse_ids(std::string_view text) {
  std::vector<int64_t> out;
  int64_t v = 0;
  bool any = false, negative = false;
  for (const char c : text) {
    if (c >= '0' && c <= '9') {
      v = v * 10 + (c - '0');
      any = true;
    } else if (c == '-') {
      negative = true;
    } else if (c == ',' || c == '}') {
      if (any) out.push_back(negative ? -v : v);
      v = 0;
      any = negative = false;
    }
  }
  return out;
}

}  // namespace

// ---- ChangeFeed ------------------------------------------------------------------------------

ChangeFeed::ChangeFeed(std::string url) : url_(std::move(url)) {}
ChangeFeed::~ChangeFeed() = default;

bool ChangeFeed::connect(Update& update) {
  try {
    conn_ = std::make_unique<pg::Connection>(url_);
    conn_->exec("SET application_name = 'persona change feed'");
    conn_->exec("LISTEN persona_changes");  // before reading: nothing committed after the read is lost
    if (last_seq_ < 0) {
      // From now on: every change committed so far is in what this process reads from the store.
      last_seq_ = conn_->exec("SELECT n FROM write_count").int64(0, 0);
      last_read_at_ = std::stod(std::string(conn_->exec("SELECT extract(epoch FROM now())").text(0, 0)));
      return true;
    }
    update.reconnected = true;
    // Changes older than the log keeps may be gone (with a margin for the writers' clocks).
    const double now = std::stod(std::string(conn_->exec("SELECT extract(epoch FROM now())").text(0, 0)));
    if (now - last_read_at_ > static_cast<double>(kChangesKeptSeconds) - 300) update.missed = true;
    read(update);
    return true;
  } catch (const std::exception& e) {
    conn_.reset();
    update.error = e.what();
    return false;
  }
}

void ChangeFeed::read(Update& update) {
  const auto now = conn_->exec("SELECT extract(epoch FROM now())");
  const auto rows = conn_->exec("SELECT seq, what, users FROM changes WHERE seq > $1 ORDER BY seq, what", {Param::of(last_seq_)});
  std::vector<std::vector<int64_t>> ids(static_cast<size_t>(rows.rows()));
  std::string all = "{";
  for (int i = 0; i < rows.rows(); ++i) {
    if (!rows.null(i, 2)) ids[static_cast<size_t>(i)] = parse_ids(rows.text(i, 2));
    for (const auto id : ids[static_cast<size_t>(i)]) all += (all.size() > 1 ? "," : "") + std::to_string(id);
  }
  all += "}";
  std::map<int64_t, std::string> names;
  if (all.size() > 2) {
    const auto q = conn_->exec("SELECT id, ext_id FROM users WHERE id = ANY($1::bigint[])", {Param::text(all)});
    for (int i = 0; i < q.rows(); ++i) names[q.int64(i, 0)] = std::string(q.text(i, 1));
  }
  for (int i = 0; i < rows.rows(); ++i) {
    Change c;
    c.seq = rows.int64(i, 0);
    c.what = std::string(rows.text(i, 1));
    for (const auto id : ids[static_cast<size_t>(i)])
      if (const auto it = names.find(id); it != names.end()) c.users.push_back(it->second);
    last_seq_ = std::max(last_seq_, c.seq);
    update.changes.push_back(std::move(c));
  }
  last_read_at_ = std::stod(std::string(now.text(0, 0)));
}

ChangeFeed::Update ChangeFeed::wait(std::chrono::milliseconds timeout) {
  Update update;
  if (!conn_) {
    if (!connect(update)) std::this_thread::sleep_for(timeout);
    return update;
  }
  try {
    PGconn* c = conn_->raw();
    auto notified = [&] {
      bool any = false;
      while (PGnotify* n = PQnotifies(c)) {
        any = true;
        PQfreemem(n);
      }
      return any;
    };
    bool any = notified();
    if (!any) {
      pollfd p{PQsocket(c), POLLIN, 0};
      if (p.fd < 0) throw Unavailable("the change feed's connection is closed");
      if (::poll(&p, 1, static_cast<int>(timeout.count())) > 0) {
        if (PQconsumeInput(c) != 1 || PQstatus(c) != CONNECTION_OK)
          throw Unavailable(fmt::format("lost the change feed's connection: {}", PQerrorMessage(c)));
        any = notified();
      }
    }
    if (any) read(update);
  } catch (const std::exception& e) {
    conn_.reset();  // the next wait connects again and replays what was missed
    update.error = e.what();
  }
  return update;
}

// ---- LeaderLock ------------------------------------------------------------------------------

LeaderLock::LeaderLock(std::string url) : url_(std::move(url)) {}
LeaderLock::~LeaderLock() = default;

bool LeaderLock::held() {
  try {
    if (!conn_) {
      held_ = false;
      conn_ = std::make_unique<pg::Connection>(url_);
      conn_->exec("SET application_name = 'persona leader lock'");
    }
    if (held_) conn_->exec("SELECT 1");  // still connected: still held
    else held_ = conn_->exec(fmt::format("SELECT pg_try_advisory_lock({})", kLeaderLock)).text(0, 0) == "t";
  } catch (const std::exception&) {
    conn_.reset();
    held_ = false;
  }
  return held_;
}

// ---- PgBudgetLedger --------------------------------------------------------------------------

PgBudgetLedger::PgBudgetLedger(const std::string& url, double default_budget)
    : conn_(std::make_unique<pg::Connection>(url)), default_budget_(default_budget) {}
PgBudgetLedger::~PgBudgetLedger() = default;

void PgBudgetLedger::set_budget(const std::string& dataset, const std::string& analyst, double epsilon) {
  if (!(epsilon >= 0 && epsilon <= 1000)) throw std::invalid_argument("a budget must be between 0 and 1000");
  conn_->exec("INSERT INTO dp_ledger(dataset, analyst, budget, time) VALUES ($1, $2, $3, $4)",
              {Param::text(dataset), Param::text(analyst), Param::of(epsilon), Param::of(rules::now_seconds())});
}

double PgBudgetLedger::budget(const std::string& dataset, const std::string& analyst) const {
  const auto q = conn_->exec(
      "SELECT budget FROM dp_ledger WHERE dataset=$1 AND analyst=$2 AND budget IS NOT NULL ORDER BY seq DESC LIMIT 1",
      {Param::text(dataset), Param::text(analyst)});
  return q.rows() ? q.real(0, 0) : default_budget_;
}

double PgBudgetLedger::spent(const std::string& dataset, const std::string& analyst) const {
  // Summed in entry order, as the file ledger sums them: the same total to the last bit.
  double total = 0;
  const auto q = conn_->exec("SELECT spent FROM dp_ledger WHERE dataset=$1 AND analyst=$2 AND spent IS NOT NULL ORDER BY seq",
                             {Param::text(dataset), Param::text(analyst)});
  for (int i = 0; i < q.rows(); ++i) total += q.real(i, 0);
  return total;
}

void PgBudgetLedger::spend(const std::string& dataset, const std::string& analyst, double epsilon, const std::string& query) {
  // One transaction under one lock: two servers charging the same account at once are one after
  // the other, and the second sees the first's charge.
  conn_->exec("BEGIN");
  try {
    conn_->exec(fmt::format("SELECT pg_advisory_xact_lock({})", kBudgetLock));
    privacy::require_budget(dataset, analyst, budget(dataset, analyst), spent(dataset, analyst), epsilon);
    conn_->exec("INSERT INTO dp_ledger(dataset, analyst, spent, query, time) VALUES ($1, $2, $3, $4, $5)",
                {Param::text(dataset), Param::text(analyst), Param::of(epsilon), Param::text(query), Param::of(rules::now_seconds())});
    conn_->exec("COMMIT");
  } catch (...) {
    try {
      conn_->exec("ROLLBACK");
    } catch (const std::exception&) {
      // the connection is gone, and the transaction with it
    }
    throw;
  }
}

std::vector<privacy::BudgetLedger::Account> PgBudgetLedger::accounts(const std::string& dataset) const {
  std::map<std::string, Account> by_analyst;
  const auto q = conn_->exec("SELECT analyst, budget, spent, time FROM dp_ledger WHERE dataset=$1 ORDER BY seq", {Param::text(dataset)});
  for (int i = 0; i < q.rows(); ++i) {
    const std::string analyst(q.text(i, 0));
    auto [it, fresh] = by_analyst.try_emplace(analyst, Account{analyst, -1, 0, 0, 0});
    if (!q.null(i, 1)) it->second.budget = q.real(i, 1);
    if (!q.null(i, 2)) {
      it->second.spent += q.real(i, 2);
      ++it->second.queries;
    }
    it->second.last_time = std::max(it->second.last_time, q.int64(i, 3));
  }
  std::vector<Account> out;
  for (auto& [analyst, a] : by_analyst) {
    if (a.budget < 0) a.budget = default_budget_;
    out.push_back(a);
  }
  return out;
}

std::unique_ptr<privacy::BudgetLedger> open_budget_ledger(const std::string& location, const std::string& path) {
  if (path.empty() && is_postgres_location(location)) {
    open_store(location);  // brings the database to the schema that has the ledger
    return std::make_unique<PgBudgetLedger>(location);
  }
  return std::make_unique<privacy::JsonlBudgetLedger>(path.empty() ? local_base(location) + ".dp-ledger.jsonl" : path);
}

}  // namespace persona::store
