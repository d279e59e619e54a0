#include "persona/io/csv_reader.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "persona/core/error.h"

namespace persona::io {
namespace {
constexpr size_t kChunk = 1 << 20;
constexpr size_t kRawKeep = 4096;  // bytes of an oversized record kept for the reject log
}  // namespace

CsvReader::CsvReader(const std::string& path, CsvOptions options)
    : CsvReader(ByteSource::open_file(path), std::move(options)) {}

CsvReader::CsvReader(std::unique_ptr<ByteSource> source, CsvOptions options)
    : source_(std::move(source)), options_(std::move(options)) {
  if (options_.delimiter.empty() && options_.quote != 0)
    throw Error("an empty delimiter needs quoting off", {source_->path()});
  if (!options_.delimiter.empty()) stop_[static_cast<unsigned char>(options_.delimiter[0])] = 1;
  stop_[static_cast<unsigned char>('\n')] = 1;
  stop_[static_cast<unsigned char>('\r')] = 1;
  buffer_.resize(kChunk);
  read_header();
}

void CsvReader::read_header() {
  Record header;
  if (!options_.header) {
    // Name the columns col1..colN after the first record, which next() then hands out.
    if (next_raw(first_)) {
      pending_ = true;
      for (size_t i = 0; i < first_.fields.size(); ++i) columns_.push_back(fmt::format("col{}", i + 1));
    }
    return;
  }
  if (!next_raw(header)) return;  // empty file: no columns, no records
  if (!header.problem.empty())
    throw Error(fmt::format("cannot read the header line: {}", header.problem), {path(), header.line});
  for (auto f : header.fields) columns_.emplace_back(f);
}

void CsvReader::compact() {
  if (begin_ == 0) return;
  std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
  buffer_offset_ += begin_;
  end_ -= begin_;
  begin_ = 0;
}

bool CsvReader::fill() {
  if (eof_) return false;
  compact();
  if (buffer_.size() - end_ < kChunk / 2) buffer_.resize(std::max(buffer_.size() * 2, end_ + kChunk));
  const size_t got = source_->read(buffer_.data() + end_, buffer_.size() - end_);
  if (got == 0) {
    eof_ = true;
    return false;
  }
  end_ += got;
  if (first_read_) {
    first_read_ = false;
    if (end_ >= 3 && std::memcmp(buffer_.data(), "\xEF\xBB\xBF", 3) == 0) begin_ = 3;  // BOM
  }
  return true;
}

size_t CsvReader::count_newlines(size_t from, size_t to) const {
  return static_cast<size_t>(std::count(buffer_.data() + from, buffer_.data() + to, '\n'));
}

// Parses one record starting at begin_. On Complete, `end` is one past its line end.
CsvReader::Parse CsvReader::parse_record(size_t& end, std::string& problem) {
  spans_.clear();
  scratch_.clear();
  quoted_ = false;
  const char* buf = buffer_.data();
  const std::string& delim = options_.delimiter;
  const char quote = options_.quote;
  size_t pos = begin_;

  auto at_delimiter = [&](size_t p, bool& need_more) {
    if (delim.empty() || buf[p] != delim[0]) return false;
    if (delim.size() == 1) return true;
    if (p + delim.size() > end_) {
      need_more = !eof_;
      return false;
    }
    return std::memcmp(buf + p, delim.data(), delim.size()) == 0;
  };

  while (true) {
    // At the start of a field.
    if (pos < end_ && quote != 0 && buf[pos] == quote) {
      quoted_ = true;
      const size_t content = pos + 1;
      size_t q = content;
      bool doubled = false;
      while (true) {
        const void* hit = q < end_ ? std::memchr(buf + q, quote, end_ - q) : nullptr;
        if (!hit) return eof_ ? Parse::Unterminated : Parse::NeedMore;
        q = static_cast<const char*>(hit) - buf;
        if (q + 1 >= end_ && !eof_) return Parse::NeedMore;
        if (q + 1 < end_ && buf[q + 1] == quote) {
          doubled = true;
          q += 2;
          continue;
        }
        break;
      }
      if (doubled) {
        const size_t start = scratch_.size();
        for (size_t i = content; i < q; ++i) {
          scratch_ += buf[i];
          if (buf[i] == quote) ++i;
        }
        spans_.push_back({true, start, scratch_.size() - start});
      } else {
        spans_.push_back({false, content, q - content});
      }
      pos = q + 1;
      // After the closing quote: delimiter, line end or end of input.
      if (pos < end_) {
        bool need_more = false;
        const char c = buf[pos];
        // A lone CR is data, not a line end (as inside unquoted fields): only CRLF ends a line.
        if (c == '\r' && pos + 1 >= end_ && !eof_) return Parse::NeedMore;
        const bool line_end = c == '\n' || (c == '\r' && (pos + 1 >= end_ || buf[pos + 1] == '\n'));
        if (!line_end && !at_delimiter(pos, need_more)) {
          if (need_more) return Parse::NeedMore;
          if (problem.empty())
            problem = fmt::format("unexpected text after the closing quote of field {}", spans_.size());
          while (pos < end_ && buf[pos] != '\n' && !at_delimiter(pos, need_more)) ++pos;
          if (need_more) return Parse::NeedMore;
        }
      }
    } else {
      const size_t start = pos;
      bool need_more = false;
      while (pos < end_) {
        if (stop_[static_cast<unsigned char>(buf[pos])]) {
          if (buf[pos] == '\n') break;
          if (buf[pos] == '\r') {
            if (pos + 1 < end_ && buf[pos + 1] == '\n') break;
            if (pos + 1 >= end_ && !eof_) return Parse::NeedMore;
            if (pos + 1 >= end_) break;
          } else if (at_delimiter(pos, need_more)) {
            break;
          }
          if (need_more) return Parse::NeedMore;
        }
        ++pos;
      }
      if (pos >= end_ && !eof_) return Parse::NeedMore;
      spans_.push_back({false, start, pos - start});
    }

    if (pos >= end_) {  // end of input ends the record
      end = pos;
      return Parse::Complete;
    }
    bool need_more = false;
    if (buf[pos] == '\n') {
      end = pos + 1;
      return Parse::Complete;
    }
    if (buf[pos] == '\r') {
      end = pos + 1 < end_ && buf[pos + 1] == '\n' ? pos + 2 : pos + 1;
      return Parse::Complete;
    }
    if (at_delimiter(pos, need_more)) {
      pos += delim.size();
      if (pos >= end_ && !eof_) return Parse::NeedMore;
      if (pos >= end_) {  // a trailing delimiter at the very end: one more empty field
        spans_.push_back({false, pos, 0});
        end = pos;
        return Parse::Complete;
      }
      continue;
    }
    if (eof_) {  // not reachable with the scanner above; a safe answer all the same
      end = end_;
      return Parse::Complete;
    }
    return Parse::NeedMore;
  }
}

void CsvReader::finish_record(Record& record, size_t end, std::string problem) {
  record.line = line_;
  record.duplicate = -1;
  record.problem = std::move(problem);
  size_t raw_end = end;
  while (raw_end > begin_ && (buffer_[raw_end - 1] == '\n' || buffer_[raw_end - 1] == '\r')) --raw_end;
  record.raw = std::string_view(buffer_.data() + begin_, raw_end - begin_);
  record.fields.clear();
  for (const Span& s : spans_)
    record.fields.emplace_back((s.scratch ? scratch_.data() : buffer_.data()) + s.offset, s.length);
  record.present.assign(record.fields.size(), true);
  // Only a quoted field can hold a newline; otherwise the record ends at its one line end.
  line_ += quoted_ ? static_cast<int64_t>(count_newlines(begin_, end)) : (end > begin_ && buffer_[end - 1] == '\n');
  begin_ = end;
}

// The record at begin_ is longer than max_record_bytes: keep its first bytes for the reject log,
// then skip to its end without holding it in memory.
void CsvReader::skip_oversized(Record& record) {
  record.line = line_;
  record.duplicate = -1;
  record.fields.clear();
  record.present.clear();
  scratch_.assign(buffer_.data() + begin_, std::min(kRawKeep, end_ - begin_));
  record.problem = fmt::format("record is longer than the limit of {} bytes (max_record_bytes)",
                               options_.max_record_bytes);
  const int64_t start_line = line_;
  const char quote = options_.quote;
  bool in_quotes = false, field_start = true;
  size_t first_newline = std::string::npos;  // stream offset just after the record's first line
  while (true) {
    if (begin_ >= end_ && !fill()) break;
    const char c = buffer_[begin_++];
    if (c == '\n') {
      ++line_;
      if (first_newline == std::string::npos) first_newline = buffer_offset_ + begin_;
      if (!in_quotes) break;
      field_start = true;
      continue;
    }
    if (quote != 0 && c == quote) {
      if (field_start) in_quotes = true;
      else if (in_quotes) {
        if (begin_ >= end_) fill();
        if (begin_ < end_ && buffer_[begin_] == quote) ++begin_;
        else in_quotes = false;
      }
    } else if (!options_.delimiter.empty() && c == options_.delimiter[0] && !in_quotes) {
      field_start = true;
      continue;
    }
    field_start = false;
  }
  if (in_quotes && first_newline != std::string::npos) {
    // Never closed: only the first line is lost; read on from the line after it.
    record.problem += "; it opens a quote that is never closed";
    source_->seek(first_newline);
    buffer_offset_ = first_newline;
    begin_ = end_ = 0;
    eof_ = false;
    line_ = start_line + 1;
  }
  record.raw = scratch_;
}

void CsvReader::recover_unterminated(Record& record) {
  const char* nl = static_cast<const char*>(std::memchr(buffer_.data() + begin_, '\n', end_ - begin_));
  const size_t end = nl ? static_cast<size_t>(nl - buffer_.data()) + 1 : end_;
  spans_.clear();
  quoted_ = true;  // count the newlines
  finish_record(record, end, "a quoted field is never closed (unbalanced quote); this line is skipped and "
                             "reading goes on at the next line");
}

bool CsvReader::next_raw(Record& record) {
  while (true) {
    while (begin_ >= end_)
      if (!fill()) return false;
    // Blank lines are not records (as in pandas' skip_blank_lines).
    const char c = buffer_[begin_];
    if (c == '\n' || (c == '\r' && begin_ + 1 < end_ && buffer_[begin_ + 1] == '\n')) {
      begin_ += c == '\n' ? 1 : 2;
      ++line_;
      continue;
    }
    size_t end = 0;
    std::string problem;
    const Parse result = parse_record(end, problem);
    if (result == Parse::Complete) {
      // The same limit whether or not the whole record happened to fit in the buffer.
      if (end - begin_ > options_.max_record_bytes) {
        skip_oversized(record);
        return true;
      }
      finish_record(record, end, std::move(problem));
      return true;
    }
    if (result == Parse::Unterminated) {
      recover_unterminated(record);
      return true;
    }
    if (end_ - begin_ > options_.max_record_bytes) {
      skip_oversized(record);
      return true;
    }
    fill();  // at the end of input, the next parse_record finishes or rejects the record
  }
}

bool CsvReader::next(Record& record) {
  if (pending_) {
    pending_ = false;
    std::swap(record, first_);
  } else if (!next_raw(record)) {
    return false;
  }
  if (record.problem.empty() && options_.header && record.fields.size() != columns_.size()) {
    record.problem = fmt::format("expected {} fields as in the header, found {}", columns_.size(),
                                 record.fields.size());
  }
  if (!options_.header && record.problem.empty() && record.fields.size() != columns_.size() && !columns_.empty() &&
      !options_.delimiter.empty()) {
    record.problem = fmt::format("expected {} fields as in the first line, found {}", columns_.size(), record.fields.size());
  }
  return true;
}

std::string csv_field(std::string_view value) {
  if (value.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(value);
  std::string q = "\"";
  for (char c : value) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace persona::io
