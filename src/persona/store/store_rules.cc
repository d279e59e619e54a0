#include "persona/store/store_rules.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/privacy/crypto.h"
#include "persona/privacy/keys.h"
#include "persona/privacy/pii.h"

namespace persona::store::rules {
namespace {

constexpr const char* kKeyHint = "give the key: --key-file, PERSONA_KEY_FILE or PERSONA_MASTER_KEY (see docs/privacy.md)";

// The words of a name, lower case (ASCII), of at least 4 bytes: shorter ones are too common to
// mean the person ("Li", "Ann"); a Chinese name, without spaces, is one word.
std::vector<std::string> name_words(const std::string& name) {
  std::vector<std::string> out;
  std::string word;
  for (size_t i = 0; i <= name.size(); ++i) {
    const char c = i < name.size() ? name[i] : ' ';
    if (c == ' ' || c == '\t' || c == ',' || c == '.' || c == '-') {
      if (word.size() >= 4) out.push_back(word);
      word.clear();
    } else {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

// Attribute names whose values identify a person (their values are traces to erase).
bool identifying_attribute(std::string_view name) {
  for (const char* word : {"name", "email", "mail", "phone", "mobile", "tel", "address", "addr", "姓名", "名字", "电话",
                           "手机", "地址", "邮箱", "身份证"})
    if (name.find(word) != std::string_view::npos) return true;
  return false;
}

}  // namespace

std::string row_identity(const char* column, int64_t a, int64_t b) {
  return b < 0 ? fmt::format("{}:{}", column, a) : fmt::format("{}:{}:{}", column, a, b);
}

const char* consent_column(Use use) {
  switch (use) {
    case Use::Personalisation: return "consent_personalisation";
    case Use::Analytics: return "consent_analytics";
    case Use::Any: break;
  }
  return "";
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const char* numeric_field_query(const std::string& field) {
  static const std::unordered_map<std::string, const char*> queries = {
      {"event.quantity", "SELECT quantity FROM events ORDER BY id"},
      {"event.value", "SELECT value FROM events WHERE value IS NOT NULL ORDER BY id"},
      {"item.price", "SELECT price FROM items WHERE price IS NOT NULL ORDER BY id"},
      {"user.age", "SELECT age FROM users WHERE age IS NOT NULL ORDER BY id"},
      {"text.sentiment", "SELECT sentiment FROM texts WHERE sentiment IS NOT NULL ORDER BY id"}};
  const auto it = queries.find(field);
  if (it == queries.end())
    throw Error(fmt::format("\"{}\" is not a numeric field of the store", field), {},
                "numeric fields: event.quantity, event.value, item.price, user.age, text.sentiment");
  return it->second;
}

const std::vector<MissingColumn>& missing_columns() {
  static const std::vector<MissingColumn> columns = {
      {"users.age", "users", "age"},           {"users.gender", "users", "gender"},
      {"users.region", "users", "region"},     {"users.signup_time", "users", "signup_ts"},
      {"users.attributes", "users", "attrs"},  {"items.title", "items", "title"},
      {"items.category", "items", "category"}, {"items.brand", "items", "brand"},
      {"items.price", "items", "price"},       {"events.value", "events", "value"},
      {"events.session", "events", "session"}, {"texts.user", "texts", "user"},
      {"texts.item", "texts", "item"},         {"texts.language", "texts", "language"},
      {"texts.label", "texts", "label"},
  };
  return columns;
}

std::vector<Item> merged_items(const std::vector<Item>& items) {
  std::unordered_map<std::string, size_t> position;
  std::vector<Item> out;
  for (const auto& it : items) {
    auto [pos, inserted] = position.try_emplace(it.id, out.size());
    if (inserted) {
      out.push_back(it);
      continue;
    }
    Item& m = out[pos->second];
    if (!it.title.empty()) m.title = it.title;
    if (!it.category.empty()) m.category = it.category;
    if (!it.brand.empty()) m.brand = it.brand;
    if (!it.text.empty()) m.text = it.text;
    if (it.price) m.price = it.price;
    if (it.available) m.available = it.available;
    if (!it.aliases.empty()) m.aliases = it.aliases;
    if (!it.category_aliases.empty()) m.category_aliases = it.category_aliases;
  }
  return out;
}

std::string Sealer::seal(const std::string& value, const std::string& identity) const {
  if (!sealed || !keys_ || value.empty()) return value;
  return privacy::seal_field(*keys_, value, identity);
}

std::string Sealer::open(std::string value, const std::string& identity) const {
  if (!privacy::is_sealed(value)) return value;
  if (!keys_) throw KeyRequired("the store's sensitive values are sealed and no key was given", {where_}, kKeyHint);
  try {
    return privacy::open_field(*keys_, value, identity);
  } catch (const privacy::CryptoError& e) {
    throw Error(fmt::format("a sealed value ({}) does not open: {}", identity, e.what()), {where_},
                "is this the store's key ring? a value that was edited or moved is refused");
  }
}

std::string Sealer::resealed(const std::string& stored, const std::string& identity) const {
  std::string next;
  if (!privacy::is_sealed(stored)) next = seal(stored, identity);
  else if (privacy::sealed_key_id(stored) != keys_->active_id())
    next = privacy::reseal_field(*keys_, stored, identity);
  return next == stored ? std::string() : next;
}

void Sealer::require_key_to_write() const {
  if (sealed && !keys_) throw KeyRequired("this store seals its sensitive values and no key was given", {where_}, kKeyHint);
}

void Sealer::require_key_to_reseal() const {
  if (!keys_) throw Error("resealing the store needs its key ring", {where_}, "give --key-file or PERSONA_KEY_FILE");
}

void add_attribute_traces(Erasure& out, const nlohmann::json& attrs) {
  if (!attrs.is_object()) return;
  for (const auto& [k, v] : attrs.items()) {
    if (!v.is_string()) continue;
    if (identifying_attribute(k)) out.traces.push_back(v.get<std::string>());
    if (k.find("name") != std::string::npos || k.find("姓名") != std::string::npos || k.find("名字") != std::string::npos)
      for (auto& word : name_words(v.get<std::string>())) out.name_words.push_back(std::move(word));
    add_text_traces(out, v.get<std::string>());
  }
}

void add_text_traces(Erasure& out, const std::string& body) {
  for (const auto& f : privacy::find_pii(body)) out.traces.push_back(body.substr(f.begin, f.end - f.begin));
}

void finish_traces(Erasure& out) {
  std::sort(out.traces.begin(), out.traces.end());
  out.traces.erase(std::unique(out.traces.begin(), out.traces.end()), out.traces.end());
}

bool names_the_user(const Erasure& traces, const std::string& text) {
  return std::any_of(traces.traces.begin(), traces.traces.end(),
                     [&text](const std::string& t) { return text.find(t) != std::string::npos; });
}

std::string merged_attributes(const std::string& stored_json, const std::vector<std::pair<std::string, std::string>>& attributes) {
  nlohmann::json j = stored_json.empty() ? nlohmann::json::object() : nlohmann::json::parse(stored_json, nullptr, false);
  if (!j.is_object()) j = nlohmann::json::object();
  for (const auto& [k, v] : attributes) j[k] = v;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

CrashPoint::CrashPoint() {
  if (const char* s = std::getenv("PERSONA_CRASH_AT")) {
    batch = std::atoll(s);
    before_commit = std::strstr(s, "before") != nullptr;
  }
}

void CrashPoint::before(int64_t batch_number) const {
  if (batch == batch_number && before_commit) std::_Exit(137);
}

void CrashPoint::after(int64_t batch_number) const {
  if (batch == batch_number) std::_Exit(137);
}

std::vector<PackedKeys> pack_stream_keys(const std::vector<StreamEntryKey>& keys) {
  std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> by_part;
  for (const auto& k : keys) by_part[k.part].emplace_back(k.hi, k.lo);
  std::vector<PackedKeys> out;
  for (auto& [part, pairs] : by_part) {
    std::sort(pairs.begin(), pairs.end());
    PackedKeys p{part, {part, pairs.front().first, pairs.front().second}, {part, pairs.back().first, pairs.back().second}, {}};
    p.packed.resize(pairs.size() * 16);
    std::memcpy(p.packed.data(), pairs.data(), p.packed.size());  // little-endian hosts only write and read it
    out.push_back(std::move(p));
  }
  return out;
}

std::map<std::string, std::pair<StreamEntryKey, StreamEntryKey>> stream_key_spans(const std::vector<StreamEntryKey>& keys) {
  std::map<std::string, std::pair<StreamEntryKey, StreamEntryKey>> span;
  for (const auto& k : keys) {
    auto [it, fresh] = span.try_emplace(k.part, k, k);
    if (!fresh) it->second = {std::min(it->second.first, k), std::max(it->second.second, k)};
  }
  return span;
}

void mark_stored(const std::vector<StreamEntryKey>& keys, const std::string& part, std::string_view packed,
                 std::vector<bool>& stored) {
  std::vector<std::pair<int64_t, int64_t>> pairs(packed.size() / 16);
  std::memcpy(pairs.data(), packed.data(), pairs.size() * 16);
  for (size_t i = 0; i < keys.size(); ++i)
    if (keys[i].part == part && std::binary_search(pairs.begin(), pairs.end(), std::pair(keys[i].hi, keys[i].lo)))
      stored[i] = true;
}

std::string feedback_tally_sql(const char* placeholder) {
  return fmt::format(
      "SELECT variant, user_id, ts / 86400 AS day, "
      "sum(CASE WHEN kind='impression' THEN 1 ELSE 0 END), sum(CASE WHEN kind='click' THEN 1 ELSE 0 END), "
      "sum(CASE WHEN kind='cart' THEN 1 ELSE 0 END), sum(CASE WHEN kind='purchase' THEN 1 ELSE 0 END), "
      "sum(CASE WHEN kind='not_interested' THEN 1 ELSE 0 END), "
      "sum(CASE WHEN kind='purchase' THEN coalesce(value, 0) ELSE 0 END) "
      "FROM feedback WHERE experiment={} AND variant IS NOT NULL GROUP BY variant, user_id, ts / 86400 "
      "ORDER BY variant, user_id, day",
      placeholder);
}

}  // namespace persona::store::rules
