#include "persona/io/text_encoding.h"

#include <unicode/ucnv.h>
#include <unicode/ucsdet.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "persona/core/error.h"

namespace persona::io {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_utf8_name(const std::string& encoding) {
  const auto e = lower(encoding);
  return e.empty() || e == "utf-8" || e == "utf8";
}

// The first bytes of a stream, read ahead to decide its encoding, then handed out again.
class PeekedSource final : public ByteSource {
 public:
  PeekedSource(std::unique_ptr<ByteSource> inner, size_t bytes) : inner_(std::move(inner)) {
    head_.resize(bytes);
    size_t got = 0;
    while (got < bytes) {
      const size_t n = inner_->read(head_.data() + got, bytes - got);
      if (n == 0) break;
      got += n;
    }
    head_.resize(got);
  }
  const std::string& head() const { return head_; }
  size_t read(char* buffer, size_t n) override {
    if (pos_ < head_.size()) {
      const size_t k = std::min(n, head_.size() - pos_);
      std::memcpy(buffer, head_.data() + pos_, k);
      pos_ += k;
      return k;
    }
    return inner_->read(buffer, n);
  }
  void seek(uint64_t offset) override {
    if (offset < head_.size()) {
      pos_ = static_cast<size_t>(offset);
      inner_->seek(head_.size());
    } else {
      pos_ = head_.size();
      inner_->seek(offset);
    }
  }
  uint64_t compressed_position() const override { return inner_->compressed_position(); }
  uint64_t file_size() const override { return inner_->file_size(); }
  const std::string& path() const override { return inner_->path(); }

 private:
  std::unique_ptr<ByteSource> inner_;
  std::string head_;
  size_t pos_ = 0;
};

// Converts a stream to UTF-8 with ICU, chunk by chunk (bytes a character is split across stay in
// the converter's state). Bytes not valid in the encoding become U+FFFD.
class TranscodingSource final : public ByteSource {
 public:
  TranscodingSource(std::unique_ptr<ByteSource> inner, std::string encoding)
      : inner_(std::move(inner)), encoding_(std::move(encoding)), input_(1 << 16), pivot_(1 << 12) {
    UErrorCode err = U_ZERO_ERROR;
    from_ = ucnv_open(encoding_.c_str(), &err);
    if (U_FAILURE(err)) throw Error(fmt::format("unknown encoding \"{}\"", encoding_), {inner_->path()});
    err = U_ZERO_ERROR;
    to_ = ucnv_open("UTF-8", &err);
    if (U_FAILURE(err)) {
      ucnv_close(from_);
      throw Error("cannot open ICU's UTF-8 converter", {inner_->path()});
    }
    restart();
  }
  ~TranscodingSource() override {
    ucnv_close(from_);
    ucnv_close(to_);
  }
  size_t read(char* buffer, size_t n) override {
    char* target = buffer;
    while (target == buffer) {
      if (in_pos_ == in_end_ && !in_done_) refill();
      const char* source = input_.data() + in_pos_;
      UErrorCode err = U_ZERO_ERROR;
      ucnv_convertEx(to_, from_, &target, buffer + n, &source, input_.data() + in_end_, pivot_.data(), &pivot_source_,
                     &pivot_target_, pivot_.data() + pivot_.size(), reset_, in_done_, &err);
      reset_ = false;
      in_pos_ = static_cast<size_t>(source - input_.data());
      if (err == U_BUFFER_OVERFLOW_ERROR) break;  // the caller's buffer is full
      if (U_FAILURE(err)) throw Error(fmt::format("cannot convert from {}: {}", encoding_, u_errorName(err)), {inner_->path()});
      if (in_done_ && in_pos_ == in_end_) break;  // everything converted and flushed
    }
    return static_cast<size_t>(target - buffer);
  }
  void seek(uint64_t offset) override {  // converted bytes cannot be found by offset: convert again
    restart();
    std::vector<char> skip(1 << 16);
    while (offset > 0) {
      const size_t got = read(skip.data(), static_cast<size_t>(std::min<uint64_t>(offset, skip.size())));
      if (got == 0) break;
      offset -= got;
    }
  }
  uint64_t compressed_position() const override { return inner_->compressed_position(); }
  uint64_t file_size() const override { return inner_->file_size(); }
  const std::string& path() const override { return inner_->path(); }

 private:
  void restart() {
    inner_->seek(0);
    ucnv_reset(from_);
    ucnv_reset(to_);
    in_pos_ = in_end_ = 0;
    in_done_ = false;
    reset_ = true;
    pivot_source_ = pivot_target_ = pivot_.data();
  }
  void refill() {
    in_pos_ = 0;
    in_end_ = inner_->read(input_.data(), input_.size());
    if (in_end_ == 0) in_done_ = true;
  }

