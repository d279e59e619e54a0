#include "persona/io/byte_source.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "persona/core/error.h"

namespace persona::io {
namespace {

class GzFileSource final : public ByteSource {
 public:
  explicit GzFileSource(std::string path) : path_(std::move(path)) {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0)
      throw Error(fmt::format("cannot open: {}", std::strerror(errno)), {path_}, "check the path");
    if (S_ISDIR(st.st_mode)) throw Error("is a directory, not a data file", {path_});
    size_ = static_cast<uint64_t>(st.st_size);
    file_ = gzopen(path_.c_str(), "rb");
    if (!file_) throw Error(fmt::format("cannot open: {}", std::strerror(errno)), {path_});
    gzbuffer(file_, 1 << 18);
  }
  ~GzFileSource() override {
    if (file_) gzclose(file_);
  }

  size_t read(char* buffer, size_t n) override {
    const int got = gzread(file_, buffer, static_cast<unsigned>(std::min<size_t>(n, 1u << 30)));
    int code = Z_OK;
    const char* message = gzerror(file_, &code);
    if (got < 0 || (code != Z_OK && code != Z_STREAM_END)) {
      if (code == Z_BUF_ERROR)
        throw Error("gzip data is truncated (the file ends in the middle of the compressed stream)", {path_},
                    "the file was probably cut short while copying; fetch it again");
      throw Error(fmt::format("cannot decompress: {}", message ? message : "unknown zlib error"), {path_},
                  "the gzip file is corrupt");
    }
    return static_cast<size_t>(got);
  }

  void seek(uint64_t offset) override {
    gzclearerr(file_);
    if (gzseek(file_, static_cast<z_off_t>(offset), SEEK_SET) < 0)
      throw Error(fmt::format("cannot seek to byte {}", offset), {path_});
  }

  uint64_t compressed_position() const override {
    const z_off_t off = gzoffset(file_);
    return off < 0 ? 0 : static_cast<uint64_t>(off);
  }
  uint64_t file_size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  gzFile file_ = nullptr;
  uint64_t size_ = 0;
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

std::unique_ptr<ByteSource> ByteSource::open_file(const std::string& path) {
  return std::make_unique<GzFileSource>(path);
}

std::unique_ptr<ByteSource> ByteSource::from_memory(std::string data, std::string name) {
  return std::make_unique<MemorySource>(std::move(data), std::move(name));
}

}  // namespace persona::io
