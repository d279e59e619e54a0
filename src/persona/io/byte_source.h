#pragma once
// A stream of bytes from a file, transparently gunzipped when the file is gzip (by its magic
// bytes, not its name; ISA-L's igzip), or from memory (tests, fuzzing). Truncated or corrupt
// gzip is a persona::Error naming the file; so is a file that is not UTF-8 and names no encoding.
#include <cstdint>
#include <memory>
#include <string>

namespace persona::io {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to n bytes; returns 0 at the end.
  virtual size_t read(char* buffer, size_t n) = 0;
  // Repositions to an offset of the (uncompressed) stream.
  virtual void seek(uint64_t offset) = 0;
  virtual uint64_t compressed_position() const = 0;
  virtual uint64_t file_size() const = 0;
  virtual const std::string& path() const = 0;

  // gzip is decompressed on a thread of its own (read-ahead) while the caller parses. Standard
  // input ("-"), pipes and FIFOs are read through a copy (io/input.h); the bytes come out as
  // UTF-8, converted from `encoding` or from a byte-order mark (io/text_encoding.h).
  static std::unique_ptr<ByteSource> open_file(const std::string& path, const std::string& encoding = "");
  static std::unique_ptr<ByteSource> from_memory(std::string data, std::string name = "<memory>");
};

}  // namespace persona::io
