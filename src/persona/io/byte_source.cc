#include "persona/io/byte_source.h"

#include <sys/stat.h>
#include <isa-l/igzip_lib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/core/handoff.h"
#include "persona/io/input.h"
#include "persona/io/text_encoding.h"

namespace persona::io {
namespace {

// Opens a file for reading (`readable`: what io::readable_path gave for `path`), with a clear
// error naming `path` when it cannot be.
std::FILE* open_for_reading(const std::string& path, const std::string& readable, uint64_t& size) {
  std::FILE* f = std::fopen(readable.c_str(), "rb");
  if (!f) throw Error(fmt::format("cannot open: {}", std::strerror(errno)), {path}, "check the path");
  struct stat st {};
  size = ::fstat(fileno(f), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return f;
}

bool starts_with_gzip_magic(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char magic[2] = {0, 0};
  const size_t n = std::fread(magic, 1, 2, f);
  std::fclose(f);
  return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

class PlainFileSource final : public ByteSource {
 public:
  PlainFileSource(std::string path, const std::string& readable) : path_(std::move(path)) {
    file_ = open_for_reading(path_, readable, size_);
  }
  ~PlainFileSource() override { std::fclose(file_); }
  size_t read(char* buffer, size_t n) override {
    const size_t got = std::fread(buffer, 1, n, file_);
    if (got < n && std::ferror(file_)) throw Error(fmt::format("cannot read: {}", std::strerror(errno)), {path_});
    return got;
  }
  void seek(uint64_t offset) override {
    if (fseeko(file_, static_cast<off_t>(offset), SEEK_SET) != 0)
      throw Error(fmt::format("cannot seek to byte {}", offset), {path_});
  }
  uint64_t compressed_position() const override { return static_cast<uint64_t>(ftello(file_)); }
  uint64_t file_size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  uint64_t size_ = 0;
};

// gzip through ISA-L's igzip, which inflates several times faster than zlib (measured: the
// Online Retail file, 47.6 MB, in 0.03 s against zcat's 0.16 s), with the CRC and length checked.
// Concatenated gzip members are read in turn; anything after the last member that is not
// another gzip header is ignored, as gzip does.
class GzipFileSource final : public ByteSource {
 public:
  GzipFileSource(std::string path, const std::string& readable) : path_(std::move(path)), input_(1 << 18) {
    file_ = open_for_reading(path_, readable, size_);
    restart();
  }
  ~GzipFileSource() override { std::fclose(file_); }

  size_t read(char* buffer, size_t n) override {
    n = std::min<size_t>(n, 1u << 30);
    while (true) {
      if (member_done_) {
        if (!next_member()) return 0;
      }
      if (state_.avail_in == 0) refill();
      state_.next_out = reinterpret_cast<uint8_t*>(buffer);
      state_.avail_out = static_cast<uint32_t>(n);
      const int rc = isal_inflate(&state_);
      if (rc < 0) fail(rc);
      const size_t produced = n - state_.avail_out;
      if (state_.block_state == ISAL_BLOCK_FINISH) member_done_ = true;
      else if (produced == 0 && state_.avail_in == 0 && input_done_)
        throw Error("gzip data is truncated (the file ends in the middle of the compressed stream)", {path_},
                    "the file was probably cut short while copying; fetch it again");
      if (produced > 0) return produced;
    }
  }

  void seek(uint64_t offset) override {  // gzip cannot jump: decompress again up to offset
    restart();
    std::vector<char> skip(1 << 16);
    while (offset > 0) {
      const size_t got = read(skip.data(), std::min<uint64_t>(offset, skip.size()));
      if (got == 0) break;
      offset -= got;
    }
  }
  uint64_t compressed_position() const override { return consumed_ - state_.avail_in; }
  uint64_t file_size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  void restart() {
    std::rewind(file_);
    consumed_ = 0;
    input_done_ = false;
    member_done_ = false;
    isal_inflate_init(&state_);
    state_.crc_flag = ISAL_GZIP;
    state_.avail_in = 0;
  }
  void refill() {
    if (input_done_) return;
    const size_t got = std::fread(input_.data(), 1, input_.size(), file_);
    if (got < input_.size()) {
      if (std::ferror(file_)) throw Error(fmt::format("cannot read: {}", std::strerror(errno)), {path_});
      input_done_ = true;
    }
    consumed_ += got;
    state_.next_in = input_.data();
    state_.avail_in = static_cast<uint32_t>(got);
  }
  // After a member's trailer: another member, or the end.
  bool next_member() {
    if (state_.avail_in < 2 && !input_done_) {
      // Keep the unread bytes, then top up.
      std::vector<uint8_t> rest(state_.next_in, state_.next_in + state_.avail_in);
      const size_t got = std::fread(input_.data() + rest.size(), 1, input_.size() - rest.size(), file_);
      if (got < input_.size() - rest.size()) input_done_ = true;
      consumed_ += got;
      std::copy(rest.begin(), rest.end(), input_.begin());
      state_.next_in = input_.data();
      state_.avail_in = static_cast<uint32_t>(rest.size() + got);
    }
    if (state_.avail_in < 2 || state_.next_in[0] != 0x1f || state_.next_in[1] != 0x8b) return false;
    uint8_t* next_in = state_.next_in;
    const uint32_t avail_in = state_.avail_in;
    isal_inflate_reset(&state_);
    state_.crc_flag = ISAL_GZIP;
    state_.next_in = next_in;
    state_.avail_in = avail_in;
    member_done_ = false;
    return true;
  }
  [[noreturn]] void fail(int rc) {
    const char* what = rc == ISAL_INCORRECT_CHECKSUM ? "its checksum does not match the data"
                       : rc == ISAL_INVALID_WRAPPER  ? "its gzip header is invalid"
                                                     : "its compressed data is invalid";
    throw Error(fmt::format("cannot decompress: {}", what), {path_}, "the gzip file is corrupt");
  }

  std::string path_;
  std::FILE* file_ = nullptr;
  uint64_t size_ = 0, consumed_ = 0;
  std::vector<uint8_t> input_;
  inflate_state state_{};
  bool input_done_ = false, member_done_ = false;
};

// Decompresses on a second thread while the caller parses: on a 2-core machine this hides most
// of zlib's time (a third of a plain read-and-parse of a gzip CSV).
class ReadAheadSource final : public ByteSource {
 public:
  explicit ReadAheadSource(std::unique_ptr<ByteSource> inner)
      : inner_(std::move(inner)), path_(inner_->path()), size_(inner_->file_size()) {
    start();
  }
  ~ReadAheadSource() override { stop(); }

  size_t read(char* buffer, size_t n) override {
    size_t total = 0;
    while (total < n) {
      if (pos_ == current_.size) {
        if (total > 0 && !blocks_.has_ready()) break;  // hand back what we have rather than wait
        if (current_.data) blocks_.recycle(std::move(current_));
        auto next = blocks_.pop();
        current_ = next ? std::move(*next) : Block();
        pos_ = 0;
        if (!next) break;
      }
      const size_t k = std::min(n - total, current_.size - pos_);
      std::memcpy(buffer + total, current_.data.get() + pos_, k);
      pos_ += k;
      total += k;
    }
    return total;
  }

  void seek(uint64_t offset) override {
    stop();
    inner_->seek(offset);
    blocks_.reset();
    start();
  }
  uint64_t compressed_position() const override { return compressed_.load(std::memory_order_relaxed); }
  uint64_t file_size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  static constexpr size_t kBlock = 1 << 20;
  struct Block {
    std::unique_ptr<char[]> data;  // recycled: fresh megabytes would each cost 256 page faults
    size_t size = 0;
  };

  void start() {
    current_ = Block();
    pos_ = 0;
    worker_ = std::thread([this] { produce(); });
  }
  void stop() {
    blocks_.stop();
    if (worker_.joinable()) worker_.join();
  }
  void produce() {
    try {
      while (true) {
        Block block = blocks_.take_empty();
        if (!block.data) block.data = std::make_unique<char[]>(kBlock);
        block.size = inner_->read(block.data.get(), kBlock);
        compressed_.store(inner_->compressed_position(), std::memory_order_relaxed);
        if (block.size == 0) break;
        if (!blocks_.push(std::move(block))) return;
      }
      blocks_.finish();
    } catch (...) {
      blocks_.finish(std::current_exception());
    }
  }

  std::unique_ptr<ByteSource> inner_;
  std::string path_;
  uint64_t size_ = 0;
  Handoff<Block> blocks_{4};
  std::thread worker_;
  Block current_;
  size_t pos_ = 0;
  std::atomic<uint64_t> compressed_{0};
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(std::string data, std::string name) : data_(std::move(data)), name_(std::move(name)) {}
  size_t read(char* buffer, size_t n) override {
    const size_t k = std::min(n, data_.size() - pos_);
    std::memcpy(buffer, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }
  void seek(uint64_t offset) override { pos_ = std::min<uint64_t>(offset, data_.size()); }
  uint64_t compressed_position() const override { return pos_; }
  uint64_t file_size() const override { return data_.size(); }
  const std::string& path() const override { return name_; }

 private:
  std::string data_, name_;
  size_t pos_ = 0;
};

}  // namespace

std::unique_ptr<ByteSource> ByteSource::open_file(const std::string& path, const std::string& encoding) {
  const std::string readable = readable_path(path);  // a pipe is copied once; a device is refused
  std::unique_ptr<ByteSource> raw;
  if (!starts_with_gzip_magic(readable)) raw = std::make_unique<PlainFileSource>(path, readable);
  else raw = std::make_unique<ReadAheadSource>(std::make_unique<GzipFileSource>(path, readable));
  return utf8_source(std::move(raw), encoding);
}

std::unique_ptr<ByteSource> ByteSource::from_memory(std::string data, std::string name) {
  return std::make_unique<MemorySource>(std::move(data), std::move(name));
}

}  // namespace persona::io
