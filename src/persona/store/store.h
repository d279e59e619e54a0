#pragma once
// The Store: where ingested, cleaned data lives. One interface, so that a server database can
// replace the embedded SQLite default later without touching the stages that read and write it.
#include <compare>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/core/error.h"
#include "persona/core/model.h"

namespace persona::privacy {
class KeyRing;
}

namespace persona::store {

// What a person's data is used for. Each use needs the person's consent (unknown counts as
// given; docs/privacy.md): personalisation (their profile, recommendations and answers tailored
// to them) and analytics (statistics, segments, forecasts, every model trained across users).
enum class Use : uint8_t { Any, Personalisation, Analytics };
struct Consent {
  bool personalisation = true, analytics = true;
};

// What `erase_user` removed, and the strings that identified the person (their id, attribute
// values, PII found in their texts), so that files outside the store can be searched for them.
struct Erasure {
  bool found = false;
  int64_t events = 0, texts = 0, profiles = 0, rejects = 0, feedback = 0;
  std::vector<std::string> traces;
  // The words of their name attributes, in lower case: a model's vocabulary may hold one alone
  // (too loose for deleting lines of a log, right for finding models that learned from them).
  std::vector<std::string> name_words;
};

struct StoreOptions {
  // The key ring: in a sealed store (one that reseal() sealed), sensitive columns (text bodies,
  // user attributes, reject log rows) are sealed with it (XChaCha20-Poly1305, the row's identity
  // as associated data) and opened on read. A sealed store refuses to be written, or its sealed
  // values read, without it. Opening a plain store with a key leaves it plain.
  std::shared_ptr<const privacy::KeyRing> keys;
};

// A sealed store used without its key: the caller is missing configuration, not sending bad
// data (the server answers 503 and is not ready).
struct KeyRequired : Error {
  using Error::Error;
};

// The store cannot be reached (its database server is down, restarting or unreachable): nothing
// is wrong with the request, which may be tried again later (the server answers 503).
struct Unavailable : Error {
  using Error::Error;
};

// A row the cleaning rules removed (or flagged), kept for the reject log.
struct RejectRow {
  int64_t line = 0;
  std::string rule, field, value, reason, raw;
  bool flagged = false;  // kept, but flagged (outliers with action "flag")
};

// Everything one batch of source rows produced; written in one transaction together with the
// ingest's checkpoint, so a crash leaves either all of it or none of it.
// Where an entry of a stream came from (persona consume): a Redis entry id ms-seq (part "",
// hi = ms, lo = seq) or a Kafka message (part = its partition, hi = its offset, lo = 0).
struct StreamEntryKey {
  std::string part;
  int64_t hi = 0, lo = 0;
  auto operator<=>(const StreamEntryKey&) const = default;
};
// The entries of one stream (with its consumer group, e.g. "redis-stream://host/key#group")
// that a batch came from: stored with it, in its transaction, so that an entry delivered again
// is never stored twice.
struct StreamEntries {
  std::string stream;
  std::vector<StreamEntryKey> keys;
};

// Another writer stored some of a batch's stream entries first (a consumer that claimed them
// from one thought dead): nothing was written; drop the stored ones and write the rest.
struct StreamEntriesStored : Error {
  using Error::Error;
};

struct Batch {
  std::vector<User> users;
  std::vector<Item> items;
  std::vector<std::pair<int64_t, Event>> events;  // (source line, event)
  std::vector<std::pair<int64_t, Text>> texts;
  std::vector<RejectRow> rejects;
  // Feedback rows (a source mapped onto feedback), stamped with their experiment and variant by
  // the caller; stored once per request, item and kind, like put_feedback.
  std::vector<Feedback> feedback;
  StreamEntries stream;  // none for a file
};

// One file ingested with one mapping. Identified by the file's content hash and the mapping's
// fingerprint: the same file with the same mapping is never ingested twice.
struct IngestRecord {
  int64_t id = 0;
  std::string source, path, content_hash, mapping_hash, status;  // status: running | complete | failed
  int64_t last_line = 0;  // every source line up to here is in the store
  bool resumed = false;   // begin_ingest found it running: an earlier run was interrupted
  int64_t started = 0, finished = 0;
  nlohmann::json summary;  // the cleaning summary, when complete
};

struct CountRow {
  std::string name;
  int64_t count = 0;
  std::string detail;
};

struct DatasetStats {
  int64_t users = 0, items = 0, events = 0, texts = 0, sessions = 0, rejects = 0;
  std::optional<int64_t> first_event, last_event;
  double revenue = 0;  // sum of quantity * value over purchases, less returns
  std::vector<CountRow> event_types, top_items, top_categories, text_kinds, text_languages;
  std::vector<CountRow> missing;  // "table.column" -> rows without a value
  std::vector<IngestRecord> ingests;
};

// Every event, columnar, with dense ids (the store's own 0..n-1 ids) and the string tables to
// read them back. The hot input of profiles, propensity, forecasts and recommendations.
struct EventColumns {
  std::vector<int32_t> user, item, session;  // session: index into `sessions`, -1 when none
  std::vector<uint8_t> type;                 // EventType
  std::vector<double> quantity, value;       // value: NaN when none (double: spend to the cent)
  std::vector<int64_t> timestamp;
  std::vector<std::string> user_ids, user_regions;      // by user id
  std::vector<int64_t> user_signups;                    // by user id; INT64_MIN when unknown
  std::vector<std::string> item_ids, item_categories, item_brands;  // by item id
  std::vector<double> item_prices;                      // by item id; NaN when unknown
  std::vector<std::string> item_texts;                  // by item id: title and description
  std::vector<std::string> sessions;
  size_t size() const { return user.size(); }
};

// The highest event and text row ids: what a later incremental step starts after.
struct ChangeMark {
  int64_t event = 0, text = 0;
  nlohmann::json to_json() const { return {{"event", event}, {"text", text}}; }
  static ChangeMark from_json(const nlohmann::json& j) { return {j.value("event", int64_t{0}), j.value("text", int64_t{0})}; }
};

// A knowledge graph as stored: entities (name, type) by position, and triples whose object is an
// entity (object >= 0) or a literal.
struct GraphEntity {
  std::string name, type;
};
struct GraphTriple {
  int64_t subject = 0;
  std::string relation;
  int64_t object = -1;
  std::string literal;
};
struct Graph {
  std::vector<GraphEntity> entities;
  std::vector<GraphTriple> triples;
};

// A table of the store in its canonical form, the same on every backend: what `persona store
// copy` moves and `persona store digest` hashes (docs/data-formats.md, "Store tables").
struct StoreColumn {
  const char* name;
  char kind;  // 'I' integer, 'R' double, 'T' text
};
struct StoreTable {
  const char* name;
  std::vector<StoreColumn> columns;
  const char* order;  // the key the rows are listed by
};
// Every table, in the order a copy writes them.
const std::vector<StoreTable>& store_tables();
// One row: values as stored (sealed values stay sealed; integers in decimal, doubles in their
// shortest exact form), NULL as nullopt.
using StoreRow = std::vector<std::optional<std::string>>;

using persona::Feedback;  // core/model.h
// One user's feedback in one variant on one day (UTC, days since the epoch): the unit the
// experiment report sums (users are what the split randomises, so variances are per user).
struct FeedbackTally {
  std::string variant, user;
  int64_t day = 0, impressions = 0, clicks = 0, carts = 0, purchases = 0, not_interested = 0;
  double revenue = 0;
};

// See Store::share_answer.
struct SharedAnswer {
  int64_t generation = -1, erasures = 0;
  std::string body;
};

class Store {
 public:
  virtual ~Store() = default;

