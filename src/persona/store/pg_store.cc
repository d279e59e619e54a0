// The store on a PostgreSQL server: the same interface, rules and results as the SQLite store
// (tests compare the two), for data that several hosts share or that outgrows one disk.
//
// How it keeps SQLite's results: ids and timestamps are bigint, numbers double precision (read
// back exactly), JSON documents text (jsonb would reorder keys), every sorted text column
// COLLATE "C" (byte order, as SQLite's BINARY), and every ORDER BY has a tie-breaker. Dense ids
// (users, items) and row ids (events, texts, ingests) are handed out inside the writing
// transaction under one advisory lock, so several writer processes give gapless ids and the same
// rows as one serial writer. Events, texts and rejects go in by COPY; the events read for
// training come out by COPY, straight into the columns.
#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/core/id_map.h"
#include "persona/store/pg_shared.h"
#include "persona/store/pg_client.h"
#include "persona/store/store.h"
#include "persona/store/store_rules.h"

namespace persona::store {
namespace {

using pg::CopyRow;
using pg::Param;
using rules::consent_column;
using rules::now_seconds;
using rules::row_identity;

constexpr const char* kWriteLock = kStoreWriteLock;
// Shared by writers of the answers table, exclusive in an erasure ("answers").
constexpr int64_t kAnswersLock = 27424514944365171;
constexpr int kAnswersKept = 64;
// Taken by every transaction that writes the profiles table, before the write lock ("profile").
constexpr const char* kProfilesLock = "SELECT pg_advisory_xact_lock(31651020176714853)";

// Migrations, by the schema version each one brings the store to; the versions are SQLite's, so
// one number says what a store of either kind holds. A new store gets the whole schema of
// version 7 at once (the store on PostgreSQL began there); later versions add a step to both
// backends. Never edit one that has shipped: add a new one.
struct Migration {
  int version;
  const char* sql;
};
const std::vector<Migration> kMigrations = {
    {7, R"sql(
CREATE TABLE meta(key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
CREATE TABLE users(
  id bigint PRIMARY KEY, ext_id text COLLATE "C" NOT NULL UNIQUE,
  age bigint, gender text COLLATE "C", region text COLLATE "C", signup_ts bigint,
  attrs text, consent_personalisation smallint, consent_analytics smallint);
CREATE TABLE items(
  id bigint PRIMARY KEY, ext_id text COLLATE "C" NOT NULL UNIQUE,
  title text COLLATE "C", category text COLLATE "C", brand text COLLATE "C", price double precision,
  text text COLLATE "C", available smallint, aliases text COLLATE "C", category_aliases text COLLATE "C");
CREATE TABLE event_types(code smallint PRIMARY KEY, name text COLLATE "C" NOT NULL);
INSERT INTO event_types VALUES (0,'view'),(1,'click'),(2,'cart'),(3,'purchase'),(4,'return'),
  (5,'rate'),(6,'review'),(7,'search'),(8,'favourite');
CREATE TABLE ingests(
  id bigint PRIMARY KEY, source text NOT NULL, path text NOT NULL,
  content_hash text COLLATE "C" NOT NULL, mapping_hash text COLLATE "C" NOT NULL, status text NOT NULL,
  last_line bigint NOT NULL DEFAULT 0, started bigint NOT NULL, finished bigint,
  summary text, UNIQUE(content_hash, mapping_hash));
-- The user leads the keys of events, texts and profiles, and no unique constraint spans users:
-- ready to be distributed by user.
-- Their indexes are made by kIndexes (dropped and built again by a bulk load).
CREATE TABLE events(
  user_id bigint NOT NULL, id bigint NOT NULL, item_id bigint NOT NULL, type smallint NOT NULL,
  quantity double precision NOT NULL, value double precision, ts bigint NOT NULL, session text COLLATE "C",
  ingest bigint NOT NULL, line bigint NOT NULL);
CREATE TABLE texts(
  user_id bigint, id bigint NOT NULL, item_id bigint,
  kind text COLLATE "C" NOT NULL, language text COLLATE "C", body text NOT NULL, label text COLLATE "C",
  category text COLLATE "C", sentiment double precision, ts bigint,
  ingest bigint NOT NULL, line bigint NOT NULL);
CREATE TABLE rejects(
  ingest bigint NOT NULL, line bigint NOT NULL, rule text NOT NULL,
  field text, value text, reason text, raw text, flagged smallint NOT NULL DEFAULT 0,
  PRIMARY KEY(ingest, line));
CREATE TABLE profiles(user_id text COLLATE "C" PRIMARY KEY, profile text NOT NULL);
CREATE TABLE kg_entities(id bigint PRIMARY KEY, name text NOT NULL, type text NOT NULL);
-- Counts write transactions: a writer that sees the count moved by one since its own last write
-- knows nobody else wrote, and keeps its id maps and next ids without reading them again.
CREATE TABLE write_count(n bigint NOT NULL);
INSERT INTO write_count VALUES (0);
CREATE TABLE kg_triples(position bigint PRIMARY KEY, subject bigint NOT NULL, relation text NOT NULL,
  object bigint, literal text);
)sql"},
    {8, R"sql(
-- What several servers of one database share (docs/operations.md, "Several servers").
-- Changes that empty servers' answer caches, written in the transaction that made them; seq is
-- that transaction's write count, so commit order (writers take one lock). NOTIFY persona_changes
-- tells the listening servers to read them. Users by dense id: an erased person's id names
-- nobody here.
CREATE TABLE changes(seq bigint NOT NULL, what text NOT NULL, at bigint NOT NULL, users bigint[],
  PRIMARY KEY(seq, what));
-- The privacy-budget ledger of DP queries: a charge is one transaction under a lock.
CREATE TABLE dp_ledger(seq bigserial PRIMARY KEY, dataset text NOT NULL, analyst text COLLATE "C" NOT NULL,
  budget double precision, spent double precision, query text, time bigint NOT NULL);
CREATE INDEX dp_ledger_account ON dp_ledger(dataset, analyst);
-- API keys (Argon2id hashes, never secrets), the audit log's chain and its head, and published
-- models, for every server of the database.
CREATE TABLE api_keys(id text COLLATE "C" PRIMARY KEY, name text NOT NULL, role text NOT NULL,
  user_id text COLLATE "C" NOT NULL, created bigint NOT NULL, revoked boolean NOT NULL, hash text NOT NULL);
CREATE TABLE audit_log(seq bigint PRIMARY KEY, entry text NOT NULL);
CREATE TABLE audit_head(seq bigint NOT NULL, hash text NOT NULL);
CREATE TABLE models(name text COLLATE "C" PRIMARY KEY, checksum text NOT NULL, bytes bytea NOT NULL,
  published bigint NOT NULL);
)sql"},
    {9, R"sql(
-- The dashboard's aggregates (answers computed from the whole store), as the server that
-- computed them last left them: computed once for every server, not once per server. Derived
-- data: emptied by an erasure, never copied.
CREATE TABLE answers(key text COLLATE "C" PRIMARY KEY, generation bigint NOT NULL, erasures bigint NOT NULL,
  body text NOT NULL, computed bigint NOT NULL);
)sql"},
    {10, R"sql(
-- The keys of stream entries stored (persona consume), so that none is stored twice.
-- Streams by number: the keys are many, and a stream's name is long.
CREATE TABLE streams(id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text COLLATE "C" NOT NULL UNIQUE);
-- A batch's keys in one row per part: its lowest and highest, and all of them packed (16 bytes
-- each, sorted). Rows wholly below what the stream can still deliver are deleted.
CREATE TABLE stream_batches(stream integer NOT NULL, part text COLLATE "C" NOT NULL, first_hi bigint NOT NULL,
  first_lo bigint NOT NULL, last_hi bigint NOT NULL, last_lo bigint NOT NULL, keys bytea NOT NULL);
CREATE INDEX stream_batches_last ON stream_batches(stream, part, last_hi, last_lo);
)sql"},
    {11, R"sql(
-- Feedback on served lists (POST /v1/feedback), which experiments are analysed from.
CREATE TABLE feedback(request_id text COLLATE "C" NOT NULL, item text COLLATE "C" NOT NULL, kind text COLLATE "C" NOT NULL,
  user_id text COLLATE "C" NOT NULL, experiment text COLLATE "C", variant text COLLATE "C", model text COLLATE "C",
  position bigint, value double precision, ts bigint NOT NULL, PRIMARY KEY(request_id, item, kind));
CREATE INDEX feedback_experiment ON feedback(experiment, variant, user_id, ts);
CREATE INDEX feedback_user ON feedback(user_id);
)sql"},
};
constexpr int kSchemaVersion = 11;

// The indexes of the big tables: a user's history in time order (the primary key, user first:
// ready to distribute by user), new rows since a mark (incremental profiles), the time order of
// whole reads and windows, a text by id. Only what a query uses: each one costs every ingest.
const std::vector<std::pair<const char*, const char*>> kIndexes = {
    {"events_pkey", "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (user_id, ts, id)"},
    {"events_id", "CREATE INDEX events_id ON events(id)"},
    {"events_time", "CREATE INDEX events_time ON events(ts, id)"},
    {"texts_pkey", "ALTER TABLE texts ADD CONSTRAINT texts_pkey PRIMARY KEY (id)"},
    {"texts_user", "CREATE INDEX texts_user ON texts(user_id, id)"},
};
// Held by a bulk load for its whole run ("bulk" in ASCII): an open that finds the indexes gone
// and can take it knows no load is running, and builds them.
constexpr const char* kBulkLock = "1651862635";

std::optional<std::string_view> opt_text(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string_view>(s);
}
std::string number(int64_t v) { return std::to_string(v); }
// As SQLite keeps a double: -0.0 as 0 (SQLite stores a whole REAL as an integer) and NaN as
// NULL, so both backends read back the same values.
std::string number(double v) { return *Param::of(v == 0 ? 0.0 : v).value; }
template <typename T>
std::optional<std::string> opt_number(const std::optional<T>& v) {
  if (!v) return std::nullopt;
  if constexpr (std::is_floating_point_v<T>)
    if (std::isnan(*v)) return std::nullopt;
  if constexpr (std::is_integral_v<T>) return number(static_cast<int64_t>(*v));
  else return number(static_cast<double>(*v));
}
std::optional<std::string> opt_flag(const std::optional<bool>& v) {
  return v ? std::optional<std::string>(*v ? "1" : "0") : std::nullopt;
}
void field(std::string& line, const std::optional<std::string>& v) {
  pg::copy_field(line, v ? std::optional<std::string_view>(*v) : std::nullopt);
}
void field(std::string& line, std::string_view v) { pg::copy_field(line, v); }
void field(std::string& line, const std::string& v) { pg::copy_field(line, std::string_view(v)); }
void field(std::string& line, const char* v) { pg::copy_field(line, std::string_view(v)); }

class PgStore final : public Store {
 public:
  PgStore(const std::string& url, const StoreOptions& options)
      : where_(printable_location(url)), sealer_(where_, options.keys), conn_(connect(url)) {
    try {
      migrate();
      // Temporary tables for the batch's users and items (merged into theirs by one UPDATE each).
      conn_.exec(
          "CREATE TEMP TABLE batch_users(ord bigint, id bigint, age bigint, gender text, region text, signup_ts bigint, "
          "consent_personalisation smallint, consent_analytics smallint) ON COMMIT DELETE ROWS;"
          "CREATE TEMP TABLE batch_items(id bigint, title text, category text, brand text, price double precision, "
          "text text, available smallint, aliases text, category_aliases text) ON COMMIT DELETE ROWS");
      sealer_.sealed = get_meta("sealed").value_or(false) == true;
      if (get_meta("bulk_load").value_or(false) == true) finish_abandoned_bulk_load();
    } catch (const Unavailable&) {
      throw;
    } catch (const Error& e) {
      throw Error(e.reason(), {where_}, e.hint().empty() ? "is this a Persona store?" : e.hint());
    }
  }

