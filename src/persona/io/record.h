#pragma once
// One record as a reader hands it out: the fields of a CSV row or the selected values of a
// JSON Lines object, the physical line it started on, and its original bytes for the reject log.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace persona::io {

struct Record {
  int64_t line = 0;                      // 1-based physical line where the record starts
  std::vector<std::string_view> fields;  // valid until the next call to next()
  std::vector<bool> present;             // JSON Lines: key present and not null; CSV: all true
  std::string_view raw;                  // the record's original bytes (cut for huge records)
  std::string problem;                   // non-empty: malformed, fields are not reliable
  // Set by a reader hook that checks exact duplicates ahead of the cleaner (see ThreadedReader):
  // 1 = an identical record came earlier, 0 = first of its kind, -1 = not checked.
  int8_t duplicate = -1;
};

enum class Format { Csv, Tsv, Jsonl };

// Guesses the format from the file name: .csv .tsv .tab .txt .dat .jsonl .ndjson .json, each
// optionally followed by .gz. Throws persona::Error for anything else.
Format format_from_path(const std::string& path);
Format parse_format(const std::string& name);  // "csv", "tsv", "jsonl"
const char* format_name(Format f);

// The interface every reader implements.
class RecordReader {
 public:
  virtual ~RecordReader() = default;
  // Column names: the CSV header (or generated names col1..colN) or the selected JSON keys.
  virtual const std::vector<std::string>& columns() const = 0;
  // False at the end of the input. Throws persona::Error only when the input cannot be read
  // at all (missing file, corrupt gzip); malformed records come back with `problem` set.
  virtual bool next(Record& record) = 0;
  virtual uint64_t compressed_bytes_read() const = 0;
  virtual uint64_t file_bytes() const = 0;
  virtual const std::string& path() const = 0;
};

}  // namespace persona::io
