// The embedded default store: one SQLite file in WAL mode, batched transactions, a versioned
// schema migrated forward on open.
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/core/id_map.h"
#include "persona/privacy/keys.h"
#include "persona/store/store.h"
#include "persona/store/store_rules.h"

namespace persona::store {
namespace {

// Schema migrations, applied in order; the index + 1 is the schema version. Never edit one that
// has shipped: add a new one.
const std::vector<const char*> kMigrations = {
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users(
  id INTEGER PRIMARY KEY, ext_id TEXT NOT NULL UNIQUE,
  age INTEGER, gender TEXT, region TEXT, signup_ts INTEGER,
  attrs TEXT);  -- a JSON object of free-form attributes
CREATE TABLE items(
  id INTEGER PRIMARY KEY, ext_id TEXT NOT NULL UNIQUE,
  title TEXT, category TEXT, brand TEXT, price REAL, text TEXT);
CREATE TABLE event_types(code INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO event_types VALUES (0,'view'),(1,'click'),(2,'cart'),(3,'purchase'),(4,'return'),
  (5,'rate'),(6,'review'),(7,'search'),(8,'favourite');
CREATE TABLE ingests(
  id INTEGER PRIMARY KEY, source TEXT NOT NULL, path TEXT NOT NULL,
  content_hash TEXT NOT NULL, mapping_hash TEXT NOT NULL, status TEXT NOT NULL,
  last_line INTEGER NOT NULL DEFAULT 0, started INTEGER NOT NULL, finished INTEGER,
  summary TEXT, UNIQUE(content_hash, mapping_hash));
CREATE TABLE events(
  id INTEGER PRIMARY KEY, user INTEGER NOT NULL REFERENCES users(id),
  item INTEGER NOT NULL REFERENCES items(id), type INTEGER NOT NULL REFERENCES event_types(code),
  quantity REAL NOT NULL, value REAL, ts INTEGER NOT NULL, session TEXT,
  ingest INTEGER NOT NULL REFERENCES ingests(id), line INTEGER NOT NULL, UNIQUE(ingest, line));
CREATE INDEX events_user_ts ON events(user, ts);
CREATE INDEX events_item ON events(item);
CREATE TABLE texts(
  id INTEGER PRIMARY KEY, user INTEGER REFERENCES users(id), item INTEGER REFERENCES items(id),
  kind TEXT NOT NULL, language TEXT, body TEXT NOT NULL, label TEXT, category TEXT,
  sentiment REAL, ts INTEGER,
  ingest INTEGER NOT NULL REFERENCES ingests(id), line INTEGER NOT NULL, UNIQUE(ingest, line));
CREATE TABLE rejects(
  ingest INTEGER NOT NULL REFERENCES ingests(id), line INTEGER NOT NULL, rule TEXT NOT NULL,
  field TEXT, value TEXT, reason TEXT, raw TEXT, flagged INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(ingest, line)) WITHOUT ROWID;
)sql",
    // 2: user profiles (persona profile build).
    R"sql(
CREATE TABLE profiles(user TEXT PRIMARY KEY, profile TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX texts_user ON texts(user);
)sql",
    // 3: item availability (NULL: unknown, counted as available).
    R"sql(
ALTER TABLE items ADD COLUMN available INTEGER;
)sql",
    // 4: the assistant's knowledge graph.
    R"sql(
CREATE TABLE kg_entities(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL);
CREATE TABLE kg_triples(subject INTEGER NOT NULL REFERENCES kg_entities(id), relation TEXT NOT NULL,
  object INTEGER REFERENCES kg_entities(id), literal TEXT);
)sql",
    // 5: other names of items (translated titles), for the assistant's entity linking.
    R"sql(
ALTER TABLE items ADD COLUMN aliases TEXT;
)sql",
    // 6: consent (NULL: not stated, counted as given).
    R"sql(
ALTER TABLE users ADD COLUMN consent_personalisation INTEGER;
ALTER TABLE users ADD COLUMN consent_analytics INTEGER;
)sql",
    // 7: category names in other languages (the dashboard's Chinese).
    R"sql(
ALTER TABLE items ADD COLUMN category_aliases TEXT;
)sql",
    // 8: nothing on SQLite. PostgreSQL's version 8 adds what several servers of one database
    // share (the change log their caches follow, the privacy-budget ledger); a SQLite store has
    // one server, which keeps its ledger beside the file.
    "",
    // 9: nothing on SQLite. PostgreSQL's version 9 shares the dashboard's aggregates between servers.
    "",
    // 10: the keys of stream entries stored (persona consume), so that none is stored twice.
    R"sql(
-- Streams by number: the keys are many, and a stream's name is long.
CREATE TABLE streams(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
-- A batch's keys in one row per part: its lowest and highest, and all of them packed (16 bytes
-- each, sorted). Rows wholly below what the stream can still deliver are deleted.
CREATE TABLE stream_batches(stream INTEGER NOT NULL, part TEXT NOT NULL, first_hi INTEGER NOT NULL,
  first_lo INTEGER NOT NULL, last_hi INTEGER NOT NULL, last_lo INTEGER NOT NULL, keys BLOB NOT NULL);
CREATE INDEX stream_batches_last ON stream_batches(stream, part, last_hi, last_lo);
)sql",
    // 11: feedback on served lists (POST /v1/feedback), which experiments are analysed from.
    R"sql(
CREATE TABLE feedback(request_id TEXT NOT NULL, item TEXT NOT NULL, kind TEXT NOT NULL, user_id TEXT NOT NULL,
  experiment TEXT, variant TEXT, model TEXT, position INTEGER, value REAL, ts INTEGER NOT NULL,
  PRIMARY KEY(request_id, item, kind)) WITHOUT ROWID;
CREATE INDEX feedback_experiment ON feedback(experiment, variant, user_id, ts);
CREATE INDEX feedback_user ON feedback(user_id);
)sql",
};

using rules::consent_column;
using rules::now_seconds;
using rules::row_identity;