  IngestRecord begin_ingest(const std::string& source, const std::string& path, const std::string& content_hash,
                            const std::string& mapping_hash) override {
    IngestRecord r;
    bool found = false;
    write([&] {
      auto q = conn_.exec("SELECT id FROM ingests WHERE content_hash=$1 AND mapping_hash=$2",
                          {Param::text(content_hash), Param::text(mapping_hash)});
      int64_t id = 0;
      if (q.rows()) {
        found = true;
        id = q.int64(0, 0);
      } else {
        id = conn_.exec("SELECT coalesce(max(id), 0) + 1 FROM ingests").int64(0, 0);
        conn_.exec("INSERT INTO ingests(id, source, path, content_hash, mapping_hash, status, started) "
                   "VALUES ($1,$2,$3,$4,$5,'running',$6)",
                   {Param::of(id), Param::text(source), Param::text(path), Param::text(content_hash),
                    Param::text(mapping_hash), Param::of(now_seconds())});
      }
      r = ingest_by_id(id);
      if (r.status == "failed") {
        // A failed run kept too little and was not recorded as done: start it again, afresh.
        conn_.exec("DELETE FROM rejects WHERE ingest=$1", {Param::of(id)});
        conn_.exec("UPDATE ingests SET status='running', last_line=0, started=$1, finished=NULL, summary=NULL WHERE id=$2",
                   {Param::of(now_seconds()), Param::of(id)});
        r = ingest_by_id(id);
        found = false;
      }
    });
    r.resumed = found && r.status == "running";
    return r;
  }

  void write_batch(int64_t ingest, const Batch& batch, int64_t last_line) override {
    ++batches_;
    try {
      write([&] {
        // Read inside the write transaction: another process may have sealed the store since.
        refresh_sealed();
        sealer_.require_key_to_write();
        sync_ids();
        BatchIds ids = assign_ids(batch);
        insert_new_ids();
        write_users(batch.users);
        write_items(ids.items);
        write_events(ingest, batch.events, ids);
        write_texts(ingest, batch.texts, ids);
        note_change("data", users_touched(batch, ids));
        write_rejects(ingest, batch.rejects);
        insert_feedback(batch.feedback);
        write_stream_entries(batch.stream);
        conn_.exec("UPDATE ingests SET last_line=$1 WHERE id=$2", {Param::of(last_line), Param::of(ingest)});
        bump_generation();
        crash_.before(batches_);
      });
      crash_.after(batches_);
    } catch (...) {
      ids_known_ = false;  // ids handed out in the rolled-back transaction are forgotten
      throw;
    }
  }

  // The batches whose span meets this batch's, one read per part (usually none: a batch's keys
  // are newer than every stored one).
  std::vector<bool> stored_stream_entries(const StreamEntries& entries) override {
    std::vector<bool> out(entries.keys.size(), false);
    for (const auto& [part, range] : rules::stream_key_spans(entries.keys)) {
      const auto q = conn_.exec(
          "SELECT keys FROM stream_batches WHERE stream=(SELECT id FROM streams WHERE name=$1) AND part=$2 "
          "AND (last_hi, last_lo) >= ($3, $4) AND (first_hi, first_lo) <= ($5, $6)",
          {Param::text(entries.stream), Param::text(part), Param::of(range.first.hi), Param::of(range.first.lo),
           Param::of(range.second.hi), Param::of(range.second.lo)});
      for (int r = 0; r < q.rows(); ++r) rules::mark_stored(entries.keys, part, q.bytes(r, 0), out);
    }
    return out;
  }

  void prune_stream_entries(const std::string& stream, const StreamEntryKey& below) override {
    conn_.exec("DELETE FROM stream_batches WHERE stream=(SELECT id FROM streams WHERE name=$1) AND part=$2 "
               "AND (last_hi, last_lo) < ($3, $4)",
               {Param::text(stream), Param::text(below.part), Param::of(below.hi), Param::of(below.lo)});
  }

  void finish_ingest(int64_t ingest, const nlohmann::json& summary) override {
    conn_.exec("UPDATE ingests SET status='complete', finished=$1, summary=$2 WHERE id=$3",
               {Param::of(now_seconds()), Param::text(summary.dump()), Param::of(ingest)});
  }

  void fail_ingest(int64_t ingest, const nlohmann::json& summary) override {
    write([&] {
      conn_.exec("DELETE FROM events WHERE ingest=$1", {Param::of(ingest)});
      conn_.exec("DELETE FROM texts WHERE ingest=$1", {Param::of(ingest)});
      conn_.exec("UPDATE ingests SET status='failed', last_line=0, finished=$1, summary=$2 WHERE id=$3",
                 {Param::of(now_seconds()), Param::text(summary.dump()), Param::of(ingest)});
      bump_generation();
      note_change("all");
    });
  }

  std::vector<IngestRecord> ingests() override {
    std::vector<IngestRecord> out;
    auto q = conn_.exec(std::string(kIngestColumns) + " ORDER BY id");
    for (int i = 0; i < q.rows(); ++i) out.push_back(ingest_row(q, i));
    return out;
  }

  void for_each_reject(int64_t ingest, const std::function<void(const RejectRow&)>& fn) override {
    conn_.copy_out(fmt::format("COPY (SELECT line, rule, field, value, reason, raw, flagged FROM rejects WHERE ingest={} "
                               "ORDER BY line) TO STDOUT",
                               ingest),
                   [&](std::string_view line) {
                     const CopyRow r(line);
                     const int64_t n = r.int64(0);
                     fn({n, r.text(1), r.text(2), sealer_.open(r.text(3), row_identity("rejects.value", ingest, n)), r.text(4),
                         sealer_.open(r.text(5), row_identity("rejects.raw", ingest, n)), r.int64(6) != 0});
                   });
  }

  DatasetStats stats(int top_n) override;

  std::vector<double> numeric_values(const std::string& field) override {
    const char* query = rules::numeric_field_query(field);
    std::vector<double> out;
    conn_.copy_out(fmt::format("COPY ({}) TO STDOUT", query), [&](std::string_view line) { out.push_back(CopyRow(line).real(0)); });
    return out;
  }

  void put_meta(const std::string& key, const nlohmann::json& value) override {
    conn_.exec("INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
               {Param::text(key), Param::text(value.dump())});
  }