  // Starts (or finds) the ingest of a file. A complete one is returned as it is; a running one
  // (an earlier run that was killed) is resumed from its last_line; a failed one starts again.
  virtual IngestRecord begin_ingest(const std::string& source, const std::string& path, const std::string& content_hash,
                                    const std::string& mapping_hash) = 0;
  // Writes a batch and moves the ingest's checkpoint to `last_line`, atomically; with its stream
  // entries' keys, refused whole (StreamEntriesStored) when any of them is stored already.
  virtual void write_batch(int64_t ingest, const Batch& batch, int64_t last_line) = 0;
  // Of `entries`, which an earlier batch stored (in the order of entries.keys).
  virtual std::vector<bool> stored_stream_entries(const StreamEntries& entries) = 0;
  // Forgets the stored keys of `stream`'s `part` below `below`, a batch at a time (a batch with a
  // key at or above it stays whole): entries the stream will never deliver again.
  virtual void prune_stream_entries(const std::string& stream, const StreamEntryKey& below) = 0;
  virtual void finish_ingest(int64_t ingest, const nlohmann::json& summary) = 0;
  // Marks an ingest failed (it kept too little): its events and texts are removed, its rejects
  // kept for the reject log; users and items it upserted stay (a later run upserts them again).
  virtual void fail_ingest(int64_t ingest, const nlohmann::json& summary) = 0;