  std::unique_ptr<ByteSource> inner_;
  std::string encoding_;
  UConverter* from_ = nullptr;
  UConverter* to_ = nullptr;
  std::vector<char> input_;
  size_t in_pos_ = 0, in_end_ = 0;
  bool in_done_ = false, reset_ = true;
  std::vector<UChar> pivot_;
  UChar* pivot_source_ = nullptr;
  UChar* pivot_target_ = nullptr;
};

// ICU's guess at a legacy encoding, for the error's hint ("" when it has none).
std::string guess_encoding(const std::string& head) {
  UErrorCode err = U_ZERO_ERROR;
  UCharsetDetector* detector = ucsdet_open(&err);
  if (U_FAILURE(err)) return "";
  ucsdet_setText(detector, head.data(), static_cast<int32_t>(head.size()), &err);
  const UCharsetMatch* match = U_SUCCESS(err) ? ucsdet_detect(detector, &err) : nullptr;
  std::string name;
  if (match && U_SUCCESS(err)) {
    const char* n = ucsdet_getName(match, &err);
    if (n && U_SUCCESS(err)) name = n;
  }
  ucsdet_close(detector);
  return lower(name);
}

// "utf-16le" / "utf-16be" when NUL bytes fill every other position (text in UTF-16 without a
// byte-order mark); "" otherwise.
std::string utf16_without_mark(const std::string& head) {
  if (head.size() < 8) return "";
  size_t even = 0, odd = 0;
  for (size_t i = 0; i + 1 < head.size(); i += 2) {
    even += head[i] == '\0';
    odd += head[i + 1] == '\0';
  }
  const size_t pairs = head.size() / 2;
  if (odd * 10 >= pairs * 3 && even * 10 < pairs) return "utf-16le";
  if (even * 10 >= pairs * 3 && odd * 10 < pairs) return "utf-16be";
  return "";
}

// Counts of non-ASCII sequences in `text` that are UTF-8 and that are not.
struct Utf8Census {
  size_t valid = 0, invalid = 0;
};
Utf8Census utf8_census(std::string_view text) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  Utf8Census c;
  for (size_t i = 0; i < text.size();) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    utf8proc_int32_t cp = 0;
    const auto n = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
    if (n <= 0) {
      ++c.invalid;
      ++i;
    } else {
      ++c.valid;
      i += static_cast<size_t>(n);
    }
  }
  return c;
}

// Whether `head` is plainly not UTF-8: a first line (a CSV header) with several bytes that are not
// UTF-8, or many such bytes among the non-ASCII ones. One stray bad byte in a UTF-8 file is left to
// the per-field checks, which reject that row alone.
bool plainly_not_utf8(const std::string& head) {
  const size_t newline = head.find('\n');
  if (newline != std::string::npos && utf8_census(std::string_view(head).substr(0, newline)).invalid >= 2) return true;
  // The last character of the head may be cut off: it is left out.
  const auto all = utf8_census(std::string_view(head).substr(0, head.size() > 4 ? head.size() - 4 : 0));
  return all.invalid >= 8 && all.invalid * 10 > all.valid + all.invalid;
}

}  // namespace

void check_encoding(const std::string& encoding) {
  if (is_utf8_name(encoding)) return;
  UErrorCode err = U_ZERO_ERROR;
  UConverter* c = ucnv_open(encoding.c_str(), &err);
  if (c) ucnv_close(c);
  if (U_FAILURE(err) || err == U_AMBIGUOUS_ALIAS_WARNING)
    throw Error(fmt::format("unknown encoding \"{}\"", encoding), {},
                "use a name ICU knows: utf-8, gb18030, gbk, big5, shift_jis, utf-16le, utf-16be, windows-1252, ...");
}

std::unique_ptr<ByteSource> utf8_source(std::unique_ptr<ByteSource> raw, const std::string& encoding) {
  if (!is_utf8_name(encoding)) {
    check_encoding(encoding);
    return std::make_unique<TranscodingSource>(std::move(raw), encoding);
  }
  if (!encoding.empty()) return raw;  // named UTF-8: taken at its word (rows are still checked)
  auto peeked = std::make_unique<PeekedSource>(std::move(raw), 1 << 16);
  const std::string& head = peeked->head();
  auto starts = [&](const char* mark, size_t n) { return head.size() >= n && std::memcmp(head.data(), mark, n) == 0; };
  if (starts("\xFF\xFE\x00\x00", 4) || starts("\x00\x00\xFE\xFF", 4))
    return std::make_unique<TranscodingSource>(std::move(peeked), "UTF-32");
  if (starts("\xFF\xFE", 2) || starts("\xFE\xFF", 2)) return std::make_unique<TranscodingSource>(std::move(peeked), "UTF-16");
  const std::string path = peeked->path();
  if (const auto utf16 = utf16_without_mark(head); !utf16.empty())
    throw Error(fmt::format("this file looks like {} text (every other byte is NUL), not UTF-8", utf16), {path},
                fmt::format("set encoding = \"{}\" in the source's mapping (or --encoding {})", utf16, utf16));
  if (plainly_not_utf8(head)) {
    std::string guess = guess_encoding(head);
    if (guess.empty() || guess == "utf-8") guess = "gb18030";
    throw Error(fmt::format("this file is not UTF-8; it looks like {} (ICU's guess)", guess), {path},
                fmt::format("set encoding = \"{}\" in the source's mapping (or --encoding {}); GBK and GB2312 files are "
                            "read as gb18030", guess, guess));
  }
  return peeked;
}

}  // namespace persona::io