  std::optional<nlohmann::json> get_meta(const std::string& key) override {
    auto q = conn_.exec("SELECT value FROM meta WHERE key=$1", {Param::text(key)});
    if (!q.rows()) return std::nullopt;
    return nlohmann::json::parse(q.text(0, 0), nullptr, false);
  }

  EventColumns events(Use use) override { return read_events(nullptr, use); }
  EventColumns events_since(Use use, int64_t since) override { return read_events(nullptr, use, since); }
  EventColumns events_of(const std::vector<std::string>& users) override { return read_events(&users, Use::Any); }

  EventColumns history(const std::string& user) override {
    EventColumns e;
    e.user_ids = {user};
    // Joined through users (not a subquery): the planner then expects one user's few events and
    // fetches their items by key, where a subquery's unknown id made it hash the whole catalogue.
    auto q = conn_.exec_prepared(
        "history",
        "SELECT e.type, e.quantity, e.value, e.ts, i.ext_id, coalesce(i.category, ''), i.price FROM users u "
        "JOIN events e ON e.user_id=u.id JOIN items i ON i.id=e.item_id WHERE u.ext_id=$1 ORDER BY e.ts, e.id",
        {Param::text(user)});
    IdMap items;
    for (int r = 0; r < q.rows(); ++r) {
      const auto item = items.intern(q.text(r, 4));
      if (item == e.item_ids.size()) {
        e.item_ids.emplace_back(q.text(r, 4));
        e.item_categories.emplace_back(q.text(r, 5));
        e.item_prices.push_back(q.null(r, 6) ? std::numeric_limits<double>::quiet_NaN() : q.real(r, 6));
      }
      e.user.push_back(0);
      e.item.push_back(static_cast<int32_t>(item));
      e.session.push_back(-1);
      e.type.push_back(static_cast<uint8_t>(q.int64(r, 0)));
      e.quantity.push_back(q.real(r, 1));
      e.value.push_back(q.null(r, 2) ? std::numeric_limits<double>::quiet_NaN() : q.real(r, 2));
      e.timestamp.push_back(q.int64(r, 3));
    }
    e.item_brands.resize(e.item_ids.size());
    e.item_texts.resize(e.item_ids.size());
    return e;
  }

  ChangeMark change_mark() override {
    auto q = conn_.exec("SELECT (SELECT coalesce(max(id), 0) FROM events), (SELECT coalesce(max(id), 0) FROM texts)");
    return {q.int64(0, 0), q.int64(0, 1)};
  }

  int64_t generation() override { return meta_integer("generation"); }
  int64_t erasure_count() override { return meta_integer("erasures"); }

  std::vector<std::string> users_changed_since(const ChangeMark& since) override {
    auto q = conn_.exec("SELECT ext_id FROM users WHERE id IN (SELECT user_id FROM events WHERE id > $1 "
                        "UNION SELECT user_id FROM texts WHERE id > $2 AND user_id IS NOT NULL) ORDER BY ext_id",
                        {Param::of(since.event), Param::of(since.text)});
    return column(q);
  }

  // The rows are written before the store's write lock is taken, under a lock of their own (every
  // writer of the profiles table takes it, before the write lock): rebuilding every profile writes
  // megabytes, and ingests, which never touch profiles, wait only for the short end (the count,
  // the erasure check, the change) rather than the whole write.
  bool put_profiles(const std::vector<std::pair<std::string, std::string>>& rows, bool replace_all,
                    int64_t erasures_before) override {
    bool written = false;
    conn_.exec("BEGIN");
    try {
      conn_.exec(kProfilesLock);
      if (replace_all) conn_.exec("DELETE FROM profiles");
      conn_.exec("CREATE TEMP TABLE IF NOT EXISTS batch_profiles(position bigint, user_id text, profile text) ON COMMIT DELETE ROWS");
      int64_t position = 0;
      conn_.copy_in("COPY batch_profiles FROM STDIN", [&](const auto& send) {
        std::string line;
        for (const auto& [user, json] : rows) {
          line.clear();
          field(line, number(position++));
          field(line, user);
          field(line, json);
          send(line);
        }
      });
      // The last row of a user wins, as with one INSERT OR REPLACE after another.
      conn_.exec("INSERT INTO profiles(user_id, profile) SELECT DISTINCT ON (user_id) user_id, profile FROM batch_profiles "
                 "ORDER BY user_id, position DESC ON CONFLICT(user_id) DO UPDATE SET profile=excluded.profile");
      std::vector<int64_t> users;
      if (!replace_all) {
        auto ids = conn_.exec("SELECT DISTINCT u.id FROM users u JOIN batch_profiles b ON u.ext_id=b.user_id");
        for (int i = 0; i < ids.rows(); ++i) users.push_back(ids.int64(i, 0));
      }
      take_write_lock();
      // Under the write lock: no erasure commits between this check and the profiles' commit.
      if (erasures_before < 0 || erasure_count() == erasures_before) {
        if (replace_all) note_change("all");
        else note_change("profiles", std::move(users));
        bump_generation();  // the RFM grid and segments' users are read from the profiles
        written = true;
      }
      conn_.exec(written ? "COMMIT" : "ROLLBACK");
    } catch (...) {
      rollback();
      throw;
    }
    return written;
  }

  std::optional<std::string> profile(const std::string& user) override {
    auto q = conn_.exec_prepared("profile", "SELECT profile FROM profiles WHERE user_id=$1", {Param::text(user)});
    if (!q.rows()) return std::nullopt;
    return std::string(q.text(0, 0));
  }

  void for_each_profile(const std::function<void(const std::string&, const std::string&)>& fn) override {
    conn_.copy_out("COPY (SELECT user_id, profile FROM profiles ORDER BY user_id) TO STDOUT", [&](std::string_view line) {
      const CopyRow r(line);
      fn(r.text(0), r.text(1));
    });
  }

  void for_each_text(Use use, const std::function<void(const Text&)>& fn) override {
    std::string sql =
        "SELECT coalesce(u.ext_id, ''), coalesce(i.ext_id, ''), t.kind, coalesce(t.language, ''), t.body, "
        "coalesce(t.label, ''), coalesce(t.category, ''), t.sentiment, t.ts, t.ingest, t.line FROM texts t "
        "LEFT JOIN users u ON u.id=t.user_id LEFT JOIN items i ON i.id=t.item_id";
    if (use != Use::Any) sql += fmt::format(" WHERE coalesce(u.{}, 1) != 0", consent_column(use));
    sql += " ORDER BY t.id";
    Text t;
    conn_.copy_out("COPY (" + sql + ") TO STDOUT", [&](std::string_view line) {
      const CopyRow r(line);
      t.user = r.text(0);
      t.item = r.text(1);
      t.kind = parse_text_kind(r.text(2)).value_or(TextKind::Review);
      t.language = r.text(3);
      t.body = sealer_.open(r.text(4), row_identity("texts.body", r.int64(9), r.int64(10)));
      t.label = r.text(5);
      t.category = r.text(6);
      t.sentiment = r.null(7) ? std::nullopt : std::optional<double>(r.real(7));
      t.timestamp = r.null(8) ? std::nullopt : std::optional<int64_t>(r.int64(8));
      fn(t);
    });
  }

  Consent consent(const std::string& user) override {
    auto q = conn_.exec_prepared("consent", "SELECT consent_personalisation, consent_analytics FROM users WHERE ext_id=$1",
                                 {Param::text(user)});
    Consent c;
    if (q.rows()) {
      c.personalisation = q.null(0, 0) || q.int64(0, 0) != 0;
      c.analytics = q.null(0, 1) || q.int64(0, 1) != 0;
    }
    return c;
  }

  std::vector<std::string> users_refusing(Use use) override {
    if (use == Use::Any) return {};
    return column(conn_.exec(fmt::format("SELECT ext_id FROM users WHERE {}=0 ORDER BY id", consent_column(use))));
  }

  Erasure erase_user(const std::string& user) override;
  // No dense ids: the write lock is not needed, and writers of feedback do not wait on ingests.
  // Inside the caller's transaction; answers how many rows were new.
  int64_t insert_feedback(const std::vector<Feedback>& rows) {
    int64_t added = 0;
    auto opt = [](const std::string& v) { return v.empty() ? Param::null() : Param::text(v); };
    for (const auto& f : rows)
      added += conn_
                   .exec("INSERT INTO feedback(request_id, item, kind, user_id, experiment, variant, model, position, value, ts) "
                         "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                         {Param::text(f.request_id), Param::text(f.item), Param::text(f.kind), Param::text(f.user),
                          opt(f.experiment), opt(f.variant), opt(f.model),
                          f.position >= 0 ? Param::of(f.position) : Param::null(),
                          f.value != 0 ? Param::of(f.value) : Param::null(), Param::of(f.ts)})
                   .affected();
    return added;
  }
  int64_t put_feedback(const std::vector<Feedback>& rows) override {
    if (rows.empty()) return 0;
    int64_t added = 0;
    conn_.exec("BEGIN");
    try {
      added = insert_feedback(rows);
      conn_.exec("COMMIT");
    } catch (...) {
      rollback();
      throw;
    }
    return added;
  }
  void for_each_feedback_tally(const std::string& experiment, const std::function<void(const FeedbackTally&)>& fn) override {
    const auto r = conn_.exec(rules::feedback_tally_sql("$1"), {Param::text(experiment)});
    for (int i = 0; i < r.rows(); ++i)
      fn({std::string(r.text(i, 0)), std::string(r.text(i, 1)), r.int64(i, 2), r.int64(i, 3), r.int64(i, 4), r.int64(i, 5),
          r.int64(i, 6), r.int64(i, 7), r.real(i, 8)});
  }
  int64_t reseal() override;

