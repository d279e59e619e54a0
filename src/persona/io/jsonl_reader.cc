#include "persona/io/jsonl_reader.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>

#include "persona/core/error.h"
#include "persona/core/json.h"

namespace persona::io {
namespace {
CsvOptions line_options(size_t max_line_bytes) {
  CsvOptions o;
  o.delimiter = "";
  o.quote = 0;
  o.header = false;
  o.max_record_bytes = max_line_bytes;
  return o;
}

bool only_space(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}

// Text form of a JSON value; false for null.
bool value_text(simdjson::dom::element e, std::string& out) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::NULL_VALUE: return false;
    case element_type::STRING: out.assign(std::string_view(e.get_string().value_unsafe())); return true;
    case element_type::INT64: out = fmt::format("{}", e.get_int64().value_unsafe()); return true;
    case element_type::UINT64: out = fmt::format("{}", e.get_uint64().value_unsafe()); return true;
    case element_type::DOUBLE: out = fmt::format("{}", e.get_double().value_unsafe()); return true;
    case element_type::BOOL: out = e.get_bool().value_unsafe() ? "true" : "false"; return true;
    default: out = simdjson::minify(e); return true;
  }
}
}  // namespace

JsonlReader::JsonlReader(const std::string& path, std::vector<std::string> keys, size_t max_line_bytes)
    : JsonlReader(ByteSource::open_file(path), std::move(keys), max_line_bytes) {}

JsonlReader::JsonlReader(std::unique_ptr<ByteSource> source, std::vector<std::string> keys, size_t max_line_bytes)
    : lines_(std::move(source), line_options(max_line_bytes)),
      keys_(std::move(keys)),
      parser_(std::make_unique<simdjson::dom::parser>()),
      values_(keys_.size()) {
  // Nesting is bounded as in every JSON Persona reads: a deeper line is a rejected record.
  if (parser_->allocate(std::max<size_t>(max_line_bytes, 1 << 16), kMaxJsonDepth) != simdjson::SUCCESS)
    throw Error("not enough memory for the JSON parser", {lines_.path()});
  for (const auto& k : keys_) {
    std::string pointer;
    if (k.find('.') != std::string::npos) {
      for (char c : k) {
        if (c == '.') pointer += '/';
        else if (c == '~') pointer += "~0";
        else if (c == '/') pointer += "~1";
        else pointer += c;
      }
      pointer.insert(pointer.begin(), '/');
    }
    pointers_.push_back(std::move(pointer));
  }
}

JsonlReader::~JsonlReader() = default;

bool JsonlReader::next(Record& record) {
  while (true) {
    if (!lines_.next(line_)) return false;
    const std::string_view text = line_.raw;
    if (line_.problem.empty() && only_space(text)) continue;  // blank line: not a record
    record.line = line_.line;
    record.duplicate = -1;
    record.raw = text;
    record.problem = line_.problem;
    record.fields.assign(keys_.size(), std::string_view());
    record.present.assign(keys_.size(), false);
    if (!record.problem.empty()) return true;

    simdjson::dom::element doc;
    auto error = parser_->parse(text.data(), text.size(), true).get(doc);
    if (error) {
      record.problem = fmt::format("not valid JSON: {}", simdjson::error_message(error));
      return true;
    }
    simdjson::dom::object object;
    if (doc.get_object().get(object)) {
      record.problem = "not a JSON object (each line must be {...})";
      return true;
    }
    for (size_t i = 0; i < keys_.size(); ++i) {
      simdjson::dom::element value;
      bool found = !object.at_key(keys_[i]).get(value);
      if (!found && !pointers_[i].empty()) found = !object.at_pointer(pointers_[i]).get(value);
      if (found && value_text(value, values_[i])) {
        record.fields[i] = values_[i];
        record.present[i] = true;
      }
    }
    return true;
  }
}

}  // namespace persona::io