  virtual std::vector<IngestRecord> ingests() = 0;
  virtual void for_each_reject(int64_t ingest, const std::function<void(const RejectRow&)>& fn) = 0;
  virtual DatasetStats stats(int top_n = 10) = 0;

  // All values of a numeric model field ("event.value", "item.price", "user.age", ...).
  virtual std::vector<double> numeric_values(const std::string& field) = 0;
  virtual void put_meta(const std::string& key, const nlohmann::json& value) = 0;
  virtual std::optional<nlohmann::json> get_meta(const std::string& key) = 0;

  // All events in time order (ties by insertion) of the users who consent to `use`.
  virtual EventColumns events(Use use) = 0;
  EventColumns events() { return events(Use::Analytics); }
  // Only the events at or after `since` (unix seconds), in time order: memory bounded by the
  // window, not the store (the id tables stay complete, so ids mean what they mean elsewhere).
  virtual EventColumns events_since(Use use, int64_t since) = 0;
  // The events of some users only (external ids), in time order; the id tables stay complete.
  // Their own data, served to them: no consent filter.
  virtual EventColumns events_of(const std::vector<std::string>& users) = 0;
  // One user's events with id tables holding only what they mention (one user, their items; no
  // sessions, regions or texts): the quick read behind serving one request.
  virtual EventColumns history(const std::string& user) = 0;
  virtual ChangeMark change_mark() = 0;
  // A number that moves whenever the stored data changes (every written batch, profiles written,
  // a failed ingest's removal, an erasure), in any process: answers computed from the whole store are
  // kept until it moves (the dashboard's aggregates).
  virtual int64_t generation() = 0;
  // How many erasures the store has seen: work computed beside one is done again.
  virtual int64_t erasure_count() = 0;
  // The external ids of users with events or texts added after `since`.
  virtual std::vector<std::string> users_changed_since(const ChangeMark& since) = 0;

  // Profiles: one JSON document per user. replace_all drops every profile not in `rows`.
  // `erasures_before`: the erasure count read before the profiles' data was; when an erasure has
  // committed since, nothing is written and the answer is false (compute again: a profile of
  // someone erased is never written back). -1: write regardless.
  virtual bool put_profiles(const std::vector<std::pair<std::string, std::string>>& rows, bool replace_all,
                            int64_t erasures_before = -1) = 0;
  virtual std::optional<std::string> profile(const std::string& user) = 0;
  virtual void for_each_profile(const std::function<void(const std::string& user, const std::string& json)>& fn) = 0;
  // Every stored text (with external user and item ids), in insertion order; texts of users who
  // refuse `use` are left out (texts without a user are always in).
  virtual void for_each_text(Use use, const std::function<void(const Text&)>& fn) = 0;
  void for_each_text(const std::function<void(const Text&)>& fn) { for_each_text(Use::Analytics, fn); }
  // A user's consent (unknown users and unknown answers: given).
  virtual Consent consent(const std::string& user) = 0;
  // External ids of the users who refuse `use`.
  virtual std::vector<std::string> users_refusing(Use use) = 0;

  // Feedback rows; a row whose (request_id, item, kind) is stored already is skipped. Answers how
  // many were new.
  virtual int64_t put_feedback(const std::vector<Feedback>& rows) = 0;
  // An experiment's feedback, summed per variant, user and day, in that order.
  virtual void for_each_feedback_tally(const std::string& experiment, const std::function<void(const FeedbackTally&)>& fn) = 0;
  // The right to be forgotten: the user's events, texts, profile, feedback and the reject rows naming them
  // are deleted (secure_delete, then VACUUM and a WAL checkpoint, so no copy stays in the file);
  // the users row keeps only a meaningless tombstone id so that dense ids stay dense.
  virtual Erasure erase_user(const std::string& user) = 0;
  // Seals every sensitive value with the active key: plain ones (a store sealed after the fact)
  // and ones under older keys (after `persona keys rotate`). Reads go on meanwhile. Returns how
  // many values were rewritten.
  virtual int64_t reseal() = 0;
  // Whether the store holds sealed values (and so needs the key).
  virtual bool sealed() = 0;
  // Items known to be unavailable now (available = false), which recommendations leave out.
  virtual std::vector<std::string> unavailable_items() = 0;
  // The users who consent to `use`, with their model fields and consent, in id order; never their
  // free-form attributes (which may identify them; they are sealed when a key is at hand).
  virtual std::vector<User> users(Use use) = 0;
  // The catalogue: every item with its attributes, in id order.
  virtual std::vector<Item> items() = 0;
  // The assistant's knowledge graph: replaced whole, read whole.
  virtual void put_graph(const Graph& graph) = 0;
  virtual Graph graph() = 0;