  bool sealed() override {
    refresh_sealed();
    return sealer_.sealed;
  }

  std::vector<std::string> unavailable_items() override {
    return column(conn_.exec("SELECT ext_id FROM items WHERE available = 0 ORDER BY id"));
  }

  std::vector<User> users(Use use) override {
    std::string sql = "SELECT ext_id, age, gender, region, signup_ts, consent_personalisation, consent_analytics FROM users";
    if (use != Use::Any) sql += fmt::format(" WHERE coalesce({}, 1) != 0", consent_column(use));
    sql += " ORDER BY id";
    std::vector<User> out;
    conn_.copy_out("COPY (" + sql + ") TO STDOUT", [&](std::string_view line) {
      const CopyRow r(line);
      User u;
      u.id = r.text(0);
      if (!r.null(1)) u.age = r.int64(1);
      u.gender = r.text(2);
      u.region = r.text(3);
      if (!r.null(4)) u.signup_time = r.int64(4);
      if (!r.null(5)) u.consent_personalisation = r.int64(5) != 0;
      if (!r.null(6)) u.consent_analytics = r.int64(6) != 0;
      out.push_back(std::move(u));
    });
    return out;
  }

  std::vector<Item> items() override {
    std::vector<Item> out;
    conn_.copy_out(
        "COPY (SELECT ext_id, title, category, brand, price, text, available, aliases, category_aliases FROM items "
        "ORDER BY id) TO STDOUT",
        [&](std::string_view line) {
          const CopyRow r(line);
          Item it;  // NULL reads as "": no value
          it.id = r.text(0);
          it.title = r.text(1);
          it.category = r.text(2);
          it.brand = r.text(3);
          if (!r.null(4)) it.price = r.real(4);
          it.text = r.text(5);
          if (!r.null(6)) it.available = r.int64(6) != 0;
          it.aliases = r.text(7);
          it.category_aliases = r.text(8);
          out.push_back(std::move(it));
        });
    return out;
  }

  void put_graph(const Graph& g) override {
    write([&] {
      conn_.exec("DELETE FROM kg_triples; DELETE FROM kg_entities");
      conn_.copy_in("COPY kg_entities(id, name, type) FROM STDIN", [&](const auto& send) {
        std::string line;
        for (size_t i = 0; i < g.entities.size(); ++i) {
          line.clear();
          field(line, number(static_cast<int64_t>(i)));
          field(line, g.entities[i].name);
          field(line, g.entities[i].type);
          send(line);
        }
      });
      conn_.copy_in("COPY kg_triples(position, subject, relation, object, literal) FROM STDIN", [&](const auto& send) {
        std::string line;
        int64_t position = 1;  // as SQLite's rowids of a table emptied first
        for (const auto& tr : g.triples) {
          line.clear();
          field(line, number(position++));
          field(line, number(tr.subject));
          field(line, tr.relation);
          field(line, tr.object >= 0 ? std::optional<std::string>(number(tr.object)) : std::nullopt);
          pg::copy_field(line, opt_text(tr.literal));
          send(line);
        }
      });
    });
  }

  Graph graph() override {
    Graph g;
    const Snapshot snapshot(conn_);
    auto e = conn_.exec("SELECT name, type FROM kg_entities ORDER BY id");
    for (int i = 0; i < e.rows(); ++i) g.entities.push_back({std::string(e.text(i, 0)), std::string(e.text(i, 1))});
    auto q = conn_.exec("SELECT subject, relation, object, literal FROM kg_triples ORDER BY position");
    for (int i = 0; i < q.rows(); ++i)
      g.triples.push_back({q.int64(i, 0), std::string(q.text(i, 1)), q.null(i, 2) ? -1 : q.int64(i, 2),
                           q.null(i, 3) ? "" : std::string(q.text(i, 3))});
    return g;
  }

  void export_table(const StoreTable& table, const std::function<void(const StoreRow&)>& fn) override {
    std::string columns;
    for (const auto& c : table.columns) columns += fmt::format("{}{}", columns.empty() ? "" : ", ", column_of(table.name, c.name));
    StoreRow row(table.columns.size());
    conn_.copy_out(fmt::format("COPY (SELECT {} FROM {} ORDER BY {}) TO STDOUT", columns, table.name, column_of(table.name, table.order)),
                   [&](std::string_view line) {
                     const CopyRow r(line);
                     for (size_t i = 0; i < table.columns.size(); ++i) {
                       if (r.null(i)) row[i].reset();
                       else if (table.columns[i].kind == 'R') row[i] = fmt::format("{}", r.real(i));
                       else row[i] = r.text(i);
                     }
                     fn(row);
                   });
  }

  void import_rows(const StoreTable& table, const std::vector<StoreRow>& rows) override {
    std::string columns;
    for (const auto& c : table.columns) columns += fmt::format("{}{}", columns.empty() ? "" : ", ", column_of(table.name, c.name));
    write([&] {
      conn_.copy_in(fmt::format("COPY {}({}) FROM STDIN", table.name, columns), [&](const auto& send) {
        std::string line;
        for (const auto& row : rows) {
          line.clear();
          for (size_t i = 0; i < row.size(); ++i) {
            if (row[i] && table.columns[i].kind == 'R') field(line, number(std::strtod(row[i]->c_str(), nullptr)));
            else field(line, row[i]);
          }
          send(line);
        }
      });
    }, /*profiles_too=*/true);
    ids_known_ = false;  // read again at the next write
    if (std::string_view(table.name) == "meta") refresh_sealed();
  }

  bool connected() override { return conn_.connected(); }

  void begin_bulk_load() override {
    conn_.exec(fmt::format("SELECT pg_advisory_lock({})", kBulkLock));
    write([&] {
      for (auto it = kIndexes.rbegin(); it != kIndexes.rend(); ++it) {
        const std::string name = it->first;
        if (name.size() > 5 && name.substr(name.size() - 5) == "_pkey")
          conn_.exec(fmt::format("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}", name.substr(0, name.size() - 5), name));
        else
          conn_.exec(fmt::format("DROP INDEX IF EXISTS {}", name));
      }
      conn_.exec("INSERT INTO meta(key, value) VALUES ('bulk_load', 'true') ON CONFLICT(key) DO UPDATE SET value='true'");
    });
  }

  void end_bulk_load() override {
    write([&] {
      build_missing_indexes();
      conn_.exec("DELETE FROM meta WHERE key='bulk_load'");
    });
    conn_.exec("ANALYZE events");
    conn_.exec("ANALYZE texts");
    conn_.exec(fmt::format("SELECT pg_advisory_unlock({})", kBulkLock));
  }

  bool publish_model(const std::string& name, const std::string& bytes, int64_t erasures_before) override {
    bool published = false;
    write([&] {
      // Under the write lock: no erasure commits between this check and the publication.
      if (erasures_before >= 0 && erasure_count() != erasures_before) return;
      published = true;
      conn_.exec("INSERT INTO models(name, checksum, bytes, published) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE "
                 "SET checksum=excluded.checksum, bytes=excluded.bytes, published=excluded.published",
                 {Param::text(name), Param::text(model_checksum(bytes)), Param::bytes(bytes), Param::of(now_seconds())});
      note_change("model");
    });
    return published;
  }

  // A shared lock here, the exclusive one in an erasure (after its count moved, before it empties
  // the table): an answer computed before an erasure is never left behind by it.
  void share_answer(const std::string& key, const SharedAnswer& answer) override {
    in_transaction(conn_, [&] {
      conn_.exec(fmt::format("SELECT pg_advisory_xact_lock_shared({})", kAnswersLock));
      if (erasure_count() != answer.erasures) return;
      conn_.exec("INSERT INTO answers(key, generation, erasures, body, computed) VALUES ($1, $2, $3, $4, $5) "
                 "ON CONFLICT (key) DO UPDATE SET generation=excluded.generation, erasures=excluded.erasures, "
                 "body=excluded.body, computed=excluded.computed WHERE answers.generation <= excluded.generation",
                 {Param::text(key), Param::of(answer.generation), Param::of(answer.erasures), Param::text(answer.body),
                  Param::of(now_seconds())});
      conn_.exec(fmt::format("DELETE FROM answers WHERE key IN (SELECT key FROM answers ORDER BY computed DESC, key OFFSET {})",
                             kAnswersKept));
    });
  }

  std::optional<SharedAnswer> shared_answer(const std::string& key) override {
    const auto q = conn_.exec_prepared("shared answer", "SELECT generation, erasures, body FROM answers WHERE key=$1",
                                       {Param::text(key)});
    if (!q.rows()) return std::nullopt;
    return SharedAnswer{q.int64(0, 0), q.int64(0, 1), std::string(q.text(0, 2))};
  }

