#pragma once
// Streaming CSV / TSV reader per RFC 4180: quoted fields, doubled quotes, embedded newlines,
// a UTF-8 byte-order mark, CRLF or LF line ends, gzip read directly. Memory is bounded by the
// largest record (max_record_bytes), never by the file.
//
// Malformed records do not stop the reader: they come back with Record::problem set and the
// reader carries on at the next record. An unterminated quote costs one physical line, not the
// rest of the file: the reader rejects the line that opened it and resumes on the line after.
#include <memory>
#include <string>
#include <vector>

#include "persona/io/byte_source.h"
#include "persona/io/record.h"

namespace persona::io {

struct CsvOptions {
  std::string delimiter = ",";  // one or more bytes: "\t" for TSV, "::" for MovieLens 1M
  char quote = '"';             // 0 turns quoting off
  bool header = true;           // false: columns are named col1, col2, ...
  size_t max_record_bytes = 1 << 20;  // a longer record is rejected (and skipped), not loaded
};

// A value as one CSV field: quoted (quotes doubled) when it holds a comma, quote or line break.
std::string csv_field(std::string_view value);

class CsvReader final : public RecordReader {
 public:
  CsvReader(std::unique_ptr<ByteSource> source, CsvOptions options = {});
  explicit CsvReader(const std::string& path, CsvOptions options = {});

  const std::vector<std::string>& columns() const override { return columns_; }
  bool next(Record& record) override;
  uint64_t compressed_bytes_read() const override { return source_->compressed_position(); }
  uint64_t file_bytes() const override { return source_->file_size(); }
  const std::string& path() const override { return source_->path(); }
  // Bytes held for parsing: bounded by max_record_bytes plus a read chunk, whatever the file.
  size_t buffer_bytes() const { return buffer_.size(); }

 private:
  enum class Parse { Complete, NeedMore, Unterminated };
  struct Span {
    bool scratch;
    size_t offset, length;
  };

  void read_header();
  bool fill();  // reads more input; false at end of input
  void compact();
  bool next_raw(Record& record);
  Parse parse_record(size_t& end, std::string& problem);
  void finish_record(Record& record, size_t end, std::string problem);
  void skip_oversized(Record& record);
  void recover_unterminated(Record& record);
  size_t count_newlines(size_t from, size_t to) const;

  std::unique_ptr<ByteSource> source_;
  CsvOptions options_;
  std::vector<std::string> columns_;
  std::string buffer_;
  size_t begin_ = 0, end_ = 0;  // unconsumed bytes are buffer_[begin_, end_)
  uint64_t buffer_offset_ = 0;  // stream offset of buffer_[0]
  int64_t line_ = 1;            // physical line at begin_
  bool eof_ = false, first_read_ = true;
  bool pending_ = false;  // without a header the first record is read early, to name the columns
  Record first_;
  std::vector<Span> spans_;
  bool quoted_ = false;  // the record being parsed has a quoted field
  std::string scratch_;
  unsigned char stop_[256] = {};
};

}  // namespace persona::io
