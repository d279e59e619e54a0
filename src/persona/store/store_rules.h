#pragma once
// What every store backend does the same way, whatever its database: the identities sealed
// values are bound to, how a batch's repeated items merge, which strings identify a person who
// asks to be forgotten, and the crash hook of the durability tests. Internal to the store.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/core/model.h"
#include "persona/store/store.h"

namespace persona::store::rules {

// The associated data of a sealed value: the column and the row it belongs to, so a ciphertext
// copied to another row or column does not open.
std::string row_identity(const char* column, int64_t a, int64_t b = -1);

// The users column that holds a use's consent ("" for Use::Any).
const char* consent_column(Use use);

int64_t now_seconds();

// The query of a numeric model field's values ("event.value" -> SELECT value FROM events ...),
// the same SQL on every backend; a clear error for a field that is not one.
const char* numeric_field_query(const std::string& field);

// The query of Store::for_each_feedback_tally, the same SQL on every backend but for the
// placeholder of the experiment's name ("?" or "$1"): variant, user, day, impressions, clicks,
// carts, purchases, not interested, revenue.
std::string feedback_tally_sql(const char* placeholder);

// The columns whose missing values `stats` counts: its name there, the table and the canonical
// column (StoreTable's names; a backend maps them to its own).
struct MissingColumn {
  const char* name;
  const char* table;
  const char* column;
};
const std::vector<MissingColumn>& missing_columns();

// A retail log repeats each item on every invoice line: each item once per batch, in first-seen
// order, the last non-empty value of each attribute winning.
std::vector<Item> merged_items(const std::vector<Item>& items);

// Sealing of sensitive values (text bodies, user attributes, reject rows) for one store.
class Sealer {
 public:
  Sealer(std::string where, std::shared_ptr<const privacy::KeyRing> keys) : where_(std::move(where)), keys_(std::move(keys)) {}
  // A value as stored: sealed when the store is sealed ("" stays "": no value).
  std::string seal(const std::string& value, const std::string& identity) const;
  // A stored value as read: sealed ones opened (a clear error without the key or when tampered).
  std::string open(std::string value, const std::string& identity) const;
  // The value under the active key: plain ones sealed, older keys' ones resealed; "" when it
  // already is.
  std::string resealed(const std::string& stored, const std::string& identity) const;
  // Refuses a write into a sealed store without the key.
  void require_key_to_write() const;
  void require_key_to_reseal() const;
  bool sealed = false;  // the store is sealed (meta "sealed"), as last read
  const std::shared_ptr<const privacy::KeyRing>& keys() const { return keys_; }

 private:
  std::string where_;
  std::shared_ptr<const privacy::KeyRing> keys_;
};

// The strings that identify a person, for an erasure: their id, identifying attribute values,
// words of their names, PII in their attributes and texts. `attrs` is their opened attribute
// object (or null). Sorted and unique.
void add_attribute_traces(Erasure& out, const nlohmann::json& attrs);
void add_text_traces(Erasure& out, const std::string& body);
void finish_traces(Erasure& out);
// Whether a text (a reject row's value or raw line) names the person.
bool names_the_user(const Erasure& traces, const std::string& text);

// Attributes merged into the stored object (new keys win), dumped as stored.
std::string merged_attributes(const std::string& stored_json, const std::vector<std::pair<std::string, std::string>>& attributes);

// Test hook (the fault-injection habit of LevelDB's Env): PERSONA_CRASH_AT="N:before" or
// "N:after" ends the process abruptly, as kill -9 would, around the commit of the Nth batch.
struct CrashPoint {
  int64_t batch = -1;
  bool before_commit = false;
  CrashPoint();
  void before(int64_t batch_number) const;
  void after(int64_t batch_number) const;
};

// A batch's stream keys are stored as one row per part: its lowest and highest key, and every
// key packed (sorted, 16 bytes each), not a row per key: a batch has tens of thousands, each
// written once and deleted soon after, and one row costs the writer almost nothing.
struct PackedKeys {
  std::string part;
  StreamEntryKey first, last;
  std::string packed;
};
std::vector<PackedKeys> pack_stream_keys(const std::vector<StreamEntryKey>& keys);
// The lowest and highest of `keys` in each part.
std::map<std::string, std::pair<StreamEntryKey, StreamEntryKey>> stream_key_spans(const std::vector<StreamEntryKey>& keys);
// Sets stored[i] for each keys[i] of `part` found in `packed`.
void mark_stored(const std::vector<StreamEntryKey>& keys, const std::string& part, std::string_view packed,
                 std::vector<bool>& stored);

}  // namespace persona::store::rules