  virtual int schema_version() = 0;
  // A backfill (`persona ingest --bulk`): between these two, the events' and texts' indexes are
  // gone and are built again in one pass at the end, which is much faster for a large load and
  // slow for anyone reading meanwhile. Batches, checkpoints and ingest records are as always. A
  // load that dies in between leaves the indexes to the next open of the store. The SQLite store
  // does nothing here: one writer with its indexes in cache is its bulk path already.
  virtual void begin_bulk_load() {}
  virtual void end_bulk_load() {}
  // Whether the store's connection still works (a database connection can be cut; a pool drops
  // a store that answers false and opens another).
  virtual bool connected() { return true; }
  // A model file published for every server of a shared store (PostgreSQL: table models, with
  // its checksum, recorded as a "model" change); nothing on SQLite, which one server serves
  // from its models folder. published_model: the bytes when its checksum is not `have_checksum` (none
  // when unpublished or the same); a damaged copy throws.
  // `erasures_before`: the erasure count read before the model's training read the events; when
  // another erasure has committed since, nothing is published and the answer is false (train
  // again: a published model never predates a committed erasure). -1: publish regardless.
  virtual bool publish_model(const std::string& name, const std::string& bytes, int64_t erasures_before = -1) {
    (void)name, (void)bytes, (void)erasures_before;
    return true;
  }
  virtual void withdraw_model(const std::string& name) { (void)name; }  // no longer published (it was removed)
  // Answers computed from the whole store (the dashboard's aggregates) under a key, with the
  // generation and erasure count they were computed at: on PostgreSQL, computed by one server and
  // read by the others (the newest kept; none kept from before an erasure, which empties them; a
  // few dozen keys, the least recently computed dropped). Nothing on SQLite, whose one server
  // keeps its own.
  virtual void share_answer(const std::string& key, const SharedAnswer& answer) { (void)key, (void)answer; }
  virtual std::optional<SharedAnswer> shared_answer(const std::string& key) {
    (void)key;
    return std::nullopt;
  }
  virtual std::vector<std::string> shared_answer_keys() { return {}; }
  virtual std::optional<std::string> published_model(const std::string& name, const std::string& have_checksum) {
    (void)name, (void)have_checksum;
    return std::nullopt;
  }

  // The rows of a canonical table, in key order, from one snapshot of the store.
  virtual void export_table(const StoreTable& table, const std::function<void(const StoreRow&)>& fn) = 0;
  // Rows added to a table as they are (ids and all), in one transaction: the receiving end of a
  // copy into an empty store.
  virtual void import_rows(const StoreTable& table, const std::vector<StoreRow>& rows) = 0;
};

// Opens a store by its location: "sqlite:PATH" or a bare path (the embedded default), or a
// PostgreSQL URL ("postgresql://user@host/db", "postgres:///db?host=/socket/dir").
std::unique_ptr<Store> open_store(const std::string& location, const StoreOptions& options = {});
// A model file's checksum (XXH3-128, hex): what a published model is checked against.
std::string model_checksum(std::string_view bytes);
// Whether a location names a PostgreSQL database (not a file).
bool is_postgres_location(const std::string& location);
// The file of a SQLite location ("sqlite:PATH" -> PATH; a bare path as it is).
std::string sqlite_path(const std::string& location);
// A location as it may be shown and logged: a URL without its password.
std::string printable_location(const std::string& location);
// A location as the program keeps it: "sqlite:PATH" becomes PATH; URLs stay as they are.
std::string normal_location(const std::string& location);
// Where files kept beside a store start (its reject log, DP ledger, ingest lock): the SQLite
// file itself, or for a database its name, in the working directory ("shop" for .../shop).
std::string local_base(const std::string& location);
// The store's identity in ledgers: the absolute file, or the URL without its password.
std::string store_identity(const std::string& location);
// Whether there is a store to open (a database is asked when it is opened).
bool store_exists(const std::string& location);

// Opens a store on a PostgreSQL database that exists (its tables are created or migrated).
std::unique_ptr<Store> open_postgres_store(const std::string& url, const StoreOptions& options = {});

// Opens (creating when absent) an embedded SQLite store. Throws persona::Error for a file that
// is not a Persona store or was written by a newer schema.
std::unique_ptr<Store> open_sqlite_store(const std::string& path, const StoreOptions& options = {});

}  // namespace persona::store
