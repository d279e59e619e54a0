#include "persona/io/mapping.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/core/unicode.h"

namespace persona::io {

std::vector<std::string> SourceMapping::columns_used() const {
  std::vector<std::string> out;
  for (const auto& o : outputs)
    for (const auto& [name, spec] : o.fields) {
      if (spec.constant) continue;
      if (std::find(out.begin(), out.end(), spec.column) == out.end()) out.push_back(spec.column);
      for (const auto& alt : spec.alternatives)
        if (std::find(out.begin(), out.end(), alt) == out.end()) out.push_back(alt);
    }
  return out;
}

void SourceMapping::validate() const {
  const Location where{path.empty() ? name : path};
  if (outputs.empty())
    throw Error(fmt::format("source \"{}\" maps nothing", name), where,
                "add a table such as [sources.events] with field = \"column\" lines, or use a preset");
  for (const auto& o : outputs) {
    for (const auto& [field, spec] : o.fields) {
      const ModelField* mf = find_model_field(o.entity, field);
      if (!mf) {
        std::string known;
        for (const auto& f : model_fields())
          if (f.entity == o.entity) known += fmt::format("{}{}", known.empty() ? "" : ", ", f.name);
        throw Error(fmt::format("source \"{}\": {} has no field \"{}\"", name, entity_name(o.entity), field), where,
                    fmt::format("{} fields are: {}", entity_name(o.entity), known));
      }
      if (!spec.constant && spec.column.empty())
        throw Error(fmt::format("source \"{}\": {}.{} needs a column or a constant", name, entity_name(o.entity), field),
                    where);
      if (mf->type == FieldType::Timestamp) TimestampParser::validate(spec.format);
    }
    for (const auto& f : model_fields()) {
      if (f.entity != o.entity || !f.required) continue;  // (attributes are never required)
      const bool mapped = std::any_of(o.fields.begin(), o.fields.end(), [&](const auto& p) { return p.first == f.name; });
      if (!mapped)
        throw Error(fmt::format("source \"{}\": {} needs the field \"{}\" ({})", name, entity_name(o.entity), f.name,
                                f.description),
                    where, fmt::format("map it to a column, or give a constant: {} = {{ const = \"...\" }}", f.name));
    }
  }
}

// "is not a timestamp in the format unix (seconds since 1970-01-01, e.g. 1764583200)": the
// reject says what was expected, so `format = "unix"` on ISO dates explains itself.
static std::string bad_timestamp_error(const std::string& format) {
  std::string expected;
  const std::string formats = format.empty() ? "iso8601" : format;  // owned: the view below reads it
  for (std::string_view rest = formats; !rest.empty();) {
    const auto bar = rest.find('|');
    const std::string_view one = rest.substr(0, bar);
    rest = bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1);
    if (!expected.empty()) expected += " or ";
    if (one == "iso8601" || one == "auto") expected += "ISO 8601 (e.g. 2025-12-01T10:00:00Z)";
    else if (one == "unix") expected += "unix (seconds since 1970-01-01, e.g. 1764583200)";
    else if (one == "unix_ms") expected += "unix_ms (milliseconds since 1970-01-01, e.g. 1764583200000)";
    else expected += fmt::format("\"{}\"", one);
  }
  return "is not a timestamp in the format " + expected;
}

Mapper::Mapper(const SourceMapping& mapping, const std::vector<std::string>& columns, const std::string& file)
    : mapping_(mapping),
      file_(file),
      outside_window_(fmt::format("is outside the accepted times ({}; [ingest] time_window)", mapping.time_window.describe())),
      columns_(columns) {
  for (const auto& o : mapping.outputs) {
    has_entity_[static_cast<int>(o.entity)] = true;
    for (const auto& [field, spec] : o.fields) {
      const ModelField* mf = find_model_field(o.entity, field);
      int col = -1;
      if (!spec.constant) {
        col = column(spec.column);
        for (size_t a = 0; col < 0 && a < spec.alternatives.size(); ++a) col = column(spec.alternatives[a]);
        if (col < 0) {
          std::string have;
          for (const auto& c : columns) have += fmt::format("{}\"{}\"", have.empty() ? "" : ", ", c);
          throw Error(fmt::format("the mapping reads column \"{}\" for {}.{}, but the file has no such column",
                                  spec.column, entity_name(o.entity), field),
                      {file, columns.empty() ? 0 : 1}, fmt::format("the file's columns are: {}", have.empty() ? "(none: the file is empty)" : have));
        }
      }
      slots_.push_back({o.entity, field, mf, &spec, col, TimestampParser(spec.format), bad_timestamp_error(spec.format)});
    }
  }
}