  std::vector<std::string> shared_answer_keys() override {
    return column(conn_.exec("SELECT key FROM answers ORDER BY key"));
  }

  void withdraw_model(const std::string& name) override {
    write([&] {
      if (conn_.exec("DELETE FROM models WHERE name=$1", {Param::text(name)}).affected() > 0) note_change("model");
    });
  }

  std::optional<std::string> published_model(const std::string& name, const std::string& have_checksum) override {
    const auto q = conn_.exec("SELECT checksum, bytes FROM models WHERE name=$1 AND checksum <> $2",
                              {Param::text(name), Param::text(have_checksum)});
    if (!q.rows()) return std::nullopt;
    std::string bytes = q.bytes(0, 1);
    if (model_checksum(bytes) != q.text(0, 0))
      throw Error(fmt::format("the published model {} does not match its checksum", name), {where_}, "publish it again");
    return bytes;
  }

  int schema_version() override { return static_cast<int>(conn_.exec("SELECT version FROM schema_version").int64(0, 0)); }

 private:
  static constexpr const char* kIngestColumns =
      "SELECT id, source, path, content_hash, mapping_hash, status, last_line, started, finished, summary FROM ingests";

  // A read of one moment: every statement inside sees the store as of its first read. Nested in
  // a transaction already open, it does nothing.
  class Snapshot {
   public:
    explicit Snapshot(pg::Connection& c) : c_(c), owns_(!c.in_transaction()) {
      if (owns_) c_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    }
    ~Snapshot() {
      if (!owns_) return;
      try {
        c_.exec("COMMIT");
      } catch (const Error&) {
      }
    }
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;

   private:
    pg::Connection& c_;
    bool owns_;
  };

  // A canonical column's name here: events and texts name their user and item by id columns.
  static std::string column_of(std::string_view name, std::string_view column) {
    if ((column == "user" || column == "item") && (name == "events" || name == "texts")) return std::string(column) + "_id";
    if (column == "user" && name == "profiles") return "user_id";
    return std::string(column);
  }

  static pg::Connection connect(const std::string& url) {
    try {
      return pg::Connection(url);
    } catch (const Unavailable& e) {
      throw Unavailable(e.reason(), {printable_location(url)},
                  "is the server running, does the database exist (createdb NAME), and does the URL name its host or "
                  "socket directory (postgresql:///NAME?host=/run/postgresql)?");
    }
  }

  // One write transaction under the store's write lock (a writer of SQLite's BEGIN IMMEDIATE).
  // `profiles_too`: the body writes or alters the profiles table, whose writers take their own
  // lock before the write lock (see put_profiles); taken first here too, the order holds (no deadlock).
  template <typename F>
  void write(F&& body, bool profiles_too = false) {
    conn_.exec("BEGIN");
    try {
      if (profiles_too) conn_.exec(kProfilesLock);
      take_write_lock();
      body();
      conn_.exec("COMMIT");
    } catch (...) {
      rollback();
      throw;
    }
  }
  // Inside the write transaction, whose lock makes the check exact.
  void write_stream_entries(const StreamEntries& entries) {
    if (entries.keys.empty()) return;
    const auto stored = stored_stream_entries(entries);
    if (std::find(stored.begin(), stored.end(), true) != stored.end())
      throw StreamEntriesStored("some entries of the batch were stored by another consumer", {entries.stream});
    conn_.exec("INSERT INTO streams(name) VALUES ($1) ON CONFLICT DO NOTHING", {Param::text(entries.stream)});
    const std::string stream =
        number(conn_.exec("SELECT id FROM streams WHERE name=$1", {Param::text(entries.stream)}).int64(0, 0));
    for (const auto& p : rules::pack_stream_keys(entries.keys))
      conn_.exec("INSERT INTO stream_batches(stream, part, first_hi, first_lo, last_hi, last_lo, keys) "
                 "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                 {Param::text(stream), Param::text(p.part), Param::of(p.first.hi), Param::of(p.first.lo), Param::of(p.last.hi),
                  Param::of(p.last.lo), Param::bytes(p.packed)});
  }

  // Inside a transaction: the store's write lock, and this write's place in the count.
  void take_write_lock() {
    conn_.exec(kWriteLock);
    if (schema_ready_) {
      const int64_t n = conn_.exec("UPDATE write_count SET n = n + 1 RETURNING n").int64(0, 0);
      others_wrote_ = n != last_write_ + 1;
      last_write_ = n;
    }
  }
  void rollback() {
    try {
      conn_.exec("ROLLBACK");
    } catch (const Error&) {
      // the connection is gone; the server rolled the transaction back itself
    }
  }

  // Under the write lock from the version check on: several processes opening a new store at
  // once create its tables once. Whether the version table exists is asked of pg_class by a
  // query (a fresh snapshot), not by to_regclass, whose catalog cache may predate the lock.
  void migrate() {
    auto have_now = [&] {
      const bool exists =
          conn_.exec("SELECT count(*) FROM pg_catalog.pg_class WHERE relname='schema_version' "
                     "AND relnamespace=(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname=current_schema())")
              .int64(0, 0) > 0;
      return exists ? static_cast<int>(conn_.exec("SELECT version FROM schema_version").int64(0, 0)) : -1;
    };
    if (have_now() == kSchemaVersion) {  // the usual case, without taking the write lock
      schema_ready_ = true;
      return;
    }
    write([&] {
      int have = have_now();
      if (have < 0) {
        conn_.exec("CREATE TABLE schema_version(version integer NOT NULL); INSERT INTO schema_version VALUES (0)");
        have = 0;
      }
      if (have > kSchemaVersion)
        throw Error(fmt::format("the store has schema version {}, newer than this Persona knows ({})", have, kSchemaVersion),
                    {}, "upgrade Persona");
      for (const auto& m : kMigrations)
        if (m.version > have) conn_.exec(m.sql);
      if (have < 7) build_missing_indexes();
      conn_.exec(fmt::format("UPDATE schema_version SET version={}", kSchemaVersion));
    }, /*profiles_too=*/true);
    schema_ready_ = true;
  }

  // Builds every index of kIndexes that is not there (inside a write transaction).
  void build_missing_indexes() {
    for (const auto& [name, sql] : kIndexes)
      if (conn_.exec("SELECT count(*) FROM pg_catalog.pg_class WHERE relname=$1 AND relkind='i'", {Param::text(name)})
              .int64(0, 0) == 0)
        conn_.exec(sql);
  }
  // A bulk load that died left the indexes gone: built again now, unless a load is still running.
  void finish_abandoned_bulk_load() {
    if (conn_.exec(fmt::format("SELECT pg_try_advisory_lock({})", kBulkLock)).text(0, 0) != "t") return;
    try {
      write([&] {
        if (get_meta("bulk_load").value_or(false) != true) return;
        build_missing_indexes();
        conn_.exec("DELETE FROM meta WHERE key='bulk_load'");
      });
    } catch (...) {
      conn_.exec(fmt::format("SELECT pg_advisory_unlock({})", kBulkLock));
      throw;
    }
    conn_.exec(fmt::format("SELECT pg_advisory_unlock({})", kBulkLock));
  }

  void refresh_sealed() { sealer_.sealed = get_meta("sealed").value_or(false) == true; }

  int64_t meta_integer(const char* key) {
    const auto n = get_meta(key);
    return n && n->is_number_integer() ? n->get<int64_t>() : 0;
  }
  // A change that empties servers' answer caches (docs/operations.md, "Several servers"),
  // recorded in the write transaction it belongs to: NOTIFY is delivered at commit, so a server
  // never hears of a change that did not happen, and one that was away reads what it missed.
  // `what`: "data" (these users' events, texts or attributes: their answers, and their profiles
  // to refresh), "profiles" (these users'), "catalogue", "erasure" or "all" (everything).
  void note_change(const char* what, std::vector<int64_t> users = {}) {
    if (schema_ready_) record_change(conn_, last_write_, what, std::move(users));
  }

  void bump_generation() {
    conn_.exec("INSERT INTO meta(key, value) VALUES ('generation', '1') "
               "ON CONFLICT(key) DO UPDATE SET value=(meta.value::bigint + 1)::text");
  }

