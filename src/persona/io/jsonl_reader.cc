#include "persona/io/jsonl_reader.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cstring>

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
// A JSON file that is one array of objects ([{...}, {...}], as many exports write) read as JSON
// Lines: each top-level element becomes one line (white space inside it folded to spaces), so the
// line reader, its limits and its errors apply unchanged, and the record's "line" is the element's
// position. Any other file passes through as it is. Streaming: memory does not grow with the file.
class ArrayAsLines final : public ByteSource {
 public:
  explicit ArrayAsLines(std::unique_ptr<ByteSource> inner) : inner_(std::move(inner)) {}
  size_t read(char* buffer, size_t n) override {
    while (pos_ == out_.size() && !eof_) refill();
    const size_t k = std::min(n, out_.size() - pos_);
    std::memcpy(buffer, out_.data() + pos_, k);
    pos_ += k;
    return k;
  }
  void seek(uint64_t offset) override {
    if (offset != 0) throw Error("a JSON array file can only be read from its start", {inner_->path()});
    inner_->seek(0);
    out_.clear();
    leading_.clear();
    pos_ = 0;
    eof_ = false;
    mode_ = Mode::Undecided;
    depth_ = 0;
    in_string_ = escape_ = in_element_ = false;
  }
  uint64_t compressed_position() const override { return inner_->compressed_position(); }
  uint64_t file_size() const override { return inner_->file_size(); }
  const std::string& path() const override { return inner_->path(); }

 private:
  enum class Mode { Undecided, Lines, Array, AfterArray };

  void refill() {
    out_.clear();
    pos_ = 0;
    char chunk[1 << 16];
    const size_t got = inner_->read(chunk, sizeof chunk);
    if (got == 0) {
      eof_ = true;
      out_ += leading_;  // a file of white space only
      if (mode_ == Mode::Array && in_element_) out_ += '\n';  // a truncated array: its last element is rejected
      return;
    }
    for (size_t i = 0; i < got; ++i) take(chunk[i]);
  }

  void take(char c) {
    const bool space = c == ' ' || c == '\t' || c == '\r' || c == '\n';
    switch (mode_) {
      case Mode::Lines:
      case Mode::AfterArray:
        out_ += c;
        return;
      case Mode::Undecided:
        // Leading blank lines count as lines in JSON Lines only.
        if (space) {
          leading_ += c;
          return;
        }
        mode_ = c == '[' ? Mode::Array : Mode::Lines;
        if (mode_ == Mode::Lines) out_ += leading_ + c;
        leading_.clear();
        return;
      case Mode::Array:
        break;
    }
    if (in_string_) {
      out_ += c;
      if (escape_) escape_ = false;
      else if (c == '\\') escape_ = true;
      else if (c == '"') in_string_ = false;
      return;
    }
    if (space) {
      if (in_element_) out_ += ' ';
      return;
    }
    if (depth_ == 0 && (c == ',' || c == ']')) {
      if (in_element_) out_ += '\n';
      in_element_ = false;
      if (c == ']') mode_ = Mode::AfterArray;
      return;
    }
    in_element_ = true;
    if (c == '"') in_string_ = true;
    else if (c == '{' || c == '[') ++depth_;
    else if (c == '}' || c == ']') --depth_;
    out_ += c;
  }

  std::unique_ptr<ByteSource> inner_;
  std::string out_, leading_;
  size_t pos_ = 0;
  bool eof_ = false;
  Mode mode_ = Mode::Undecided;
  int64_t depth_ = 0;
  bool in_string_ = false, escape_ = false, in_element_ = false;
};

}  // namespace

JsonlReader::JsonlReader(const std::string& path, std::vector<std::string> keys, size_t max_line_bytes)
    : JsonlReader(ByteSource::open_file(path), std::move(keys), max_line_bytes) {}

JsonlReader::JsonlReader(std::unique_ptr<ByteSource> source, std::vector<std::string> keys, size_t max_line_bytes)
    : lines_(std::make_unique<ArrayAsLines>(std::move(source)), line_options(max_line_bytes)),
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