int Mapper::slot(Entity entity, std::string_view field) const {
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].entity == entity && field == slots_[i].name) return static_cast<int>(i);
  return -1;
}

int Mapper::column(std::string_view name) const {
  int found = -1;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i] != name) continue;
    // Two columns of one name: which one is meant cannot be told (the first used to win, silently).
    if (found >= 0)
      throw Error(fmt::format("the header names two columns \"{}\" (columns {} and {}), and the mapping reads it", name,
                              found + 1, i + 1),
                  {file_, 1}, "rename one of them in the file");
    found = static_cast<int>(i);
  }
  return found;
}

bool Mapper::is_na(std::string_view value) const {
  if (value.empty()) return true;
  if (value.size() > 4) return false;
  for (const auto& na : mapping_.na_values)
    if (value == na) return true;
  return false;
}

static std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

static bool parse_double(std::string_view s, double& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(out);
}

// Yes or no as shops write it (case-insensitive Latin; Chinese 是/否, 有货/缺货, 在售/停售).
static std::optional<bool> parse_bool(std::string_view s) {
  s = trim(s);
  std::string lower(s);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* yes : {"true", "yes", "y", "1", "t", "in_stock", "是", "有货", "在售", "同意"})
    if (lower == yes) return true;
  for (const char* no : {"false", "no", "n", "0", "f", "out_of_stock", "否", "缺货", "停售", "不同意", "拒绝"})
    if (lower == no) return false;
  return std::nullopt;
}

void Mapper::parse_typed(const Slot& slot, FieldValue& v) const {
  switch (slot.field->type) {
    case FieldType::Text:
      if (std::memchr(v.text.data(), '\0', v.text.size())) v.error = "contains a NUL byte";
      else if (!valid_utf8(v.text)) v.error = "is not valid UTF-8";
      break;
    case FieldType::Integer:
      if (!parse_double(v.text, v.number) || v.number != std::floor(v.number)) v.error = "is not a whole number";
      break;
    case FieldType::Number:
      if (!parse_double(v.text, v.number)) v.error = "is not a number";
      else if (slot.spec->absolute) v.number = std::fabs(v.number);
      break;
    case FieldType::Timestamp: {
      auto t = slot.timestamps.parse(v.text);
      if (!t) v.error = slot.bad_timestamp.c_str();
      else if (!mapping_.time_window.contains(*t)) v.error = outside_window_.c_str();
      else v.time = *t, v.number = static_cast<double>(*t);  // range and outlier rules read number
      break;
    }
    case FieldType::EventKind: {
      auto t = parse_event_type(v.text);
      if (t) v.code = static_cast<uint8_t>(*t);
      else v.error = "is not a known event type (view, click, cart, purchase, return, rate, review, search, favourite)";
      break;
    }
    case FieldType::TextKindField: {
      auto k = parse_text_kind(v.text);
      if (k) v.code = static_cast<uint8_t>(*k);
      else v.error = "is not a known text kind (review, query, chat)";
      break;
    }
    case FieldType::FeedbackKind:
      if (!is_feedback_kind(v.text)) v.error = "is not a feedback kind (impression, click, cart, purchase, not_interested)";
      break;
    case FieldType::Boolean: {
      const auto b = parse_bool(v.text);
      if (b) v.number = *b ? 1 : 0;
      else v.error = "is not true or false (true/false, yes/no, 1/0, 有货/缺货)";
      break;
    }
  }
}