  static std::vector<std::string> column(const pg::Result& q) {
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(q.rows()));
    for (int i = 0; i < q.rows(); ++i) out.emplace_back(q.text(i, 0));
    return out;
  }

  // The dense id maps, under the write lock: the store is the one source of truth. Users and
  // items are never deleted (an erasure leaves a tombstone), so rows from the map's size on are
  // the ones other writers added; an erasure renames a row, so after one the maps are read whole.
  void sync_ids() {
    if (ids_known_ && !others_wrote_) return;  // the maps and next ids are this connection's own
    const int64_t erasures = erasure_count();
    if (!ids_known_ || erasures != erasures_seen_) {
      users_ = IdMap();
      items_ = IdMap();
      erasures_seen_ = erasures;
    }
    load_map("users", users_);
    load_map("items", items_);
    next_event_ = conn_.exec("SELECT coalesce(max(id), 0) FROM events").int64(0, 0);
    next_text_ = conn_.exec("SELECT coalesce(max(id), 0) FROM texts").int64(0, 0);
    new_users_.clear();
    new_items_.clear();
    ids_known_ = true;
  }
  void load_map(const char* table, IdMap& map) {
    conn_.copy_out(fmt::format("COPY (SELECT id, ext_id FROM {} WHERE id >= {} ORDER BY id) TO STDOUT", table, map.size()),
                   [&](std::string_view line) {
                     const CopyRow r(line);
                     if (static_cast<int64_t>(map.intern(r.text(1))) != r.int64(0))
                       throw Error("store ids are not dense (was the store edited by hand?)");
                   });
  }

  // Dense ids of a batch, handed out in the SQLite store's order (users, items, then each event's
  // user and item, then each text's), so both backends give every row the same id.
  struct BatchIds {
    std::vector<Item> items;  // merged
    std::vector<int64_t> event_users, event_items;
    std::vector<std::optional<int64_t>> text_users, text_items;
  };
  // The users whose answers a batch changes: the events', the texts' and the attributes'.
  std::vector<int64_t> users_touched(const Batch& batch, const BatchIds& ids) {
    std::vector<int64_t> users(ids.event_users.begin(), ids.event_users.end());
    for (const auto& u : ids.text_users)
      if (u) users.push_back(*u);
    for (const auto& u : batch.users) users.push_back(static_cast<int64_t>(*users_.find(u.id)));
    return users;
  }
  int64_t id_of(IdMap& map, std::vector<std::string>& fresh, const std::string& ext) {
    const size_t before = map.size();
    const auto id = map.intern(ext);
    if (map.size() > before) fresh.push_back(ext);
    return id;
  }
  BatchIds assign_ids(const Batch& batch) {
    BatchIds ids;
    for (const auto& u : batch.users) id_of(users_, new_users_, u.id);
    ids.items = rules::merged_items(batch.items);
    for (const auto& it : ids.items) id_of(items_, new_items_, it.id);
    for (const auto& [line, e] : batch.events) {
      ids.event_users.push_back(id_of(users_, new_users_, e.user));
      ids.event_items.push_back(id_of(items_, new_items_, e.item));
    }
    for (const auto& [line, t] : batch.texts) {
      ids.text_users.push_back(t.user.empty() ? std::nullopt : std::optional<int64_t>(id_of(users_, new_users_, t.user)));
      ids.text_items.push_back(t.item.empty() ? std::nullopt : std::optional<int64_t>(id_of(items_, new_items_, t.item)));
    }
    return ids;
  }
  void insert_new_ids() {
    auto insert = [&](const char* table, IdMap& map, std::vector<std::string>& fresh) {
      if (fresh.empty()) return;
      conn_.copy_in(fmt::format("COPY {}(id, ext_id) FROM STDIN", table), [&](const auto& send) {
        std::string line;
        for (const auto& ext : fresh) {
          line.clear();
          field(line, number(static_cast<int64_t>(*map.find(ext))));
          field(line, ext);
          send(line);
        }
      });
      fresh.clear();
    };
    insert("users", users_, new_users_);
    insert("items", items_, new_items_);
  }

  void write_users(const std::vector<User>& users) {
    if (users.empty()) return;
    // In order, as one UPDATE after another: a later row's non-empty value wins.
    conn_.copy_in("COPY batch_users FROM STDIN", [&](const auto& send) {
      std::string line;
      int64_t ord = 0;
      for (const auto& u : users) {
        line.clear();
        field(line, number(ord++));
        field(line, number(static_cast<int64_t>(*users_.find(u.id))));
        field(line, opt_number(u.age));
        pg::copy_field(line, opt_text(u.gender));
        pg::copy_field(line, opt_text(u.region));
        field(line, opt_number(u.signup_time));
        field(line, opt_flag(u.consent_personalisation));
        field(line, opt_flag(u.consent_analytics));
        send(line);
      }
    });
    // Each column's last non-NULL value of the batch, per user.
    conn_.exec(R"sql(
UPDATE users u SET age=coalesce(b.age, u.age), gender=coalesce(b.gender, u.gender), region=coalesce(b.region, u.region),
  signup_ts=coalesce(b.signup_ts, u.signup_ts),
  consent_personalisation=coalesce(b.consent_personalisation, u.consent_personalisation),
  consent_analytics=coalesce(b.consent_analytics, u.consent_analytics)
FROM (SELECT id,
  (array_remove(array_agg(age ORDER BY ord DESC), NULL))[1] age,
  (array_remove(array_agg(gender ORDER BY ord DESC), NULL))[1] gender,
  (array_remove(array_agg(region ORDER BY ord DESC), NULL))[1] region,
  (array_remove(array_agg(signup_ts ORDER BY ord DESC), NULL))[1] signup_ts,
  (array_remove(array_agg(consent_personalisation ORDER BY ord DESC), NULL))[1] consent_personalisation,
  (array_remove(array_agg(consent_analytics ORDER BY ord DESC), NULL))[1] consent_analytics
  FROM batch_users GROUP BY id) b WHERE u.id=b.id)sql");
    // Attributes merge into the object already stored (new keys win), opened and sealed here:
    // the batch's users' stored objects read in one query, written back by one UPDATE.
    std::unordered_map<int64_t, std::vector<std::pair<std::string, std::string>>> attributes;
    std::vector<int64_t> order;
    for (const auto& u : users) {
      if (u.attributes.empty()) continue;
      const int64_t id = *users_.find(u.id);
      auto [pos, inserted] = attributes.try_emplace(id);
      if (inserted) order.push_back(id);
      pos->second.insert(pos->second.end(), u.attributes.begin(), u.attributes.end());
    }
    if (order.empty()) return;
    std::string ids;
    for (const int64_t id : order) ids += (ids.empty() ? "{" : ",") + std::to_string(id);
    std::unordered_map<int64_t, std::string> stored;
    conn_.copy_out(fmt::format("COPY (SELECT id, attrs FROM users WHERE id = ANY('{}}}'::bigint[]) AND attrs IS NOT NULL) TO STDOUT", ids),
                   [&](std::string_view line) {
                     const CopyRow r(line);
                     const int64_t id = r.int64(0);
                     stored[id] = sealer_.open(r.text(1), row_identity("users.attrs", id));
                   });
    conn_.exec("CREATE TEMP TABLE IF NOT EXISTS batch_attrs(id bigint, attrs text) ON COMMIT DELETE ROWS");
    conn_.copy_in("COPY batch_attrs FROM STDIN", [&](const auto& send) {
      std::string line;
      for (const int64_t id : order) {
        line.clear();
        field(line, number(id));
        field(line, sealer_.seal(rules::merged_attributes(stored[id], attributes[id]), row_identity("users.attrs", id)));
        send(line);
      }
    });
    conn_.exec("UPDATE users u SET attrs=b.attrs FROM batch_attrs b WHERE u.id=b.id");
  }

  void write_items(const std::vector<Item>& items) {
    if (items.empty()) return;
    conn_.copy_in("COPY batch_items FROM STDIN", [&](const auto& send) {
      std::string line;
      for (const auto& it : items) {
        line.clear();
        field(line, number(static_cast<int64_t>(*items_.find(it.id))));
        for (const auto* s : {&it.title, &it.category, &it.brand}) pg::copy_field(line, opt_text(*s));
        field(line, opt_number(it.price));
        pg::copy_field(line, opt_text(it.text));
        field(line, opt_flag(it.available));
        pg::copy_field(line, opt_text(it.aliases));
        pg::copy_field(line, opt_text(it.category_aliases));
        send(line);
      }
    });
    // Only rows that change: whether any did says if servers' catalogues must be read again (an
    // event feed that repeats each item's price changes nothing).
    const auto changed = conn_.exec(
        "UPDATE items i SET title=coalesce(b.title, i.title), category=coalesce(b.category, i.category), "
        "brand=coalesce(b.brand, i.brand), price=coalesce(b.price, i.price), text=coalesce(b.text, i.text), "
        "available=coalesce(b.available, i.available), aliases=coalesce(b.aliases, i.aliases), "
        "category_aliases=coalesce(b.category_aliases, i.category_aliases) FROM batch_items b WHERE i.id=b.id AND "
        "(coalesce(b.title, i.title) IS DISTINCT FROM i.title OR coalesce(b.category, i.category) IS DISTINCT FROM i.category OR "
        "coalesce(b.brand, i.brand) IS DISTINCT FROM i.brand OR coalesce(b.price, i.price) IS DISTINCT FROM i.price OR "
        "coalesce(b.text, i.text) IS DISTINCT FROM i.text OR coalesce(b.available, i.available) IS DISTINCT FROM i.available OR "
        "coalesce(b.aliases, i.aliases) IS DISTINCT FROM i.aliases OR "
        "coalesce(b.category_aliases, i.category_aliases) IS DISTINCT FROM i.category_aliases)");
    if (changed.affected() > 0) note_change("catalogue");
  }

  void write_events(int64_t ingest, const std::vector<std::pair<int64_t, Event>>& events, const BatchIds& ids) {
    if (events.empty()) return;
    const std::string ingest_field = number(ingest);
    conn_.copy_in("COPY events(user_id, id, item_id, type, quantity, value, ts, session, ingest, line) FROM STDIN",
                  [&](const auto& send) {
                    std::string line;
                    for (size_t i = 0; i < events.size(); ++i) {
                      const auto& [source_line, e] = events[i];
                      line.clear();
                      field(line, number(ids.event_users[i]));
                      field(line, number(++next_event_));
                      field(line, number(ids.event_items[i]));
                      field(line, number(static_cast<int64_t>(e.type)));
                      field(line, number(e.quantity));
                      field(line, opt_number(e.value));
                      field(line, number(e.timestamp));
                      pg::copy_field(line, opt_text(e.session));
                      field(line, ingest_field);
                      field(line, number(source_line));
                      send(line);
                    }
                  });
  }

  void write_texts(int64_t ingest, const std::vector<std::pair<int64_t, Text>>& texts, const BatchIds& ids) {
    if (texts.empty()) return;
    conn_.copy_in(
        "COPY texts(user_id, id, item_id, kind, language, body, label, category, sentiment, ts, ingest, line) FROM STDIN",
        [&](const auto& send) {
          std::string line;
          for (size_t i = 0; i < texts.size(); ++i) {
            const auto& [source_line, t] = texts[i];
            line.clear();
            field(line, opt_number(ids.text_users[i]));
            field(line, number(++next_text_));
            field(line, opt_number(ids.text_items[i]));
            field(line, text_kind_name(t.kind));
            pg::copy_field(line, opt_text(t.language));
            field(line, sealer_.seal(t.body, row_identity("texts.body", ingest, source_line)));
            pg::copy_field(line, opt_text(t.label));
            pg::copy_field(line, opt_text(t.category));
            field(line, opt_number(t.sentiment));
            field(line, opt_number(t.timestamp));
            field(line, number(ingest));
            field(line, number(source_line));
            send(line);
          }
        });
  }

  void write_rejects(int64_t ingest, const std::vector<RejectRow>& rejects) {
    if (rejects.empty()) return;
    // The first row of a line is kept (SQLite's INSERT OR IGNORE), and lines already stored stay.
    conn_.exec("CREATE TEMP TABLE IF NOT EXISTS batch_rejects(LIKE rejects) ON COMMIT DELETE ROWS");
    std::unordered_map<int64_t, bool> seen;
    conn_.copy_in("COPY batch_rejects(ingest, line, rule, field, value, reason, raw, flagged) FROM STDIN", [&](const auto& send) {
      std::string line;
      for (const auto& r : rejects) {
        if (!seen.emplace(r.line, true).second) continue;
        line.clear();
        field(line, number(ingest));
        field(line, number(r.line));
        field(line, r.rule);
        pg::copy_field(line, opt_text(r.field));
        const std::string value = sealer_.seal(r.value, row_identity("rejects.value", ingest, r.line));
        pg::copy_field(line, opt_text(value));
        field(line, r.reason);
        field(line, sealer_.seal(r.raw, row_identity("rejects.raw", ingest, r.line)));
        field(line, std::string_view(r.flagged ? "1" : "0"));
        send(line);
      }
    });
    conn_.exec("INSERT INTO rejects SELECT * FROM batch_rejects ON CONFLICT DO NOTHING");
  }

  IngestRecord ingest_by_id(int64_t id) {
    auto q = conn_.exec(std::string(kIngestColumns) + " WHERE id=$1", {Param::of(id)});
    if (!q.rows()) throw Error(fmt::format("store: no ingest {}", id));
    return ingest_row(q, 0);
  }
  static IngestRecord ingest_row(const pg::Result& q, int i) {
    IngestRecord r;
    r.id = q.int64(i, 0);
    r.source = q.text(i, 1);
    r.path = q.text(i, 2);
    r.content_hash = q.text(i, 3);
    r.mapping_hash = q.text(i, 4);
    r.status = q.text(i, 5);
    r.last_line = q.int64(i, 6);
    r.started = q.int64(i, 7);
    r.finished = q.null(i, 8) ? 0 : q.int64(i, 8);
    if (!q.null(i, 9)) r.summary = nlohmann::json::parse(q.text(i, 9), nullptr, false);
    return r;
  }

  int64_t scalar(const std::string& sql) {
    auto q = conn_.exec(sql);
    return q.rows() && !q.null(0, 0) ? q.int64(0, 0) : 0;
  }
  std::vector<CountRow> counts(const std::string& sql) {
    std::vector<CountRow> out;
    auto q = conn_.exec(sql);
    for (int i = 0; i < q.rows(); ++i) out.push_back({std::string(q.text(i, 0)), q.int64(i, 1), std::string(q.text(i, 2))});
    return out;
  }

  EventColumns read_events(const std::vector<std::string>* only, Use use, int64_t since = std::numeric_limits<int64_t>::min());

  std::string where_;
  rules::Sealer sealer_;
  pg::Connection conn_;
  IdMap users_, items_;
  std::vector<std::string> new_users_, new_items_;  // ext ids given dense ids in this batch
  bool ids_known_ = false, others_wrote_ = true, schema_ready_ = false;
  int64_t last_write_ = -1;  // write_count after this connection's last write
  int64_t erasures_seen_ = 0, next_event_ = 0, next_text_ = 0;
  int64_t batches_ = 0;
  rules::CrashPoint crash_;
};

