#include "persona/server/json_records.h"

#include <cmath>
#include <optional>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/core/time.h"
#include "persona/privacy/pii.h"

namespace persona::server {
namespace {

// A value as the error shows it: strings as they are, anything else as JSON, cut short.
std::string shown(const nlohmann::json& v) { return json_excerpt(v, 200); }

struct Failure {
  std::string field, value, reason;
};

// Reads one record's fields, remembering the first problem; later reads are skipped once one
// failed (a record is accepted whole or not at all).
class Reader {
 public:
  Reader(const nlohmann::json& record, const TimeWindow& window) : record_(record), window_(window) {}

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
    std::optional<int64_t> t;
    if (v->is_number_integer()) {
      t = v->get<int64_t>();
    } else if (v->is_string()) {
      static thread_local TimestampParser iso("iso8601");
      t = iso.parse(v->get<std::string>());
      if (!t) return fail(field, *v, "is not an ISO 8601 time");
    } else {
      return fail(field, *v, "is not a time (ISO 8601 text or Unix seconds)");
    }
    if (!window_.contains(*t))
      return fail(field, *v, fmt::format("is outside the accepted times ({}; [ingest] time_window)", window_.describe()));
    return t;
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
  const TimeWindow& window_;
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
  r.only({"id", "title", "category", "brand", "price", "text", "available", "aliases", "category_aliases"});
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
  it.category_aliases = r.text("category_aliases").value_or("");
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

std::vector<RecordError> DecodedRecords::errors(size_t limit) const {
  std::vector<RecordError> out;
  for (size_t i = 0; i < batch.rejects.size() && i < limit; ++i) {
    const auto& r = batch.rejects[i];
    out.push_back({static_cast<size_t>(r.line - 1), r.field, r.value, r.reason});
  }
  return out;
}

nlohmann::json RecordError::to_json() const {
  return {{"index", index}, {"field", field}, {"value", value}, {"reason", reason}};
}

void for_each_record(std::string_view body, size_t max_records,
                     const std::function<void(size_t, const nlohmann::json&)>& on_record) {
  const size_t start = body.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) throw BodyRefused(400, "the body is empty", "send a JSON array of records");
  size_t count = 0;
  auto emit = [&](const nlohmann::json& record) {
    if (count == max_records)
      throw BodyRefused(413, fmt::format("more than {} records in one request", max_records), "split the batch");
    on_record(count++, record);
  };
  if (body[start] != '[') {
    // One object, or JSON Lines: one object per line.
    size_t line = 0;
    for (size_t at = 0; at < body.size();) {
      size_t end = body.find('\n', at);
      if (end == std::string_view::npos) end = body.size();
      ++line;
      const auto text = body.substr(at, end - at);
      at = end + 1;
      if (text.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      std::string error;
      const auto record = parse_json(text, &error);
      if (!record) throw BodyRefused(400, fmt::format("line {}: {}", line, error), "send a JSON array of records, or JSON Lines");
      emit(*record);
    }
    return;
  }
  // A JSON array: each element is handed over as soon as it is complete and then dropped from
  // the array (the callback returns false), so memory holds one record at a time.
  struct TooDeep {};
  const nlohmann::json::parser_callback_t stream = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& value) {
    using E = nlohmann::json::parse_event_t;
    if ((event == E::object_start || event == E::array_start) && depth >= kMaxJsonDepth) throw TooDeep{};
    if (depth == 1 && (event == E::value || event == E::object_end || event == E::array_end)) {
      emit(value);
      return false;
    }
    return true;
  };
  try {
    [[maybe_unused]] const auto ignored = nlohmann::json::parse(body.begin(), body.end(), stream, true);
  } catch (const TooDeep&) {
    throw BodyRefused(400, fmt::format("the body nests deeper than {} levels", kMaxJsonDepth),
                      "records are flat objects (docs/api.md)");
  } catch (const nlohmann::json::exception& e) {
    // parse_error, and out_of_range for a number too large for a double ("1e99999").
    throw BodyRefused(400, fmt::format("the body is not valid JSON: {}", json_error_text(e)),
                      "send a JSON array of records, or JSON Lines");
  }
}

// The reject row's copy of a record: an excerpt, PII redacted, then bounded again (a redaction
// token can be longer than what it replaces: thousands of "::" read as IPv6 addresses grew an
// excerpt past its bound, found by fuzz_api_records).
static std::string bounded_redacted(const nlohmann::json& record) {
  return json_excerpt(nlohmann::json(privacy::redact_pii(json_excerpt(record, 4096))), 4096);
}

DecodedRecords decode_body(Entity entity, std::string_view body, size_t max_records, const TimeWindow& window) {
  if (entity == Entity::Feedback) throw Error("feedback is decoded by decode_feedback (POST /v1/feedback)");
  DecodedRecords out;
  for_each_record(body, max_records, [&](size_t i, const nlohmann::json& record) {
    const auto line = static_cast<int64_t>(i + 1);
    out.records = i + 1;
    Reader r(record, window);
    if (!record.is_object()) {
      r.reject("(record)", record, "is not a JSON object");
    } else {
      switch (entity) {
        case Entity::User: decode_user(r, out); break;
        case Entity::Item: decode_item(r, out); break;
        case Entity::Event: decode_event(r, out, line); break;
        case Entity::Text: decode_text(r, out, line); break;
        case Entity::Feedback: break;  // refused above
      }
    }
    if (const auto& f = r.failure()) {
      out.batch.rejects.push_back({line, "api_validation", f->field, privacy::redact_pii(f->value), f->reason,
                                   bounded_redacted(record), false});
    }
  });
  return out;
}

namespace {
// Ids sent back by clients: printable, bounded, no control characters.
bool plain_id(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}
}  // namespace

DecodedFeedback decode_feedback(std::string_view body, size_t max_records, const TimeWindow& window, int64_t now) {
  static const std::set<std::string> kinds = {"impression", "click", "cart", "purchase", "not_interested"};
  const TimestampParser iso("iso8601");
  DecodedFeedback out;
  for_each_record(body, max_records, [&](size_t index, const nlohmann::json& r) {
    ++out.records;
    auto bad = [&](const char* field, const std::string& value, const std::string& reason) {
      out.errors.push_back({index, field, value.substr(0, 200), reason});
    };
    if (!r.is_object()) return bad("", r.dump().substr(0, 200), "a feedback record is a JSON object");
    store::Feedback f;
    for (const auto& [name, target, max] : {std::tuple{"request_id", &f.request_id, size_t{64}},
                                           std::tuple{"user", &f.user, size_t{256}}, std::tuple{"item", &f.item, size_t{256}},
                                           std::tuple{"kind", &f.kind, size_t{32}}, std::tuple{"model", &f.model, size_t{64}}}) {
      const auto it = r.find(name);
      if (it == r.end() || it->is_null()) {
        if (std::string_view(name) == "model") continue;
        return bad(name, "", std::string_view(name) == "request_id"
                                 ? "missing: send back the request_id of the list the item was in"
                                 : "missing");
      }
      if (!it->is_string()) return bad(name, it->dump(), "not a string");
      *target = it->get<std::string>();
      if (!plain_id(*target, max)) return bad(name, *target, fmt::format("1 to {} printable characters", max));
    }
    if (!kinds.count(f.kind)) return bad("kind", f.kind, "one of impression, click, cart, purchase, not_interested");
    if (const auto it = r.find("position"); it != r.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 100000)
        return bad("position", it->dump(), "a whole number from 0 (the list's first item)");
      f.position = it->get<int64_t>();
    }
    if (const auto it = r.find("value"); it != r.end() && !it->is_null()) {
      if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0 || it->get<double>() > 1e12)
        return bad("value", it->dump(), "a number from 0 (a purchase's revenue)");
      f.value = it->get<double>();
    }
    f.ts = now;
    if (const auto it = r.find("time"); it != r.end() && !it->is_null()) {
      std::optional<int64_t> t;
      if (it->is_number()) t = static_cast<int64_t>(it->get<double>());
      else if (it->is_string()) t = iso.parse(it->get<std::string>());
      if (!t) return bad("time", it->dump(), "ISO 8601 (2026-12-05T10:00:00Z) or seconds since the epoch");
      if (!window.contains(*t)) return bad("time", it->dump(), "outside the accepted times, " + window.describe());
      f.ts = *t;
    }
    out.rows.push_back(std::move(f));
  });
  return out;
}

}  // namespace persona::server
