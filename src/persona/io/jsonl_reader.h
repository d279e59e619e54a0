#pragma once
// JSON Lines reader (simdjson): one JSON object per line, gzip read directly. The caller
// names the keys it wants ("user_id", or "a.b" for nested objects); each record carries their
// values as text (numbers as written in shortest form, objects and arrays as minified JSON).
// A line that is not a JSON object comes back with Record::problem set; reading goes on.
// A file that is one JSON array of objects is read the same way, an element per record (its
// "line" is the element's position), streamed: it is not loaded whole.
#include <memory>
#include <string>
#include <vector>

#include "persona/io/csv_reader.h"

namespace simdjson::dom {
class parser;
}

namespace persona::io {

class JsonlReader final : public RecordReader {
 public:
  JsonlReader(std::unique_ptr<ByteSource> source, std::vector<std::string> keys, size_t max_line_bytes = 1 << 20);
  JsonlReader(const std::string& path, std::vector<std::string> keys, size_t max_line_bytes = 1 << 20);
  ~JsonlReader() override;

  const std::vector<std::string>& columns() const override { return keys_; }
  bool next(Record& record) override;
  uint64_t compressed_bytes_read() const override { return lines_.compressed_bytes_read(); }
  uint64_t file_bytes() const override { return lines_.file_bytes(); }
  const std::string& path() const override { return lines_.path(); }

 private:
  // The line splitting, buffering and oversize handling are the CSV reader's, with quoting off.
  CsvReader lines_;
  std::vector<std::string> keys_;
  std::vector<std::string> pointers_;  // JSON pointers for dotted keys
  std::unique_ptr<simdjson::dom::parser> parser_;
  std::vector<std::string> values_;
  Record line_;
};

}  // namespace persona::io
