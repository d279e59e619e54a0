#include "persona/store/pg_shared.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
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

void record_change(pg::Connection& c, int64_t seq, const char* what, std::vector<int64_t> users) {
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  // Past this many users a server is better off emptying its cache than reading them: no list
  // (NULL) says "everyone".
  constexpr size_t kMaxUsersPerChange = 20000;
  std::optional<std::string> array;
  if (users.size() <= kMaxUsersPerChange) {
    array = "{";
    for (const auto id : users) *array += (array->size() > 1 ? "," : "") + std::to_string(id);
    *array += "}";
  }
  const int64_t now = rules::now_seconds();
  c.exec("INSERT INTO changes(seq, what, at, users) VALUES ($1, $2, $3, $4::bigint[]) "
         "ON CONFLICT (seq, what) DO UPDATE SET users = changes.users || excluded.users",
         {Param::of(seq), Param::text(what), Param::of(now), array ? Param::text(*array) : Param::null()});
  c.exec("NOTIFY persona_changes");
  // A server away for longer than this empties its cache on return instead of replaying.
  if (seq % 256 == 0) c.exec("DELETE FROM changes WHERE at < $1", {Param::of(now - kChangesKeptSeconds)});
}

void in_transaction(pg::Connection& c, const std::function<void()>& body) {
  c.exec("BEGIN");
  try {
    body();
    c.exec("COMMIT");
  } catch (...) {
    try {
      c.exec("ROLLBACK");
    } catch (const std::exception&) {
      // the connection is gone, and the transaction with it
    }
    throw;
  }
}

namespace {

// A write of shared state as one transaction under the store's write lock, counted as the store's
// writes are (so its changes take their place in commit order). `body` gets the write's seq.
void shared_write(pg::Connection& c, const std::function<void(int64_t seq)>& body) {
  in_transaction(c, [&] {
    c.exec(kStoreWriteLock);
    body(c.exec("UPDATE write_count SET n = n + 1 RETURNING n").int64(0, 0));
  });
}

// Opens the store once first: a database Persona has not migrated yet gets its tables.
std::unique_ptr<pg::Connection> migrated_connection(const std::string& url) {
  open_store(url);
  return std::make_unique<pg::Connection>(url);
}

}  // namespace

// ---- PgKeyStorage ----------------------------------------------------------------------------

PgKeyStorage::PgKeyStorage(std::string url) : url_(std::move(url)), conn_(migrated_connection(url_)) { refresh(); }
PgKeyStorage::~PgKeyStorage() = default;

pg::Connection& PgKeyStorage::connection() {
  if (!conn_ || !conn_->connected()) conn_ = std::make_unique<pg::Connection>(url_);
  return *conn_;
}

std::string PgKeyStorage::where() const { return printable_location(url_) + " (table api_keys)"; }

namespace {

std::vector<privacy::ApiKey> read_keys(pg::Connection& c, const std::string& where) {
  const auto q = c.exec("SELECT id, name, role, user_id, created, revoked, hash FROM api_keys ORDER BY created, id");
  std::vector<privacy::ApiKey> out;
  for (int i = 0; i < q.rows(); ++i) {
    privacy::ApiKey k;
    k.id = q.text(i, 0);
    k.name = q.text(i, 1);
    const auto role = privacy::parse_role(q.text(i, 2));
    if (!role) throw Error(fmt::format("API key {} has an unknown role", k.id), {where});
    k.role = *role;
    k.user = q.text(i, 3);
    k.created = q.int64(i, 4);
    k.revoked = q.text(i, 5) == "t";
    k.hash = q.text(i, 6);
    out.push_back(std::move(k));
  }
  return out;
}

}  // namespace

std::vector<privacy::ApiKey> PgKeyStorage::load() {
  std::lock_guard lock(mutex_);
  return read_keys(connection(), where());
}