// A prepared statement. Every path resets it before it is used again: a statement left stepped
// (a loop that threw, a failed step) refuses new bindings with SQLITE_MISUSE, which SQLite only
// reports through the return code, and the next step would silently run with the old values
// (seen: one failed insert made every later insert of a new user fail the same way).
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      throw Error(fmt::format("store: cannot prepare statement: {}", sqlite3_errmsg(db)));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, int64_t v) { return check(sqlite3_bind_int64(ready(), i, v)); }
  Statement& bind(int i, double v) { return check(sqlite3_bind_double(ready(), i, v)); }
  Statement& bind(int i, const std::string& v) {
    return check(sqlite3_bind_text(ready(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Statement& bind_null(int i) { return check(sqlite3_bind_null(ready(), i)); }
  // Bytes that must outlive the statement's next step (not copied).
  Statement& bind_blob(int i, const std::string& v) {
    return check(sqlite3_bind_blob(ready(), i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  }
  // Empty strings and nullopt are stored as NULL: "no value".
  Statement& bind_text_or_null(int i, const std::string& v) { return v.empty() ? bind_null(i) : bind(i, v); }
  template <typename T>
  Statement& bind_opt(int i, const std::optional<T>& v) {
    if (v) return bind(i, static_cast<std::conditional_t<std::is_integral_v<T>, int64_t, double>>(*v));
    return bind_null(i);
  }
  bool step() {
    stepped_ = true;
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    const std::string message = sqlite3_errmsg(db_);
    reset();  // usable again at once, whatever the caller does with the error
    throw Error(fmt::format("store: {}", message), {}, rc == SQLITE_FULL ? "the disk is full" : "");
  }
  void run() {
    step();
    reset();
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    stepped_ = false;
  }
  int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }
  bool null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::optional<int64_t> opt_integer(int col) const { return null(col) ? std::nullopt : std::optional(integer(col)); }
  std::optional<double> opt_real(int col) const { return null(col) ? std::nullopt : std::optional(real(col)); }
  std::optional<bool> opt_bool(int col) const { return null(col) ? std::nullopt : std::optional(integer(col) != 0); }
  std::string_view blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string_view();
  }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
  }

 private:
  // The statement, reset first when a step left it mid-way (new bindings start a new use).
  sqlite3_stmt* ready() {
    if (stepped_) {
      sqlite3_reset(stmt_);
      stepped_ = false;
    }
    return stmt_;
  }
  Statement& check(int rc) {
    if (rc != SQLITE_OK) throw Error(fmt::format("store: cannot bind a value: {}", sqlite3_errstr(rc)));
    return *this;
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  bool stepped_ = false;
};

// A read transaction: every statement inside sees the store as of its first read (WAL keeps
// writers going meanwhile). Nested inside a transaction already open, it does nothing.
class ReadSnapshot {
 public:
  explicit ReadSnapshot(sqlite3* db) : db_(db), owns_(sqlite3_get_autocommit(db) != 0) {
    if (owns_ && sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK)
      throw Error(fmt::format("store: cannot begin a read: {}", sqlite3_errmsg(db_)));
  }
  ~ReadSnapshot() {
    if (owns_) sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  }
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;

 private:
  sqlite3* db_;
  bool owns_;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(const std::string& path, const StoreOptions& options) : path_(path), sealer_(path, options.keys) {
    // Memory statistics cost a global mutex on every allocation (5% of an ingest); we never read
    // them. Must precede sqlite3_initialize; harmless (SQLITE_MISUSE) if something came first.
    static const bool configured = [] { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK; }();
    (void)configured;
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw Error(fmt::format("cannot open the store: {}", message), {path});
    }
    sqlite3_busy_timeout(db_, 10000);
    try {
      // Switching a new file to WAL takes an exclusive lock; SQLite answers BUSY at once, without
      // its busy handler, when another connection opening the same new store holds a shared one
      // (seen with four writers creating one store): wait for it as the handler would.
      for (int tries = 0;; ++tries) {
        const int rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
        if (rc == SQLITE_OK) break;
        if ((rc & 0xff) != SQLITE_BUSY || tries >= 2000) exec("PRAGMA journal_mode=WAL");  // throws the reason
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      exec("PRAGMA synchronous=NORMAL");
      exec("PRAGMA foreign_keys=OFF");  // ids come from our own maps; checked by tests instead
      exec("PRAGMA temp_store=MEMORY");
      // Index updates of a large ingest touch pages all over the events indexes: a 64 MiB page
      // cache keeps them out of read() calls (measured: a 1M-event ingest 1.5x faster).
      exec("PRAGMA cache_size=-65536");
      migrate();
      load_ids();
      // Sealing is an explicit act (reseal(): `persona keys init --store`, `keys reseal`, `keys
      // rotate --store`): a key at hand used to mark any store it opened "sealed", even `stats`,
      // while the texts already in it stayed plain.
      sealer_.sealed = get_meta("sealed").value_or(false) == true;
    } catch (const Error& e) {
      sqlite3_close(db_);
      db_ = nullptr;
      throw Error(e.reason(), {path}, e.hint().empty() ? "is this a Persona store?" : e.hint());
    }
  }
  EventColumns events(Use use) override { return read_events(nullptr, use); }
  EventColumns events_since(Use use, int64_t since) override { return read_events(nullptr, use, since); }
  EventColumns events_of(const std::vector<std::string>& users) override { return read_events(&users, Use::Any); }
  EventColumns read_events(const std::vector<std::string>* only, Use use,
                           int64_t since = std::numeric_limits<int64_t>::min());

  EventColumns history(const std::string& user) override {
    // By SQL, not the id map: another connection (a server's ingest) may have added the user.
    EventColumns e;
    e.user_ids = {user};
    if (!read_history_)
      read_history_ = std::make_unique<Statement>(
          db_, "SELECT e.type, e.quantity, e.value, e.ts, i.ext_id, coalesce(i.category, ''), i.price FROM events e "
               "JOIN items i ON i.id=e.item WHERE e.user=(SELECT id FROM users WHERE ext_id=?) ORDER BY e.ts, e.id");
    Statement& q = *read_history_;
    q.bind(1, user);
    IdMap items;
    while (q.step()) {
      const auto item = items.intern(q.text(4));
      if (item == e.item_ids.size()) {
        e.item_ids.push_back(q.text(4));
        e.item_categories.push_back(q.text(5));
        e.item_prices.push_back(q.null(6) ? std::numeric_limits<double>::quiet_NaN() : q.real(6));
      }
      e.user.push_back(0);
      e.item.push_back(static_cast<int32_t>(item));
      e.session.push_back(-1);
      e.type.push_back(static_cast<uint8_t>(q.integer(0)));
      e.quantity.push_back(q.real(1));
      e.value.push_back(q.null(2) ? std::numeric_limits<double>::quiet_NaN() : q.real(2));
      e.timestamp.push_back(q.integer(3));
    }
    q.reset();
    e.item_brands.resize(e.item_ids.size());
    e.item_texts.resize(e.item_ids.size());
    return e;
  }

  Consent consent(const std::string& user) override {
    Statement q(db_, "SELECT consent_personalisation, consent_analytics FROM users WHERE ext_id=?");
    q.bind(1, user);
    Consent c;
    if (q.step()) {
      c.personalisation = q.null(0) || q.integer(0) != 0;
      c.analytics = q.null(1) || q.integer(1) != 0;
    }
    return c;
  }

  std::vector<std::string> users_refusing(Use use) override {
    std::vector<std::string> out;
    if (use == Use::Any) return out;
    Statement q(db_, fmt::format("SELECT ext_id FROM users WHERE {}=0 ORDER BY id", consent_column(use)).c_str());
    while (q.step()) out.push_back(q.text(0));
    return out;
  }

  Erasure erase_user(const std::string& user) override;
  // Inside the caller's transaction; answers how many rows were new.
  int64_t insert_feedback(const std::vector<Feedback>& rows) {
    if (rows.empty()) return 0;
    int64_t added = 0;
    Statement q(db_, "INSERT OR IGNORE INTO feedback(request_id, item, kind, user_id, experiment, variant, model, "
                     "position, value, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (const auto& f : rows) {
      q.bind(1, f.request_id).bind(2, f.item).bind(3, f.kind).bind(4, f.user);
      q.bind_text_or_null(5, f.experiment).bind_text_or_null(6, f.variant).bind_text_or_null(7, f.model);
      if (f.position >= 0) q.bind(8, f.position); else q.bind_null(8);
      if (f.value != 0) q.bind(9, f.value); else q.bind_null(9);
      q.bind(10, f.ts).run();
      added += sqlite3_changes(db_);
    }
    return added;
  }
  int64_t put_feedback(const std::vector<Feedback>& rows) override {
    if (rows.empty()) return 0;
    int64_t added = 0;
    exec("BEGIN IMMEDIATE");
    try {
      added = insert_feedback(rows);
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    return added;
  }
  void for_each_feedback_tally(const std::string& experiment, const std::function<void(const FeedbackTally&)>& fn) override {
    Statement q(db_, rules::feedback_tally_sql("?").c_str());
    q.bind(1, experiment);
    while (q.step())
      fn({q.text(0), q.text(1), q.integer(2), q.integer(3), q.integer(4), q.integer(5), q.integer(6), q.integer(7), q.real(8)});
  }
  int64_t reseal() override;
  bool sealed() override {
    refresh_sealed();
    return sealer_.sealed;
  }
  void refresh_sealed() { sealer_.sealed = get_meta("sealed").value_or(false) == true; }

  ChangeMark change_mark() override {
    ChangeMark m;
    Statement e(db_, "SELECT coalesce(max(id), 0) FROM events");
    if (e.step()) m.event = e.integer(0);
    Statement t(db_, "SELECT coalesce(max(id), 0) FROM texts");
    if (t.step()) m.text = t.integer(0);
    return m;
  }

  int64_t generation() override {
    const auto n = get_meta("generation");
    return n && n->is_number_integer() ? n->get<int64_t>() : 0;
  }

  std::vector<std::string> users_changed_since(const ChangeMark& since) override {
    Statement q(db_, "SELECT ext_id FROM users WHERE id IN (SELECT user FROM events WHERE id > ? "
                     "UNION SELECT user FROM texts WHERE id > ? AND user IS NOT NULL) ORDER BY ext_id");
    q.bind(1, since.event).bind(2, since.text);
    std::vector<std::string> out;
    while (q.step()) out.push_back(q.text(0));
    return out;
  }

  bool put_profiles(const std::vector<std::pair<std::string, std::string>>& rows, bool replace_all,
                    int64_t erasures_before) override {
    exec("BEGIN IMMEDIATE");
    try {
      // Under the write lock: no erasure commits between this check and the profiles' commit.
      if (erasures_before >= 0 && erasure_count() != erasures_before) {
        exec("ROLLBACK");
        return false;
      }
      if (replace_all) exec("DELETE FROM profiles");
      Statement q(db_, "INSERT OR REPLACE INTO profiles(user, profile) VALUES (?, ?)");
      for (const auto& [user, json] : rows) {
        q.bind(1, user).bind(2, json);
        q.run();
        q.reset();
      }
      bump_generation();  // the RFM grid and segments' users are read from the profiles
      exec("COMMIT");
      return true;
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  std::optional<std::string> profile(const std::string& user) override {
    Statement q(db_, "SELECT profile FROM profiles WHERE user=?");
    q.bind(1, user);
    if (!q.step()) return std::nullopt;
    return q.text(0);
  }

  void for_each_profile(const std::function<void(const std::string&, const std::string&)>& fn) override {
    Statement q(db_, "SELECT user, profile FROM profiles ORDER BY user");
    while (q.step()) fn(q.text(0), q.text(1));
  }

  void put_graph(const Graph& g) override {
    exec("BEGIN IMMEDIATE");
    try {
      exec("DELETE FROM kg_triples; DELETE FROM kg_entities;");
      Statement e(db_, "INSERT INTO kg_entities(id, name, type) VALUES (?, ?, ?)");
      for (size_t i = 0; i < g.entities.size(); ++i)
        e.bind(1, static_cast<int64_t>(i)).bind(2, g.entities[i].name).bind(3, g.entities[i].type).run();
      Statement q(db_, "INSERT INTO kg_triples(subject, relation, object, literal) VALUES (?, ?, ?, ?)");
      for (const auto& tr : g.triples) {
        q.bind(1, tr.subject).bind(2, tr.relation);
        q.bind_opt(3, tr.object >= 0 ? std::optional<int64_t>(tr.object) : std::nullopt);
        q.bind_text_or_null(4, tr.literal).run();
      }
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  std::vector<Item> items() override {
    Statement q(db_, "SELECT ext_id, title, category, brand, price, text, available, aliases, category_aliases FROM items ORDER BY id");
    std::vector<Item> out;
    while (q.step()) {
      Item it;  // text() of NULL is "": no value
      it.id = q.text(0);
      it.title = q.text(1);
      it.category = q.text(2);
      it.brand = q.text(3);
      it.price = q.opt_real(4);
      it.text = q.text(5);
      it.available = q.opt_bool(6);
      it.aliases = q.text(7);
      it.category_aliases = q.text(8);
      out.push_back(std::move(it));
    }
    return out;
  }

  std::vector<User> users(Use use) override {
    std::string sql = "SELECT ext_id, age, gender, region, signup_ts, consent_personalisation, consent_analytics FROM users";
    if (use != Use::Any) sql += fmt::format(" WHERE coalesce({}, 1) != 0", consent_column(use));
    sql += " ORDER BY id";
    Statement q(db_, sql.c_str());
    std::vector<User> out;
    while (q.step()) {
      User u;
      u.id = q.text(0);
      u.age = q.opt_integer(1);
      u.gender = q.text(2);
      u.region = q.text(3);
      u.signup_time = q.opt_integer(4);
      u.consent_personalisation = q.opt_bool(5);
      u.consent_analytics = q.opt_bool(6);
      out.push_back(std::move(u));
    }
    return out;
  }

  Graph graph() override {
    Graph g;
    Statement e(db_, "SELECT name, type FROM kg_entities ORDER BY id");
    while (e.step()) g.entities.push_back({e.text(0), e.text(1)});
    Statement q(db_, "SELECT subject, relation, object, literal FROM kg_triples ORDER BY rowid");
    while (q.step()) g.triples.push_back({q.integer(0), q.text(1), q.null(2) ? -1 : q.integer(2), q.null(3) ? "" : q.text(3)});
    return g;
  }

  std::vector<std::string> unavailable_items() override {
    Statement q(db_, "SELECT ext_id FROM items WHERE available = 0 ORDER BY id");
    std::vector<std::string> out;
    while (q.step()) out.push_back(q.text(0));
    return out;
  }

  void for_each_text(Use use, const std::function<void(const Text&)>& fn) override;
  ~SqliteStore() override {
    insert_user_.reset();  // statements are finalized before the connection closes
    insert_item_.reset();
    read_attrs_.reset();
    write_attrs_.reset();
    read_history_.reset();
    if (db_) sqlite3_close(db_);
  }

  IngestRecord begin_ingest(const std::string& source, const std::string& path, const std::string& content_hash,
                            const std::string& mapping_hash) override {
    // Look and insert in one write transaction: two processes starting the same file at once
    // find one record, not a UNIQUE constraint failure.
    exec("BEGIN IMMEDIATE");
    try {
      int64_t id = 0;
      bool found = false;
      {
        Statement q(db_, "SELECT id FROM ingests WHERE content_hash=? AND mapping_hash=?");
        q.bind(1, content_hash).bind(2, mapping_hash);
        if (q.step()) found = true, id = q.integer(0);
      }
      if (!found) {
        Statement ins(db_, "INSERT INTO ingests(source, path, content_hash, mapping_hash, status, started) "
                           "VALUES (?,?,?,?, 'running', ?)");
        ins.bind(1, source).bind(2, path).bind(3, content_hash).bind(4, mapping_hash).bind(5, now_seconds());
        ins.run();
        id = sqlite3_last_insert_rowid(db_);
      }
      IngestRecord r = ingest_by_id(id);
      if (r.status == "failed") {
        // A failed run kept too little and was not recorded as done: start it again, afresh.
        Statement(db_, "DELETE FROM rejects WHERE ingest=?").bind(1, id).run();
        Statement restart(db_, "UPDATE ingests SET status='running', last_line=0, started=?, finished=NULL, "
                               "summary=NULL WHERE id=?");
        restart.bind(1, now_seconds()).bind(2, id).run();
        r = ingest_by_id(id);
        found = false;
      }
      exec("COMMIT");
      r.resumed = found && r.status == "running";
      return r;
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  void write_batch(int64_t ingest, const Batch& batch, int64_t last_line) override {
    ++batches_;
    exec("BEGIN IMMEDIATE");
    try {
      // Read inside the write transaction: another process may have sealed the store since this
      // connection opened it, and nothing may be written plain into a sealed store.
      refresh_sealed();
      sealer_.require_key_to_write();
      sync_ids();
      write_users(batch.users);
      write_items(batch.items);
      write_events(ingest, batch.events);
      write_texts(ingest, batch.texts);
      write_rejects(ingest, batch.rejects);
      insert_feedback(batch.feedback);
      write_stream_entries(batch.stream);
      Statement cp(db_, "UPDATE ingests SET last_line=? WHERE id=?");
      cp.bind(1, last_line).bind(2, ingest).run();
      bump_generation();
      crash_.before(batches_);
      exec("COMMIT");
      crash_.after(batches_);
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      try {
        load_ids();  // forget ids handed out in the rolled-back transaction
      } catch (const Error&) {
        ids_version_ = -1;  // read them again at the next write
      }
      throw;
    }
  }

  // The batches whose span meets this batch's, one read per part (usually none: a batch's keys
  // are newer than every stored one).
  std::vector<bool> stored_stream_entries(const StreamEntries& entries) override {
    std::vector<bool> out(entries.keys.size(), false);
    Statement q(db_, "SELECT keys FROM stream_batches WHERE stream=(SELECT id FROM streams WHERE name=?) AND part=? "
                     "AND (last_hi, last_lo) >= (?, ?) AND (first_hi, first_lo) <= (?, ?)");
    for (const auto& [part, range] : rules::stream_key_spans(entries.keys)) {
      q.bind(1, entries.stream).bind(2, part).bind(3, range.first.hi).bind(4, range.first.lo);
      q.bind(5, range.second.hi).bind(6, range.second.lo);
      while (q.step()) rules::mark_stored(entries.keys, part, q.blob(0), out);
      q.reset();
    }
    return out;
  }

  void prune_stream_entries(const std::string& stream, const StreamEntryKey& below) override {
    Statement q(db_, "DELETE FROM stream_batches WHERE stream=(SELECT id FROM streams WHERE name=?) AND part=? "
                     "AND (last_hi, last_lo) < (?, ?)");
    q.bind(1, stream).bind(2, below.part).bind(3, below.hi).bind(4, below.lo).run();
  }

  void finish_ingest(int64_t ingest, const nlohmann::json& summary) override {
    Statement q(db_, "UPDATE ingests SET status='complete', finished=?, summary=? WHERE id=?");
    q.bind(1, now_seconds()).bind(2, summary.dump()).bind(3, ingest).run();
  }

  void fail_ingest(int64_t ingest, const nlohmann::json& summary) override {
    exec("BEGIN IMMEDIATE");
    try {
      Statement(db_, "DELETE FROM events WHERE ingest=?").bind(1, ingest).run();
      Statement(db_, "DELETE FROM texts WHERE ingest=?").bind(1, ingest).run();
      Statement q(db_, "UPDATE ingests SET status='failed', last_line=0, finished=?, summary=? WHERE id=?");
      q.bind(1, now_seconds()).bind(2, summary.dump()).bind(3, ingest).run();
      bump_generation();
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  std::vector<IngestRecord> ingests() override {
    std::vector<IngestRecord> out;
    Statement q(db_, "SELECT id FROM ingests ORDER BY id");
    std::vector<int64_t> ids;
    while (q.step()) ids.push_back(q.integer(0));
    for (auto id : ids) out.push_back(ingest_by_id(id));
    return out;
  }

  void for_each_reject(int64_t ingest, const std::function<void(const RejectRow&)>& fn) override {
    Statement q(db_, "SELECT line, rule, field, value, reason, raw, flagged FROM rejects WHERE ingest=? ORDER BY line");
    q.bind(1, ingest);
    while (q.step()) {
      const int64_t line = q.integer(0);
      fn({line, q.text(1), q.text(2), sealer_.open(q.text(3), row_identity("rejects.value", ingest, line)), q.text(4),
          sealer_.open(q.text(5), row_identity("rejects.raw", ingest, line)), q.integer(6) != 0});
    }
  }

  DatasetStats stats(int top_n) override;

  std::vector<double> numeric_values(const std::string& field) override {
    const char* query = rules::numeric_field_query(field);
    std::vector<double> out;
    Statement q(db_, query);
    while (q.step()) out.push_back(q.real(0));
    return out;
  }

  void put_meta(const std::string& key, const nlohmann::json& value) override {
    Statement q(db_, "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value");
    q.bind(1, key).bind(2, value.dump()).run();
  }

  std::optional<nlohmann::json> get_meta(const std::string& key) override {
    Statement q(db_, "SELECT value FROM meta WHERE key=?");
    q.bind(1, key);
    if (!q.step()) return std::nullopt;
    return nlohmann::json::parse(q.text(0), nullptr, false);
  }

  void export_table(const StoreTable& table, const std::function<void(const StoreRow&)>& fn) override {
    const ReadSnapshot snapshot(db_);
    std::string columns;
    for (const auto& c : table.columns) columns += fmt::format("{}{}", columns.empty() ? "" : ", ", column_of(table.name, c.name));
    Statement q(db_, fmt::format("SELECT {} FROM {} ORDER BY {}", columns, table.name, column_of(table.name, table.order)).c_str());
    StoreRow row(table.columns.size());
    while (q.step()) {
      for (size_t i = 0; i < table.columns.size(); ++i) {
        const int col = static_cast<int>(i);
        if (q.null(col)) row[i].reset();
        else if (table.columns[i].kind == 'I') row[i] = std::to_string(q.integer(col));
        else if (table.columns[i].kind == 'R') row[i] = fmt::format("{}", q.real(col));
        else row[i] = q.text(col);
      }
      fn(row);
    }
  }

  void import_rows(const StoreTable& table, const std::vector<StoreRow>& rows) override {
    std::string columns, marks;
    for (const auto& c : table.columns) {
      columns += fmt::format("{}{}", columns.empty() ? "" : ", ", column_of(table.name, c.name));
      marks += marks.empty() ? "?" : ", ?";
    }
    exec("BEGIN IMMEDIATE");
    try {
      Statement q(db_, fmt::format("INSERT INTO {}({}) VALUES ({})", table.name, columns, marks).c_str());
      for (const auto& row : rows) {
        for (size_t i = 0; i < row.size(); ++i) {
          const int col = static_cast<int>(i) + 1;
          if (!row[i]) q.bind_null(col);
          else if (table.columns[i].kind == 'I') q.bind(col, static_cast<int64_t>(std::stoll(*row[i])));
          else if (table.columns[i].kind == 'R') q.bind(col, std::strtod(row[i]->c_str(), nullptr));
          else q.bind(col, *row[i]);
        }
        q.run();
      }
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    // Only the id tables and meta change what this connection keeps (a copy of a large store
    // imports its events in many pieces: the maps are not read again for each).
    const std::string_view name = table.name;
    if (name == "users" || name == "items") load_ids();
    if (name == "meta") refresh_sealed();
  }

  int schema_version() override {
    Statement q(db_, "PRAGMA user_version");
    q.step();
    return static_cast<int>(q.integer(0));
  }

 private:
  // A canonical column's name here (the position of a graph triple is its rowid).
  static std::string column_of(std::string_view table, std::string_view column) {
    if (table == "kg_triples" && column == "position") return "rowid";
    return std::string(column);
  }

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string message = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      throw Error(fmt::format("store: {}", message));
    }
  }

  // Inside one write transaction from the version check on: two processes opening a new store
  // at once must not both create its tables ("table meta already exists").
  void migrate() {
    const int want = static_cast<int>(kMigrations.size());
    if (schema_version() == want) return;  // the usual case, without taking the write lock
    exec("BEGIN IMMEDIATE");
    try {
      const int have = schema_version();
      if (have > want)
        throw Error(fmt::format("the store has schema version {}, newer than this Persona knows ({})", have, want), {},
                    "upgrade Persona");
      for (int v = have; v < want; ++v) exec(kMigrations[v]);
      exec(fmt::format("PRAGMA user_version={}", want).c_str());
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  // The dense id maps, read whole. `ids_version_` is read first: a commit by another connection
  // in between makes the next sync_ids() read again (never the other way round).
  void load_ids() {
    ids_version_ = scalar("PRAGMA data_version");
    erasures_seen_ = erasure_count();
    users_ = IdMap();
    items_ = IdMap();
    load_map("SELECT id, ext_id FROM users WHERE id >= ? ORDER BY id", users_);
    load_map("SELECT id, ext_id FROM items WHERE id >= ? ORDER BY id", items_);
  }
  // One source of truth for ids is the store itself. Another connection (a second process, or
  // another of a server's pooled connections) may have added users or items, or erased a user,
  // since this one last looked; called inside every write transaction, under SQLite's write lock,
  // so the ids this connection hands out next are the store's next ones. Appended rows are read
  // on their own; an erasure (which renames a row) makes the maps be read again whole.
  void sync_ids() {
    const int64_t version = scalar("PRAGMA data_version");
    if (version == ids_version_) return;  // nobody else has committed since
    if (erasure_count() != erasures_seen_) return load_ids();
    ids_version_ = version;
    load_map("SELECT id, ext_id FROM users WHERE id >= ? ORDER BY id", users_);
    load_map("SELECT id, ext_id FROM items WHERE id >= ? ORDER BY id", items_);
  }
  // Inside a write transaction: the data changed (see Store::generation).
  void bump_generation() {
    exec("INSERT INTO meta(key, value) VALUES ('generation', '1') "
         "ON CONFLICT(key) DO UPDATE SET value=CAST(value AS INTEGER) + 1");
  }
  int64_t erasure_count() override {
    const auto n = get_meta("erasures");
    return n && n->is_number_integer() ? n->get<int64_t>() : 0;
  }
  // Store ids are the dense ids of the in-memory maps: 0..n-1, assigned in order. Reads the rows
  // from the map's size on.
  void load_map(const char* sql, IdMap& map) {
    Statement q(db_, sql);
    q.bind(1, static_cast<int64_t>(map.size()));
    while (q.step()) {
      const auto id = map.intern(q.text(1));
      if (static_cast<int64_t>(id) != q.integer(0))
        throw Error("store ids are not dense (was the store edited by hand?)");
    }
  }

  // The dense id of an external id; a new one is added to its table (inside the caller's
  // transaction) with a statement prepared once per store, not once per new id.
  int64_t dense_id(IdMap& map, std::unique_ptr<Statement>& insert, const char* sql, const std::string& ext) {
    const size_t before = map.size();
    const auto id = map.intern(ext);
    if (map.size() > before) {
      if (!insert) insert = std::make_unique<Statement>(db_, sql);
      insert->bind(1, static_cast<int64_t>(id)).bind(2, ext).run();
    }
    return id;
  }
  int64_t user_id(const std::string& ext) {
    return dense_id(users_, insert_user_, "INSERT INTO users(id, ext_id) VALUES (?, ?)", ext);
  }
  int64_t item_id(const std::string& ext) {
    return dense_id(items_, insert_item_, "INSERT INTO items(id, ext_id) VALUES (?, ?)", ext);
  }

  void write_users(const std::vector<User>& users) {
    if (users.empty()) return;
    Statement q(db_, "UPDATE users SET age=COALESCE(?, age), gender=COALESCE(?, gender), region=COALESCE(?, region), "
                     "signup_ts=COALESCE(?, signup_ts), consent_personalisation=COALESCE(?, consent_personalisation), "
                     "consent_analytics=COALESCE(?, consent_analytics) WHERE id=?");
    for (const auto& u : users) {
      const int64_t id = user_id(u.id);
      q.bind_opt(1, u.age).bind_text_or_null(2, u.gender).bind_text_or_null(3, u.region).bind_opt(4, u.signup_time);
      q.bind_opt(5, u.consent_personalisation).bind_opt(6, u.consent_analytics).bind(7, id).run();
      if (!u.attributes.empty()) merge_attributes(id, u.attributes);
    }
  }

  // Attributes merge into the JSON object already stored (new keys win). Done here, not with
  // SQLite's json_patch, because a sealed object has to be opened first.
  void merge_attributes(int64_t id, const std::vector<std::pair<std::string, std::string>>& attributes) {
    if (!read_attrs_) read_attrs_ = std::make_unique<Statement>(db_, "SELECT attrs FROM users WHERE id=?");
    if (!write_attrs_) write_attrs_ = std::make_unique<Statement>(db_, "UPDATE users SET attrs=? WHERE id=?");
    const std::string identity = row_identity("users.attrs", id);
    std::string stored;
    read_attrs_->bind(1, id);
    if (read_attrs_->step() && !read_attrs_->null(0)) stored = sealer_.open(read_attrs_->text(0), identity);
    read_attrs_->reset();
    write_attrs_->bind(1, sealer_.seal(rules::merged_attributes(stored, attributes), identity)).bind(2, id).run();
  }

  void write_items(const std::vector<Item>& items) {
    if (items.empty()) return;
    Statement q(db_, "UPDATE items SET title=COALESCE(?, title), category=COALESCE(?, category), "
                     "brand=COALESCE(?, brand), price=COALESCE(?, price), text=COALESCE(?, text), "
                     "available=COALESCE(?, available), aliases=COALESCE(?, aliases), "
                     "category_aliases=COALESCE(?, category_aliases) WHERE id=?");
    for (const Item& it : rules::merged_items(items)) {
      const int64_t id = item_id(it.id);
      q.bind_text_or_null(1, it.title).bind_text_or_null(2, it.category).bind_text_or_null(3, it.brand);
      q.bind_opt(4, it.price).bind_text_or_null(5, it.text);
      q.bind_opt(6, it.available ? std::optional<int64_t>(*it.available ? 1 : 0) : std::nullopt);
      q.bind_text_or_null(7, it.aliases).bind_text_or_null(8, it.category_aliases).bind(9, id).run();
    }
  }

  void write_events(int64_t ingest, const std::vector<std::pair<int64_t, Event>>& events) {
    if (events.empty()) return;
    Statement q(db_, "INSERT OR IGNORE INTO events(user, item, type, quantity, value, ts, session, ingest, line) "
                     "VALUES (?,?,?,?,?,?,?,?,?)");
    for (const auto& [line, e] : events) {
      q.bind(1, user_id(e.user)).bind(2, item_id(e.item)).bind(3, static_cast<int64_t>(e.type));
      q.bind(4, e.quantity).bind_opt(5, e.value).bind(6, e.timestamp).bind_text_or_null(7, e.session);
      q.bind(8, ingest).bind(9, line).run();
    }
  }

  void write_texts(int64_t ingest, const std::vector<std::pair<int64_t, Text>>& texts) {
    if (texts.empty()) return;
    Statement q(db_, "INSERT OR IGNORE INTO texts(user, item, kind, language, body, label, category, sentiment, ts, "
                     "ingest, line) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
    for (const auto& [line, t] : texts) {
      const std::optional<int64_t> user = t.user.empty() ? std::nullopt : std::optional<int64_t>(user_id(t.user));
      const std::optional<int64_t> item = t.item.empty() ? std::nullopt : std::optional<int64_t>(item_id(t.item));
      q.bind_opt(1, user).bind_opt(2, item).bind(3, std::string(text_kind_name(t.kind)));
      q.bind_text_or_null(4, t.language).bind(5, sealer_.seal(t.body, row_identity("texts.body", ingest, line)));
      q.bind_text_or_null(6, t.label).bind_text_or_null(7, t.category);
      q.bind_opt(8, t.sentiment).bind_opt(9, t.timestamp).bind(10, ingest).bind(11, line).run();
    }
  }

  // Inside the write transaction, whose lock makes the check exact.
  void write_stream_entries(const StreamEntries& entries) {
    if (entries.keys.empty()) return;
    const auto stored = stored_stream_entries(entries);
    if (std::find(stored.begin(), stored.end(), true) != stored.end())
      throw StreamEntriesStored("some entries of the batch were stored by another consumer", {entries.stream});
    Statement(db_, "INSERT OR IGNORE INTO streams(name) VALUES (?)").bind(1, entries.stream).run();
    Statement id(db_, "SELECT id FROM streams WHERE name=?");
    id.bind(1, entries.stream).step();
    const int64_t stream = id.integer(0);
    Statement q(db_, "INSERT INTO stream_batches(stream, part, first_hi, first_lo, last_hi, last_lo, keys) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)");
    for (const auto& p : rules::pack_stream_keys(entries.keys)) {
      q.bind(1, stream).bind(2, p.part).bind(3, p.first.hi).bind(4, p.first.lo).bind(5, p.last.hi).bind(6, p.last.lo);
      q.bind_blob(7, p.packed).run();
    }
  }

  void write_rejects(int64_t ingest, const std::vector<RejectRow>& rejects) {
    if (rejects.empty()) return;
    Statement q(db_, "INSERT OR IGNORE INTO rejects(ingest, line, rule, field, value, reason, raw, flagged) "
                     "VALUES (?,?,?,?,?,?,?,?)");
    for (const auto& r : rejects) {
      q.bind(1, ingest).bind(2, r.line).bind(3, r.rule).bind_text_or_null(4, r.field);
      q.bind_text_or_null(5, sealer_.seal(r.value, row_identity("rejects.value", ingest, r.line))).bind(6, r.reason);
      q.bind(7, sealer_.seal(r.raw, row_identity("rejects.raw", ingest, r.line))).bind(8, static_cast<int64_t>(r.flagged)).run();
    }
  }

  IngestRecord ingest_by_id(int64_t id) {
    Statement q(db_, "SELECT id, source, path, content_hash, mapping_hash, status, last_line, started, finished, summary "
                     "FROM ingests WHERE id=?");
    q.bind(1, id);
    if (!q.step()) throw Error(fmt::format("store: no ingest {}", id));
    IngestRecord r;
    r.id = q.integer(0);
    r.source = q.text(1);
    r.path = q.text(2);
    r.content_hash = q.text(3);
    r.mapping_hash = q.text(4);
    r.status = q.text(5);
    r.last_line = q.integer(6);
    r.started = q.integer(7);
    r.finished = q.null(8) ? 0 : q.integer(8);
    if (!q.null(9)) r.summary = nlohmann::json::parse(q.text(9), nullptr, false);
    return r;
  }

  int64_t scalar(const char* sql) {
    Statement q(db_, sql);
    return q.step() ? q.integer(0) : 0;
  }
  std::vector<CountRow> counts(const std::string& sql) {
    std::vector<CountRow> out;
    Statement q(db_, sql.c_str());
    while (q.step()) out.push_back({q.text(0), q.integer(1), q.text(2)});
    return out;
  }

  std::string path_;
  rules::Sealer sealer_;
  sqlite3* db_ = nullptr;
  IdMap users_, items_;
  int64_t ids_version_ = -1, erasures_seen_ = 0;  // what the id maps were read at (sync_ids)
  std::unique_ptr<Statement> insert_user_, insert_item_, read_attrs_, write_attrs_, read_history_;
  int64_t batches_ = 0;
  rules::CrashPoint crash_;
};

EventColumns SqliteStore::read_events(const std::vector<std::string>* only, Use use, int64_t since) {
  // One snapshot for the id tables and the events: another connection's commit in between would
  // give events whose users or items the tables do not have (read past their end, seen as heap
  // corruption under a server's concurrent ingest).
  const ReadSnapshot snapshot(db_);
  EventColumns e;
  {
    Statement q(db_, "SELECT id, ext_id, coalesce(region, ''), signup_ts FROM users ORDER BY id");
    while (q.step()) {
      const auto id = static_cast<size_t>(q.integer(0));
      if (e.user_ids.size() <= id) {
        e.user_ids.resize(id + 1);
        e.user_regions.resize(id + 1);
        e.user_signups.resize(id + 1, std::numeric_limits<int64_t>::min());
      }
      e.user_ids[id] = q.text(1);
      e.user_regions[id] = q.text(2);
      if (!q.null(3)) e.user_signups[id] = q.integer(3);
    }
  }
  {
    Statement q(db_, "SELECT id, ext_id, coalesce(category, ''), coalesce(brand, ''), price, "
                     "trim(coalesce(title, '') || ' ' || coalesce(text, '')) FROM items ORDER BY id");
    while (q.step()) {
      const auto id = static_cast<size_t>(q.integer(0));
      if (e.item_ids.size() <= id) {
        e.item_ids.resize(id + 1);
        e.item_categories.resize(id + 1);
        e.item_brands.resize(id + 1);
        e.item_prices.resize(id + 1, std::numeric_limits<double>::quiet_NaN());
        e.item_texts.resize(id + 1);
      }
      e.item_texts[id] = q.text(5);
      e.item_ids[id] = q.text(1);
      e.item_categories[id] = q.text(2);
      e.item_brands[id] = q.text(3);
      if (!q.null(4)) e.item_prices[id] = q.real(4);
    }
  }
  IdMap sessions;
  std::string sql = "SELECT user, item, type, quantity, value, ts, session FROM events";
  if (only) sql += " WHERE user IN (SELECT id FROM users WHERE ext_id IN (SELECT value FROM json_each(?)))";
  else if (use != Use::Any)
    sql += fmt::format(" WHERE user NOT IN (SELECT id FROM users WHERE {}=0)", consent_column(use));
  sql += fmt::format(" {} ts >= ? ORDER BY ts, id", sql.find(" WHERE ") == std::string::npos ? "WHERE" : "AND");
  Statement q(db_, sql.c_str());
  if (only) q.bind(1, nlohmann::json(*only).dump());
  q.bind(only ? 2 : 1, since);
  while (q.step()) {
    e.user.push_back(static_cast<int32_t>(q.integer(0)));
    e.item.push_back(static_cast<int32_t>(q.integer(1)));
    e.type.push_back(static_cast<uint8_t>(q.integer(2)));
    e.quantity.push_back(q.real(3));
    e.value.push_back(q.null(4) ? std::numeric_limits<double>::quiet_NaN() : q.real(4));
    e.timestamp.push_back(q.integer(5));
    e.session.push_back(q.null(6) ? -1 : static_cast<int32_t>(sessions.intern(q.text(6))));
  }
  e.sessions.reserve(sessions.size());
  for (size_t i = 0; i < sessions.size(); ++i) e.sessions.emplace_back(sessions.name(static_cast<uint32_t>(i)));
  return e;
}

void SqliteStore::for_each_text(Use use, const std::function<void(const Text&)>& fn) {
  std::string sql =
      "SELECT coalesce(u.ext_id, ''), coalesce(i.ext_id, ''), t.kind, coalesce(t.language, ''), t.body, "
      "coalesce(t.label, ''), coalesce(t.category, ''), t.sentiment, t.ts, t.ingest, t.line FROM texts t "
      "LEFT JOIN users u ON u.id=t.user LEFT JOIN items i ON i.id=t.item";
  if (use != Use::Any) sql += fmt::format(" WHERE coalesce(u.{}, 1) != 0", consent_column(use));
  sql += " ORDER BY t.id";
  Statement q(db_, sql.c_str());
  Text t;
  while (q.step()) {
    t.user = q.text(0);
    t.item = q.text(1);
    t.kind = parse_text_kind(q.text(2)).value_or(TextKind::Review);
    t.language = q.text(3);
    t.body = sealer_.open(q.text(4), row_identity("texts.body", q.integer(9), q.integer(10)));
    t.label = q.text(5);
    t.category = q.text(6);
    t.sentiment = q.opt_real(7);
    t.timestamp = q.opt_integer(8);
    fn(t);
  }
}

Erasure SqliteStore::erase_user(const std::string& user) {
  Erasure out;
  int64_t id = -1;
  {
    // By SQL, not the id map: another connection may have added the user.
    Statement q(db_, "SELECT id FROM users WHERE ext_id=?");
    q.bind(1, user);
    if (q.step()) id = q.integer(0);
  }
  if (id < 0) {
    // Feedback may name someone the store has no other row of.
    exec("BEGIN IMMEDIATE");
    Statement f(db_, "DELETE FROM feedback WHERE user_id=?");
    f.bind(1, user).run();
    out.feedback = sqlite3_changes(db_);
    exec("COMMIT");
    out.found = out.feedback > 0;
    if (out.found) out.traces.push_back(user);
    return out;
  }
  out.found = true;
  // The strings that identify the person: their id, identifying attributes, PII in their texts.
  out.traces.push_back(user);
  {
    Statement q(db_, "SELECT attrs FROM users WHERE id=? AND attrs IS NOT NULL");
    q.bind(1, id);
    if (q.step())
      rules::add_attribute_traces(out, nlohmann::json::parse(sealer_.open(q.text(0), row_identity("users.attrs", id)), nullptr, false));
    Statement t(db_, "SELECT body, ingest, line FROM texts WHERE user=?");
    t.bind(1, id);
    while (t.step()) rules::add_text_traces(out, sealer_.open(t.text(0), row_identity("texts.body", t.integer(1), t.integer(2))));
  }
  rules::finish_traces(out);
  auto names_the_user = [&out](const std::string& text) { return rules::names_the_user(out, text); };

  // Freed pages are overwritten with zeros, and VACUUM then rebuilds the file without them.
  exec("PRAGMA secure_delete=ON");
  exec("BEGIN IMMEDIATE");
  try {
    Statement e(db_, "DELETE FROM events WHERE user=?");
    e.bind(1, id).run();
    out.events = sqlite3_changes(db_);
    Statement t(db_, "DELETE FROM texts WHERE user=?");
    t.bind(1, id).run();
    out.texts = sqlite3_changes(db_);
    Statement p(db_, "DELETE FROM profiles WHERE user=?");
    p.bind(1, user).run();
    out.profiles = sqlite3_changes(db_);
    Statement f(db_, "DELETE FROM feedback WHERE user_id=?");
    f.bind(1, user).run();
    out.feedback = sqlite3_changes(db_);
    std::vector<std::pair<int64_t, int64_t>> doomed;
    {
      Statement r(db_, "SELECT ingest, line, coalesce(value, ''), raw FROM rejects");
      while (r.step()) {
        const int64_t ingest = r.integer(0), line = r.integer(1);
        if (names_the_user(sealer_.open(r.text(2), row_identity("rejects.value", ingest, line))) ||
            names_the_user(sealer_.open(r.text(3), row_identity("rejects.raw", ingest, line))))
          doomed.emplace_back(ingest, line);
      }
    }
    Statement d(db_, "DELETE FROM rejects WHERE ingest=? AND line=?");
    for (const auto& [ingest, line] : doomed) d.bind(1, ingest).bind(2, line).run();
    out.rejects = static_cast<int64_t>(doomed.size());
    // A tombstone keeps the dense id; nothing in it points back at the person.
    Statement u(db_, "UPDATE users SET ext_id=?, age=NULL, gender=NULL, region=NULL, signup_ts=NULL, attrs=NULL, "
                     "consent_personalisation=0, consent_analytics=0 WHERE id=?");
    u.bind(1, fmt::format("(erased)#{}", id)).bind(2, id).run();
    // Other connections see the count move and read their id maps again: the person's id now
    // names nobody, and a later record with it starts a new user (never the tombstone).
    exec("INSERT INTO meta(key, value) VALUES ('erasures', '1') "
         "ON CONFLICT(key) DO UPDATE SET value=CAST(value AS INTEGER) + 1");
    bump_generation();
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    exec("PRAGMA secure_delete=OFF");
    throw;
  }
  exec("PRAGMA secure_delete=OFF");
  load_ids();
  exec("VACUUM");
  exec("PRAGMA wal_checkpoint(TRUNCATE)");
  return out;
}

int64_t SqliteStore::reseal() {
  sealer_.require_key_to_reseal();
  // Marked first: writers from now on (an ingest, the server) seal what they write, and the
  // rewrite below seals what was written before.
  if (!sealer_.sealed) {
    put_meta("sealed", true);
    sealer_.sealed = true;
  }
  // Each column: its rows' keys, the sealed column and how its identity is made. Small
  // transactions, so readers (and the server) go on meanwhile.
  struct Column {
    const char* select;
    const char* update;
    const char* name;
    bool two_keys;
  };
  const Column columns[] = {
      {"SELECT ingest, line, body FROM texts", "UPDATE texts SET body=? WHERE ingest=? AND line=?", "texts.body", true},
      {"SELECT id, -1, attrs FROM users WHERE attrs IS NOT NULL", "UPDATE users SET attrs=? WHERE id=?", "users.attrs", false},
      {"SELECT ingest, line, value FROM rejects WHERE value IS NOT NULL",
       "UPDATE rejects SET value=? WHERE ingest=? AND line=?", "rejects.value", true},
      {"SELECT ingest, line, raw FROM rejects", "UPDATE rejects SET raw=? WHERE ingest=? AND line=?", "rejects.raw", true},
  };
  int64_t rewritten = 0;
  for (const auto& c : columns) {
    struct Change {
      int64_t a, b;
      std::string value;
    };
    std::vector<Change> changes;
    {
      Statement q(db_, c.select);
      while (q.step()) {
        const int64_t a = q.integer(0), b = q.integer(1);
        const std::string stored = q.text(2);
        const std::string identity = row_identity(c.name, a, c.two_keys ? b : -1);
        std::string next = sealer_.resealed(stored, identity);
        if (!next.empty()) changes.push_back({a, b, std::move(next)});
      }
    }
    Statement u(db_, c.update);
    for (size_t i = 0; i < changes.size(); i += 1000) {
      exec("BEGIN IMMEDIATE");
      try {
        for (size_t j = i; j < std::min(changes.size(), i + 1000); ++j) {
          u.bind(1, changes[j].value).bind(2, changes[j].a);
          if (c.two_keys) u.bind(3, changes[j].b);
          u.run();
        }
        exec("COMMIT");
      } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
    }
    rewritten += static_cast<int64_t>(changes.size());
  }
  return rewritten;
}

DatasetStats SqliteStore::stats(int top_n) {
  const ReadSnapshot snapshot(db_);  // counts of one moment
  DatasetStats s;
  s.users = scalar("SELECT count(*) FROM users");
  s.items = scalar("SELECT count(*) FROM items");
  s.events = scalar("SELECT count(*) FROM events");
  s.texts = scalar("SELECT count(*) FROM texts");
  s.rejects = scalar("SELECT count(*) FROM rejects WHERE flagged=0");
  s.sessions = scalar("SELECT count(DISTINCT session) FROM events WHERE session IS NOT NULL");
  {
    Statement q(db_, "SELECT min(ts), max(ts) FROM events");
    if (q.step() && !q.null(0)) {
      s.first_event = q.integer(0);
      s.last_event = q.integer(1);
    }
  }
  {
    Statement q(db_, "SELECT coalesce(sum(CASE type WHEN 3 THEN quantity*value WHEN 4 THEN -abs(quantity*value) END), 0) "
                     "FROM events WHERE value IS NOT NULL");
    if (q.step()) s.revenue = q.real(0);
  }
  s.event_types = counts("SELECT t.name, count(*), '' FROM events e JOIN event_types t ON t.code=e.type "
                         "GROUP BY e.type ORDER BY count(*) DESC, e.type");
  s.top_items = counts(fmt::format("SELECT i.ext_id, n, coalesce(i.title, '') FROM (SELECT item, count(*) n FROM events "
                                   "GROUP BY item ORDER BY n DESC, item LIMIT {}) e JOIN items i ON i.id=e.item ORDER BY n DESC, e.item",
                                   top_n));
  s.top_categories = counts(fmt::format("SELECT coalesce(i.category, '(none)'), count(*), '' FROM events e "
                                        "JOIN items i ON i.id=e.item GROUP BY i.category ORDER BY count(*) DESC, i.category LIMIT {}",
                                        top_n));
  s.text_kinds = counts("SELECT kind, count(*), '' FROM texts GROUP BY kind ORDER BY count(*) DESC, kind");
  s.text_languages = counts("SELECT coalesce(language, '(unknown)'), count(*), '' FROM texts GROUP BY language "
                            "ORDER BY count(*) DESC, language");
  for (const auto& m : rules::missing_columns())
    s.missing.push_back({m.name, scalar(fmt::format("SELECT count(*) FROM {} WHERE {} IS NULL", m.table, m.column).c_str()), ""});
  s.ingests = ingests();
  return s;
}

}  // namespace

std::unique_ptr<Store> open_sqlite_store(const std::string& path, const StoreOptions& options) {
  return std::make_unique<SqliteStore>(path, options);
}

}  // namespace persona::store
