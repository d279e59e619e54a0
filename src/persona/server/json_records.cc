#include "persona/server/json_records.h"

#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/core/time.h"
#include "persona/privacy/pii.h"

namespace persona::server {
namespace {

// A value as the error shows it: strings as they are, anything else as JSON, cut short.
std::string shown(const nlohmann::json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 200) s = s.substr(0, 200) + "...";
  return s;
}

struct Failure {
  std::string field, value, reason;
};

// Reads one record's fields, remembering the first problem; later reads are skipped once one
// failed (a record is accepted whole or not at all).
class Reader {
 public:
  explicit Reader(const nlohmann::json& record) : record_(record) {}

  std::optional<std::string> text(const char* field, bool required = false) {
    const auto* v = get(field, required);
    if (!v) return std::nullopt;
    if (v->is_string()) return v->get<std::string>();
    if (v->is_number_integer()) return v->dump();  // numeric ids
    return fail(field, *v, "is not a string");
  }
  std::optional<double> number(const char* field, bool required = false) {
    const auto* v = get(field, required);
    if (!v) return std::nullopt;
    if (!v->is_number()) return fail(field, *v, "is not a number");
    const double d = v->get<double>();
    if (!std::isfinite(d)) return fail(field, *v, "is not a finite number");
    return d;
  }
  std::optional<int64_t> integer(const char* field) {
    const auto d = number(field);
    if (!d) return std::nullopt;
    if (*d != std::floor(*d) || std::fabs(*d) > 9e15) return fail(field, record_.at(field), "is not an integer");
    return static_cast<int64_t>(*d);
  }
  std::optional<bool> boolean(const char* field) {
    const auto* v = get(field, false);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) return fail(field, *v, "is not true or false");
    return v->get<bool>();
  }
  std::optional<int64_t> timestamp(const char* field, bool required = false) {
    const auto* v = get(field, required);
    if (!v) return std::nullopt;
    if (v->is_number_integer()) return v->get<int64_t>();
    if (v->is_string()) {
      static thread_local TimestampParser iso("iso8601");
      if (auto t = iso.parse(v->get<std::string>())) return t;
      return fail(field, *v, "is not an ISO 8601 time");
    }
    return fail(field, *v, "is not a time (ISO 8601 text or Unix seconds)");
  }
  // The free-form attributes of a user: an object of strings (numbers and booleans as text).
  std::vector<std::pair<std::string, std::string>> attributes(const char* field) {
    const auto* v = get(field, false);
    if (!v) return {};
    if (!v->is_object()) return fail(field, *v, "is not an object"), std::vector<std::pair<std::string, std::string>>{};
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [k, x] : v->items()) {
      if (x.is_string()) out.emplace_back(k, x.get<std::string>());
      else if (x.is_number() || x.is_boolean()) out.emplace_back(k, x.dump());
      else if (!x.is_null()) return fail(std::string(field) + "." + k, x, "is not a string"), decltype(out){};
    }
    return out;
  }
  void reject(const char* field, const nlohmann::json& v, const std::string& reason) { fail(field, v, reason); }
  // Fields the entity does not have (a typo would otherwise lose data silently).
  void only(std::initializer_list<const char*> fields) {
    for (const auto& [k, v] : record_.items()) {
      bool known = false;
      for (const char* f : fields) known = known || k == f;
      if (!known) fail(k, v, "is not a field of this record (see docs/api.md)");
    }
  }
  const std::optional<Failure>& failure() const { return failure_; }

 private:
  const nlohmann::json* get(const char* field, bool required) {
    if (failure_) return nullptr;
    const auto it = record_.find(field);
    if (it == record_.end() || it->is_null()) {
      if (required) failure_ = Failure{field, "", "is required"};
      return nullptr;
    }
    return &*it;
  }
  std::nullopt_t fail(const std::string& field, const nlohmann::json& v, const std::string& reason) {
    if (!failure_) failure_ = Failure{field, shown(v), reason};
    return std::nullopt;
  }
  const nlohmann::json& record_;
  std::optional<Failure> failure_;
};

void decode_user(Reader& r, DecodedRecords& out) {
  r.only({"id", "age", "gender", "region", "signup_time", "consent_personalisation", "consent_analytics", "attributes"});
  User u;
  u.id = r.text("id", true).value_or("");
  u.age = r.integer("age");
  if (u.age && (*u.age < 0 || *u.age > 150)) r.reject("age", *u.age, "is not a plausible age (0 to 150)");
  u.gender = r.text("gender").value_or("");
  u.region = r.text("region").value_or("");
  u.signup_time = r.timestamp("signup_time");
  u.consent_personalisation = r.boolean("consent_personalisation");
  u.consent_analytics = r.boolean("consent_analytics");
  u.attributes = r.attributes("attributes");
  if (r.failure()) return;
  out.users.insert(u.id);
  out.batch.users.push_back(std::move(u));
}