void PgKeyStorage::update(const std::function<void(std::vector<privacy::ApiKey>&)>& change) {
  std::lock_guard lock(mutex_);
  auto& c = connection();
  shared_write(c, [&](int64_t seq) {
    auto keys = read_keys(c, where());  // under the write lock: nobody else changes them meanwhile
    change(keys);
    c.exec("DELETE FROM api_keys");
    for (const auto& k : keys)
      c.exec("INSERT INTO api_keys(id, name, role, user_id, created, revoked, hash) VALUES ($1,$2,$3,$4,$5,$6,$7)",
             {Param::text(k.id), Param::text(k.name), Param::text(privacy::role_name(k.role)), Param::text(k.user),
              Param::of(k.created), Param::text(k.revoked ? "true" : "false"), Param::text(k.hash)});
    record_change(c, seq, "keys");
  });
  ++version_;
}

void PgKeyStorage::refresh() {
  std::lock_guard lock(mutex_);
  try {
    // The newest "keys" change: a new one means the keys changed (a pruned log reads as one too,
    // which costs a reload).
    const int64_t newest = connection().exec("SELECT coalesce(max(seq), 0) FROM changes WHERE what = 'keys'").int64(0, 0);
    if (newest != last_seen_) {
      last_seen_ = newest;
      ++version_;
    }
  } catch (const std::exception&) {
    conn_.reset();  // the next call connects again; until then the keys as last read
  }
}

// ---- PgAuditStorage --------------------------------------------------------------------------

// "audit" in ASCII: the key of the lock appends take.
constexpr const char* kAuditLock = "418430396788";

PgAuditStorage::PgAuditStorage(const std::string& url)
    : conn_(migrated_connection(url)), where_(printable_location(url) + " (table audit_log)") {}
PgAuditStorage::~PgAuditStorage() = default;

nlohmann::json PgAuditStorage::append(const std::function<nlohmann::json(const Head&)>& make) {
  nlohmann::json entry;
  in_transaction(*conn_, [&] {
    conn_->exec(fmt::format("SELECT pg_advisory_xact_lock({})", kAuditLock));
    entry = make(head());
    const int64_t seq = entry.at("seq").get<int64_t>();
    conn_->exec("INSERT INTO audit_log(seq, entry) VALUES ($1, $2)", {Param::of(seq), Param::text(entry.dump())});
    conn_->exec("DELETE FROM audit_head");
    conn_->exec("INSERT INTO audit_head(seq, hash) VALUES ($1, $2)", {Param::of(seq), Param::text(entry.at("hash").get<std::string>())});
  });
  return entry;
}

privacy::AuditStorage::Head PgAuditStorage::head() const {
  Head h;
  const auto q = conn_->exec("SELECT seq, hash FROM audit_head");
  if (q.rows()) {
    h.seq = q.int64(0, 0);
    h.hash = q.text(0, 1);
  }
  return h;
}

bool PgAuditStorage::exists() const {
  return conn_->exec("SELECT (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM audit_head)").int64(0, 0) > 0;
}

void PgAuditStorage::for_each(const std::function<void(const std::string& line)>& fn) const {
  conn_->copy_out("COPY (SELECT entry FROM audit_log ORDER BY seq) TO STDOUT", [&](std::string_view line) {
    const auto fields = pg::copy_fields(line);
    fn(fields.empty() || !fields[0] ? std::string() : *fields[0]);
  });
}

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
    c.everyone = rows.null(i, 2);
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
    : url_(url), conn_(std::make_unique<pg::Connection>(url)), default_budget_(default_budget) {}
PgBudgetLedger::~PgBudgetLedger() = default;

pg::Connection& PgBudgetLedger::connection() const {
  if (!conn_->connected()) conn_ = std::make_unique<pg::Connection>(url_);  // the database came back
  return *conn_;
}

void PgBudgetLedger::set_budget(const std::string& dataset, const std::string& analyst, double epsilon) {
  if (!(epsilon >= 0 && epsilon <= 1000)) throw std::invalid_argument("a budget must be between 0 and 1000");
  connection().exec("INSERT INTO dp_ledger(dataset, analyst, budget, time) VALUES ($1, $2, $3, $4)",
                    {Param::text(dataset), Param::text(analyst), Param::of(epsilon), Param::of(rules::now_seconds())});
}