EventColumns PgStore::read_events(const std::vector<std::string>* only, Use use, int64_t since) {
  // One snapshot for the id tables and the events (a commit between them would give events whose
  // users or items the tables do not have).
  const Snapshot snapshot(conn_);
  EventColumns e;
  conn_.copy_out("COPY (SELECT id, ext_id, coalesce(region, ''), signup_ts FROM users ORDER BY id) TO STDOUT",
                 [&](std::string_view line) {
                   const CopyRow r(line);
                   const auto id = static_cast<size_t>(r.int64(0));
                   if (e.user_ids.size() <= id) {
                     e.user_ids.resize(id + 1);
                     e.user_regions.resize(id + 1);
                     e.user_signups.resize(id + 1, std::numeric_limits<int64_t>::min());
                   }
                   e.user_ids[id] = r.text(1);
                   e.user_regions[id] = r.text(2);
                   if (!r.null(3)) e.user_signups[id] = r.int64(3);
                 });
  conn_.copy_out("COPY (SELECT id, ext_id, coalesce(category, ''), coalesce(brand, ''), price, "
                 "trim(coalesce(title, '') || ' ' || coalesce(text, '')) FROM items ORDER BY id) TO STDOUT",
                 [&](std::string_view line) {
                   const CopyRow r(line);
                   const auto id = static_cast<size_t>(r.int64(0));
                   if (e.item_ids.size() <= id) {
                     e.item_ids.resize(id + 1);
                     e.item_categories.resize(id + 1);
                     e.item_brands.resize(id + 1);
                     e.item_prices.resize(id + 1, std::numeric_limits<double>::quiet_NaN());
                     e.item_texts.resize(id + 1);
                   }
                   e.item_ids[id] = r.text(1);
                   e.item_categories[id] = r.text(2);
                   e.item_brands[id] = r.text(3);
                   if (!r.null(4)) e.item_prices[id] = r.real(4);
                   e.item_texts[id] = r.text(5);
                 });
  std::string sql = "SELECT user_id, item_id, type, quantity, value, ts, session FROM events";
  if (only) {
    std::string list;
    for (const auto& u : *only) list += (list.empty() ? "" : ",") + conn_.literal(u);
    sql += list.empty() ? " WHERE false" : " WHERE user_id IN (SELECT id FROM users WHERE ext_id IN (" + list + "))";
  } else if (use != Use::Any) {
    sql += fmt::format(" WHERE user_id NOT IN (SELECT id FROM users WHERE {}=0)", consent_column(use));
  }
  if (since != std::numeric_limits<int64_t>::min())
    sql += fmt::format(" {} ts >= {}", sql.find(" WHERE ") == std::string::npos ? "WHERE" : "AND", since);
  sql += " ORDER BY ts, id";
  IdMap sessions;
  conn_.copy_out("COPY (" + sql + ") TO STDOUT", [&](std::string_view line) {
    const CopyRow r(line);
    e.user.push_back(static_cast<int32_t>(r.int64(0)));
    e.item.push_back(static_cast<int32_t>(r.int64(1)));
    e.type.push_back(static_cast<uint8_t>(r.int64(2)));
    e.quantity.push_back(r.real(3));
    e.value.push_back(r.null(4) ? std::numeric_limits<double>::quiet_NaN() : r.real(4));
    e.timestamp.push_back(r.int64(5));
    e.session.push_back(r.null(6) ? -1 : static_cast<int32_t>(sessions.intern(r.text(6))));
  });
  e.sessions.reserve(sessions.size());
  for (size_t i = 0; i < sessions.size(); ++i) e.sessions.emplace_back(sessions.name(static_cast<uint32_t>(i)));
  return e;
}