void decode_item(Reader& r, DecodedRecords& out) {
  r.only({"id", "title", "category", "brand", "price", "text", "available", "aliases"});
  Item it;
  it.id = r.text("id", true).value_or("");
  it.title = r.text("title").value_or("");
  it.category = r.text("category").value_or("");
  it.brand = r.text("brand").value_or("");
  it.price = r.number("price");
  if (it.price && *it.price < 0) r.reject("price", *it.price, "is negative");
  it.text = r.text("text").value_or("");
  it.available = r.boolean("available");
  it.aliases = r.text("aliases").value_or("");
  if (r.failure()) return;
  out.batch.items.push_back(std::move(it));
}

void decode_event(Reader& r, DecodedRecords& out, int64_t line) {
  r.only({"user", "item", "type", "quantity", "value", "timestamp", "session"});
  Event e;
  e.user = r.text("user", true).value_or("");
  e.item = r.text("item", true).value_or("");
  if (const auto type = r.text("type", true)) {
    if (const auto t = parse_event_type(*type)) e.type = *t;
    else r.reject("type", *type, "is not an event type (view, click, cart, purchase, return, rate, review, search, favourite)");
  }
  e.quantity = r.number("quantity").value_or(1);
  if (e.quantity <= 0) r.reject("quantity", e.quantity, "is not above 0");
  e.value = r.number("value");
  e.timestamp = r.timestamp("timestamp", true).value_or(0);
  e.session = r.text("session").value_or("");
  if (r.failure()) return;
  if (e.user.empty()) return r.reject("user", "", "is empty");
  out.users.insert(e.user);
  out.batch.events.emplace_back(line, std::move(e));
}

void decode_text(Reader& r, DecodedRecords& out, int64_t line) {
  r.only({"user", "item", "kind", "language", "body", "label", "category", "sentiment", "timestamp"});
  Text t;
  t.user = r.text("user").value_or("");
  t.item = r.text("item").value_or("");
  if (const auto kind = r.text("kind", true)) {
    if (const auto k = parse_text_kind(*kind)) t.kind = *k;
    else r.reject("kind", *kind, "is not a text kind (review, query, chat)");
  }
  t.language = r.text("language").value_or("");
  t.body = privacy::redact_pii(r.text("body", true).value_or(""));  // stored for analytics: no PII
  t.label = r.text("label").value_or("");
  t.category = r.text("category").value_or("");
  t.sentiment = r.number("sentiment");
  t.timestamp = r.timestamp("timestamp");
  if (r.failure()) return;
  if (t.body.empty()) return r.reject("body", "", "is empty");
  if (!t.user.empty()) out.users.insert(t.user);
  out.batch.texts.emplace_back(line, std::move(t));
}

}  // namespace

nlohmann::json RecordError::to_json() const {
  return {{"index", index}, {"field", field}, {"value", value}, {"reason", reason}};
}

std::vector<nlohmann::json> parse_records(std::string_view body, size_t max_records) {
  std::vector<nlohmann::json> out;
  size_t start = body.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) throw Error("the body is empty", {}, "send a JSON array of records");
  auto parse = [](std::string_view text, const std::string& where) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) throw Error(fmt::format("{} is not valid JSON", where), {}, "send a JSON array of records, or JSON Lines");
    return j;
  };
  if (body[start] == '[') {
    auto j = parse(body, "the body");
    if (j.size() > max_records)
      throw Error(fmt::format("{} records in one request; at most {}", j.size(), max_records), {}, "split the batch");
    for (auto& r : j) out.push_back(std::move(r));
    return out;
  }
  // One object, or JSON Lines: one object per line.
  size_t line = 0;
  for (size_t at = 0; at < body.size();) {
    size_t end = body.find('\n', at);
    if (end == std::string_view::npos) end = body.size();
    ++line;
    const auto text = body.substr(at, end - at);
    at = end + 1;
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    out.push_back(parse(text, fmt::format("line {}", line)));
    if (out.size() > max_records) throw Error(fmt::format("more than {} records in one request", max_records), {}, "split the batch");
  }
  return out;
}

DecodedRecords decode_records(Entity entity, const std::vector<nlohmann::json>& records) {
  DecodedRecords out;
  out.records = records.size();
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& record = records[i];
    const auto line = static_cast<int64_t>(i + 1);
    Reader r(record);
    if (!record.is_object()) {
      r.reject("(record)", record, "is not a JSON object");
    } else {
      switch (entity) {
        case Entity::User: decode_user(r, out); break;
        case Entity::Item: decode_item(r, out); break;
        case Entity::Event: decode_event(r, out, line); break;
        case Entity::Text: decode_text(r, out, line); break;
      }
    }
    if (const auto& f = r.failure()) {
      out.errors.push_back({i, f->field, f->value, f->reason});
      const std::string raw = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      out.batch.rejects.push_back({line, "api_validation", f->field, privacy::redact_pii(f->value), f->reason,
                                   privacy::redact_pii(raw.substr(0, 4096)), false});
    }
  }
  return out;
}

}  // namespace persona::server
