// Any bytes as a CSV source through mapping and every cleaning rule, as `persona clean` runs
// it: no crash, no hang, and the counts always add up (read = kept + removed).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "persona/core/error.h"
#include "persona/io/csv_reader.h"
#include "persona/prep/cleaner.h"

namespace {
persona::io::SourceMapping mapping() {
  using persona::Entity;
  persona::io::SourceMapping m;
  m.name = "fuzz";
  m.path = "fuzz.csv";
  m.csv.max_record_bytes = 4096;
  m.csv.header = false;
  m.outputs.push_back({Entity::Event,
                       {{"user", {.column = "col1"}},
                        {"item", {.column = "col2"}},
                        {"type", {.column = "col3", .value_map = {{"pv", "view"}}, .prefix_map = {{"C", "return"}},
                                  .default_value = "purchase"}},
                        {"quantity", {.column = "col4", .absolute = true}},
                        {"value", {.column = "col5"}},
                        {"timestamp", {.column = "col6", .format = "iso8601|%m/%d/%Y %H:%M|unix"}}}});
  m.outputs.push_back({Entity::Item, {{"id", {.column = "col2"}}, {"title", {.column = "col7"}}}});
  return m;
}

std::vector<persona::prep::RuleSpec> rules() {
  return {{.kind = "exact_duplicate"},
          {.kind = "duplicate_key", .fields = {"event.user", "event.item"}},
          {.kind = "missing", .fields = {"event.user"}},
          {.kind = "type_error", .fields = {"event.value"}, .action = "null"},
          {.kind = "prefix", .fields = {"col1"}, .prefixes = {"X"}},
          {.kind = "range", .fields = {"event.quantity"}, .min = 0, .min_exclusive = true},
          {.kind = "pattern", .fields = {"col2"}, .regex = "^[0-9]"},
          {.kind = "outlier", .fields = {"event.value"}, .action = "flag"},
          {.kind = "text_hygiene"}};
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const persona::io::SourceMapping m = mapping();
  // Seven columns, always: pad the first line so the mapping's columns exist.
  std::string text = "a,b,c,d,e,f,g\n" + std::string(reinterpret_cast<const char*>(data), size);
  try {
    {
      persona::io::CsvReader reader(persona::io::ByteSource::from_memory(text, "fuzz.csv"), m.csv);
      persona::io::Mapper mapper(m, reader.columns(), "fuzz.csv");
      persona::prep::Cleaner cleaner(rules(), mapper, "fuzz.csv");
      persona::io::Record record;
      std::vector<persona::io::FieldValue> values;
      auto read_all = [&](bool observe) {
        persona::io::CsvReader again(persona::io::ByteSource::from_memory(text, "fuzz.csv"), m.csv);
        while (again.next(record)) {
          if (record.problem.empty()) mapper.map(record, values);
          else values.clear();
          if (observe) cleaner.observe(record, values);
          else {
            const auto verdict = cleaner.apply(record, values);
            if (verdict.kept) (void)mapper.build(values);
          }
        }
      };
      read_all(true);
      cleaner.end_first_pass();
      read_all(false);
      const auto& s = cleaner.summary();
      if (s.rows_read != s.rows_kept + s.rows_removed) std::abort();
      uint64_t sum = 0;
      for (const auto& r : s.rules) sum += r.removed;
      if (sum != s.rows_removed) std::abort();
    }
  } catch (const persona::Error&) {
  }
  return 0;
}