DatasetStats PgStore::stats(int top_n) {
  const Snapshot snapshot(conn_);  // counts of one moment
  DatasetStats s;
  s.users = scalar("SELECT count(*) FROM users");
  s.items = scalar("SELECT count(*) FROM items");
  s.events = scalar("SELECT count(*) FROM events");
  s.texts = scalar("SELECT count(*) FROM texts");
  s.rejects = scalar("SELECT count(*) FROM rejects WHERE flagged=0");
  s.sessions = scalar("SELECT count(DISTINCT session) FROM events WHERE session IS NOT NULL");
  {
    auto q = conn_.exec("SELECT min(ts), max(ts) FROM events");
    if (!q.null(0, 0)) {
      s.first_event = q.int64(0, 0);
      s.last_event = q.int64(0, 1);
    }
  }
  {
    // Summed in id order, as SQLite's scan sums: doubles added in another order (a heap whose rows
    // an interrupted ingest left in another place) differ in their last bits.
    auto q = conn_.exec("SELECT coalesce(sum(CASE type WHEN 3 THEN quantity*value WHEN 4 THEN -abs(quantity*value) END "
                        "ORDER BY id), 0) FROM events WHERE value IS NOT NULL");
    s.revenue = q.real(0, 0);
  }
  s.event_types = counts("SELECT t.name, count(*), '' FROM events e JOIN event_types t ON t.code=e.type "
                         "GROUP BY e.type, t.name ORDER BY count(*) DESC, e.type");
  s.top_items = counts(fmt::format("SELECT i.ext_id, n, coalesce(i.title, '') FROM (SELECT item_id, count(*) n FROM events "
                                   "GROUP BY item_id ORDER BY n DESC, item_id LIMIT {}) e JOIN items i ON i.id=e.item_id "
                                   "ORDER BY n DESC, e.item_id",
                                   top_n));
  s.top_categories = counts(fmt::format("SELECT coalesce(i.category, '(none)'), count(*), '' FROM events e "
                                        "JOIN items i ON i.id=e.item_id GROUP BY i.category "
                                        "ORDER BY count(*) DESC, i.category NULLS FIRST LIMIT {}",
                                        top_n));
  s.text_kinds = counts("SELECT kind, count(*), '' FROM texts GROUP BY kind ORDER BY count(*) DESC, kind");
  s.text_languages = counts("SELECT coalesce(language, '(unknown)'), count(*), '' FROM texts GROUP BY language "
                            "ORDER BY count(*) DESC, language NULLS FIRST");
  for (const auto& m : rules::missing_columns())
    s.missing.push_back({m.name, scalar(fmt::format("SELECT count(*) FROM {} WHERE {} IS NULL", m.table,
                                                    column_of(m.table, m.column))),
                         ""});
  s.ingests = ingests();
  return s;
}

Erasure PgStore::erase_user(const std::string& user) {
  Erasure out;
  auto found = conn_.exec("SELECT id, attrs FROM users WHERE ext_id=$1", {Param::text(user)});
  if (!found.rows()) {
    // Feedback may name someone the store has no other row of.
    out.feedback = conn_.exec("DELETE FROM feedback WHERE user_id=$1", {Param::text(user)}).affected();
    out.found = out.feedback > 0;
    if (out.found) out.traces.push_back(user);
    return out;
  }
  const int64_t id = found.int64(0, 0);
  out.found = true;
  // The strings that identify the person: their id, identifying attributes, PII in their texts.
  out.traces.push_back(user);
  if (!found.null(0, 1))
    rules::add_attribute_traces(
        out, nlohmann::json::parse(sealer_.open(std::string(found.text(0, 1)), row_identity("users.attrs", id)), nullptr, false));
  conn_.copy_out(fmt::format("COPY (SELECT body, ingest, line FROM texts WHERE user_id={}) TO STDOUT", id),
                 [&](std::string_view line) {
                   const CopyRow r(line);
                   rules::add_text_traces(out, sealer_.open(r.text(0), row_identity("texts.body", r.int64(1), r.int64(2))));
                 });
  rules::finish_traces(out);

  write([&] {
    out.events = conn_.exec("DELETE FROM events WHERE user_id=$1", {Param::of(id)}).affected();
    out.texts = conn_.exec("DELETE FROM texts WHERE user_id=$1", {Param::of(id)}).affected();
    out.profiles = conn_.exec("DELETE FROM profiles WHERE user_id=$1", {Param::text(user)}).affected();
    out.feedback = conn_.exec("DELETE FROM feedback WHERE user_id=$1", {Param::text(user)}).affected();
    std::vector<std::pair<int64_t, int64_t>> doomed;
    conn_.copy_out("COPY (SELECT ingest, line, coalesce(value, ''), raw FROM rejects ORDER BY ingest, line) TO STDOUT",
                   [&](std::string_view line) {
                     const CopyRow r(line);
                     const int64_t ingest = r.int64(0), n = r.int64(1);
                     if (rules::names_the_user(out, sealer_.open(r.text(2), row_identity("rejects.value", ingest, n))) ||
                         rules::names_the_user(out, sealer_.open(r.text(3), row_identity("rejects.raw", ingest, n))))
                       doomed.emplace_back(ingest, n);
                   });
    for (const auto& [ingest, n] : doomed)
      conn_.exec("DELETE FROM rejects WHERE ingest=$1 AND line=$2", {Param::of(ingest), Param::of(n)});
    out.rejects = static_cast<int64_t>(doomed.size());
    // A tombstone keeps the dense id; nothing in it points back at the person.
    conn_.exec("UPDATE users SET ext_id=$1, age=NULL, gender=NULL, region=NULL, signup_ts=NULL, attrs=NULL, "
               "consent_personalisation=0, consent_analytics=0 WHERE id=$2",
               {Param::text(fmt::format("(erased)#{}", id)), Param::of(id)});
    // Other writers see the count move and read their id maps again.
    conn_.exec("INSERT INTO meta(key, value) VALUES ('erasures', '1') "
               "ON CONFLICT(key) DO UPDATE SET value=(meta.value::bigint + 1)::text");
    // Every answer computed from the whole store counted the person.
    conn_.exec(fmt::format("SELECT pg_advisory_xact_lock({})", kAnswersLock));
    conn_.exec("DELETE FROM answers");
    bump_generation();
    note_change("erasure");  // no id: every server empties its whole cache
  }, /*profiles_too=*/true);
  ids_known_ = false;
  // Dead rows are pruned from the tables' pages now rather than at autovacuum's leisure. What
  // PostgreSQL does not promise (docs/privacy.md): that no byte of them stays in a page's free
  // space, the WAL, a replica or a backup until those are rewritten or rotate.
  conn_.exec("VACUUM events, texts, profiles, rejects, users, feedback");
  return out;
}

int64_t PgStore::reseal() {
  sealer_.require_key_to_reseal();
  // Marked first: writers from now on seal what they write; the rewrite below seals the rest.
  if (!sealer_.sealed) {
    put_meta("sealed", true);
    sealer_.sealed = true;
  }
  struct Column {
    const char* select;
    const char* update;
    const char* name;
    bool two_keys;
    bool by_id = false;  // updated by the row's id (the select's 4th column), which is indexed
  };
  const Column columns[] = {
      {"SELECT ingest, line, body, id FROM texts ORDER BY id", "UPDATE texts SET body=$1 WHERE id=$2", "texts.body", true,
       true},
      {"SELECT id, -1, attrs FROM users WHERE attrs IS NOT NULL ORDER BY id", "UPDATE users SET attrs=$1 WHERE id=$2",
       "users.attrs", false},
      {"SELECT ingest, line, value FROM rejects WHERE value IS NOT NULL ORDER BY ingest, line",
       "UPDATE rejects SET value=$1 WHERE ingest=$2 AND line=$3", "rejects.value", true},
      {"SELECT ingest, line, raw FROM rejects ORDER BY ingest, line", "UPDATE rejects SET raw=$1 WHERE ingest=$2 AND line=$3",
       "rejects.raw", true},
  };
  int64_t rewritten = 0;
  for (const auto& c : columns) {
    struct Change {
      int64_t a, b;
      std::string value;
    };
    std::vector<Change> changes;
    conn_.copy_out(fmt::format("COPY ({}) TO STDOUT", c.select), [&](std::string_view line) {
      const CopyRow r(line);
      const int64_t a = r.int64(0), b = r.int64(1);
      std::string next = sealer_.resealed(r.text(2), row_identity(c.name, a, c.two_keys ? b : -1));
      if (!next.empty()) c.by_id ? changes.push_back({r.int64(3), -1, std::move(next)}) : changes.push_back({a, b, std::move(next)});
    });
    // Small transactions, so readers and writers go on meanwhile.
    for (size_t i = 0; i < changes.size(); i += 1000) {
      write([&] {
        for (size_t j = i; j < std::min(changes.size(), i + 1000); ++j) {
          std::vector<Param> params = {Param::text(changes[j].value), Param::of(changes[j].a)};
          if (c.two_keys && !c.by_id) params.push_back(Param::of(changes[j].b));
          conn_.exec(c.update, params);
        }
      });
    }
    rewritten += static_cast<int64_t>(changes.size());
  }
  return rewritten;
}

}  // namespace

std::unique_ptr<Store> open_postgres_store(const std::string& url, const StoreOptions& options) {
  return std::make_unique<PgStore>(url, options);
}

}  // namespace persona::store