void Mapper::map(const Record& record, std::vector<FieldValue>& values) {
  values.resize(slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    const FieldSpec& spec = *slot.spec;
    FieldValue& v = values[i];
    v = FieldValue{};
    std::string_view raw;
    bool present;
    if (spec.constant) {
      raw = *spec.constant;
      present = true;
    } else {
      const auto c = static_cast<size_t>(slot.column);
      present = c < record.fields.size() && record.present[c];
      raw = present ? record.fields[c] : std::string_view();
      if (present && slot.field->type != FieldType::Text) raw = trim(raw);
      present = present && !is_na(raw);
    }
    if (!spec.value_map.empty() || !spec.prefix_map.empty()) {
      bool matched = false;
      if (present) {
        for (const auto& [from, to] : spec.value_map)
          if (raw == from) { raw = to; matched = true; break; }
        if (!matched)
          for (const auto& [prefix, to] : spec.prefix_map)
            if (raw.substr(0, prefix.size()) == prefix) { raw = to; matched = true; break; }
      }
      if (!matched && spec.default_value) {
        raw = *spec.default_value;
        present = true;
      }
    } else if (!present && spec.default_value) {
      raw = *spec.default_value;
      present = true;
    }
    v.text = present ? raw : std::string_view();
    v.present = present;
    if (present) parse_typed(slot, v);
  }
}

MappedRecords Mapper::build(const std::vector<FieldValue>& values) const {
  MappedRecords out;
  if (has(Entity::User)) out.user.emplace();
  if (has(Entity::Item)) out.item.emplace();
  if (has(Entity::Event)) out.event.emplace();
  if (has(Entity::Text)) out.text.emplace();
  if (has(Entity::Feedback)) out.feedback.emplace();
  for (size_t i = 0; i < slots_.size(); ++i) {
    const FieldValue& v = values[i];
    if (!v.present || v.error) continue;
    const std::string_view name = slots_[i].name;
    const std::string text(v.text);
    switch (slots_[i].entity) {
      case Entity::User: {
        User& u = *out.user;
        if (name == "id") u.id = text;
        else if (name == "age") u.age = static_cast<int64_t>(v.number);
        else if (name == "gender") u.gender = text;
        else if (name == "region") u.region = text;
        else if (name == "signup_time") u.signup_time = v.time;
        else if (name == "consent_personalisation") u.consent_personalisation = v.number != 0;
        else if (name == "consent_analytics") u.consent_analytics = v.number != 0;
        else if (slots_[i].field == user_attribute_field()) u.attributes.emplace_back(name.substr(kAttributePrefix.size()), text);
        break;
      }
      case Entity::Item: {
        Item& it = *out.item;
        if (name == "id") it.id = text;
        else if (name == "title") it.title = text;
        else if (name == "category") it.category = text;
        else if (name == "brand") it.brand = text;
        else if (name == "price") it.price = v.number;
        else if (name == "text") it.text = text;
        else if (name == "available") it.available = v.number != 0;
        else if (name == "aliases") it.aliases = text;
        else if (name == "category_aliases") it.category_aliases = text;
        break;
      }
      case Entity::Event: {
        Event& e = *out.event;
        if (name == "user") e.user = text;
        else if (name == "item") e.item = text;
        else if (name == "type") e.type = static_cast<EventType>(v.code);
        else if (name == "quantity") e.quantity = v.number;
        else if (name == "value") e.value = v.number;
        else if (name == "timestamp") e.timestamp = v.time;
        else if (name == "session") e.session = text;
        break;
      }
      case Entity::Text: {
        Text& t = *out.text;
        if (name == "user") t.user = text;
        else if (name == "item") t.item = text;
        else if (name == "kind") t.kind = static_cast<TextKind>(v.code);
        else if (name == "language") t.language = text;
        else if (name == "body") t.body = text;
        else if (name == "label") t.label = text;
        else if (name == "category") t.category = text;
        else if (name == "sentiment") t.sentiment = v.number;
        else if (name == "timestamp") t.timestamp = v.time;
        break;
      }
      case Entity::Feedback: {
        Feedback& f = *out.feedback;
        if (name == "request_id") f.request_id = text;
        else if (name == "user") f.user = text;
        else if (name == "item") f.item = text;
        else if (name == "kind") f.kind = text;
        else if (name == "position") f.position = static_cast<int64_t>(v.number);
        else if (name == "value") f.value = v.number;
        else if (name == "model") f.model = text;
        else if (name == "experiment") f.experiment = text;
        else if (name == "timestamp") f.ts = v.time;
        break;
      }
    }
  }
  return out;
}

}  // namespace persona::io