namespace {

double budget_on(pg::Connection& c, const std::string& dataset, const std::string& analyst, double fallback) {
  const auto q = c.exec("SELECT budget FROM dp_ledger WHERE dataset=$1 AND analyst=$2 AND budget IS NOT NULL ORDER BY seq DESC LIMIT 1",
                        {Param::text(dataset), Param::text(analyst)});
  return q.rows() ? q.real(0, 0) : fallback;
}

// Summed in entry order, as the file ledger sums them: the same total to the last bit.
double spent_on(pg::Connection& c, const std::string& dataset, const std::string& analyst) {
  double total = 0;
  const auto q = c.exec("SELECT spent FROM dp_ledger WHERE dataset=$1 AND analyst=$2 AND spent IS NOT NULL ORDER BY seq",
                        {Param::text(dataset), Param::text(analyst)});
  for (int i = 0; i < q.rows(); ++i) total += q.real(i, 0);
  return total;
}

}  // namespace

double PgBudgetLedger::budget(const std::string& dataset, const std::string& analyst) const {
  return budget_on(connection(), dataset, analyst, default_budget_);
}

double PgBudgetLedger::spent(const std::string& dataset, const std::string& analyst) const {
  return spent_on(connection(), dataset, analyst);
}

void PgBudgetLedger::spend(const std::string& dataset, const std::string& analyst, double epsilon, const std::string& query) {
  // One transaction under one lock, on one connection (a lost one fails the charge, never
  // finishes it elsewhere): two servers charging the same account at once are one after the
  // other, and the second sees the first's charge.
  auto& c = connection();
  in_transaction(c, [&] {
    c.exec(fmt::format("SELECT pg_advisory_xact_lock({})", kBudgetLock));
    privacy::require_budget(dataset, analyst, budget_on(c, dataset, analyst, default_budget_), spent_on(c, dataset, analyst), epsilon);
    c.exec("INSERT INTO dp_ledger(dataset, analyst, spent, query, time) VALUES ($1, $2, $3, $4, $5)",
           {Param::text(dataset), Param::text(analyst), Param::of(epsilon), Param::text(query), Param::of(rules::now_seconds())});
  });
}

std::vector<privacy::BudgetLedger::Account> PgBudgetLedger::accounts(const std::string& dataset) const {
  std::map<std::string, Account> by_analyst;
  const auto q =
      connection().exec("SELECT analyst, budget, spent, time FROM dp_ledger WHERE dataset=$1 ORDER BY seq", {Param::text(dataset)});
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

std::unique_ptr<privacy::ApiKeyStore> open_api_keys(const std::string& store_location, const std::string& path,
                                                    privacy::Argon2Cost cost) {
  if (!path.empty()) return std::make_unique<privacy::ApiKeyStore>(path, cost);
  if (api_keys_in_database(store_location)) return std::make_unique<privacy::ApiKeyStore>(std::make_unique<PgKeyStorage>(store_location), cost);
  return std::make_unique<privacy::ApiKeyStore>(privacy::default_api_keys_path(), cost);
}

bool api_keys_in_database(const std::string& store_location) {
  const char* env = std::getenv("PERSONA_API_KEYS");
  return !(env && *env) && is_postgres_location(store_location);
}

privacy::AuditLog open_audit_log(const std::string& store_location, const privacy::KeyRing& keys, const std::string& path) {
  const char* env = std::getenv("PERSONA_AUDIT_LOG");
  if (path.empty() && !(env && *env) && is_postgres_location(store_location))
    return privacy::AuditLog(std::make_unique<PgAuditStorage>(store_location), keys);
  return privacy::AuditLog(path.empty() ? privacy::default_audit_log_path() : path, keys);
}

std::unique_ptr<privacy::BudgetLedger> open_budget_ledger(const std::string& location, const std::string& path) {
  if (path.empty() && is_postgres_location(location)) {
    open_store(location);  // brings the database to the schema that has the ledger
    return std::make_unique<PgBudgetLedger>(location);
  }
  return std::make_unique<privacy::JsonlBudgetLedger>(path.empty() ? local_base(location) + ".dp-ledger.jsonl" : path);
}

}  // namespace persona::store
