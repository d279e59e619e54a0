#pragma once
// A source mapping says how one file's columns become Persona's model: which column feeds which
// model field, value maps ("pv" -> view, InvoiceNo "C..." -> return), timestamp formats and
// constants. One row may feed several entities (a retail invoice line is an event and an item).
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "persona/core/model.h"
#include "persona/core/time.h"
#include "persona/io/csv_reader.h"
#include "persona/io/record.h"

namespace persona::io {

struct FieldSpec {
  std::string column;                     // source column (CSV header name or JSON key)
  std::vector<std::string> alternatives;  // other names the column goes by; the first the file has wins
  std::optional<std::string> constant;    // a fixed value instead of a column
  std::string format;                     // timestamp format (see TimestampParser)
  std::vector<std::pair<std::string, std::string>> value_map;   // exact value -> model value
  std::vector<std::pair<std::string, std::string>> prefix_map;  // value prefix -> model value
  std::optional<std::string> default_value;  // when no map entry matches, or the value is missing
  bool absolute = false;                  // numbers: take the absolute value (returns as -3)
};

struct OutputMapping {
  Entity entity;
  std::vector<std::pair<std::string, FieldSpec>> fields;  // model field name -> spec
};

struct SourceMapping {
  std::string name;
  std::string path;
  Format format = Format::Csv;
  std::string encoding;  // "" = UTF-8 (a byte-order mark or plainly other bytes are noticed); see text_encoding.h
  CsvOptions csv;
  std::vector<std::string> na_values = {"", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "#N/A"};
  std::vector<OutputMapping> outputs;
  TimeWindow time_window;  // times outside are type errors ([ingest] time_window)

  // Every source column the mapping reads (for JSON Lines, the keys to extract).
  std::vector<std::string> columns_used() const;
  // Checks the mapping against the model: known fields, required fields present, valid formats.
  // Throws persona::Error naming the source and field.
  void validate() const;
};

// One mapped value of a row.
struct FieldValue {
  std::string_view text;  // after value mapping; empty when missing
  bool present = false;
  double number = 0;      // Integer, Number
  int64_t time = 0;       // Timestamp
  uint8_t code = 0;       // EventKind, TextKindField
  const char* error = nullptr;  // set when the value is present but not of the field's type
};

struct MappedRecords {
  std::optional<User> user;
  std::optional<Item> item;
  std::optional<Event> event;
  std::optional<Text> text;
  std::optional<Feedback> feedback;
};

// A mapping bound to one reader's columns.
class Mapper {
 public:
  struct Slot {
    Entity entity;
    std::string name;  // the mapped field's name: "quantity", or "attr.channel" for attributes
    const ModelField* field;
    const FieldSpec* spec;
    int column;  // -1 for constants
    TimestampParser timestamps;
    std::string bad_timestamp;  // the error of a value the format does not read, naming the format
  };

  // Throws persona::Error when the mapping names a column the file does not have.
  Mapper(const SourceMapping& mapping, const std::vector<std::string>& columns, const std::string& file);

  const std::vector<Slot>& slots() const { return slots_; }
  int slot(Entity entity, std::string_view field) const;   // -1 when not mapped
  // -1 when the file has no such column; throws persona::Error when it has two of that name.
  int column(std::string_view name) const;
  const std::vector<std::string>& columns() const { return columns_; }
  bool has(Entity entity) const { return has_entity_[static_cast<int>(entity)]; }

  // Maps a (well-formed) record. `values` is indexed by slot and valid until the next call.
  void map(const Record& record, std::vector<FieldValue>& values);
  // Typed records of a row (call for rows that are kept). Text values may have been cleaned.
  MappedRecords build(const std::vector<FieldValue>& values) const;

 private:
  bool is_na(std::string_view value) const;
  void parse_typed(const Slot& slot, FieldValue& value) const;

  const SourceMapping& mapping_;
  std::string file_;
  std::string outside_window_;  // the error of a time outside the mapping's window
  std::vector<std::string> columns_;
  std::vector<Slot> slots_;
  bool has_entity_[kEntityCount] = {};
};

}  // namespace persona::io
