#pragma once
// Reads ahead on a second thread: the wrapped reader (decompression and parsing) runs there and
// hands over batches of records, so the caller's thread only maps and cleans. On two cores this
// nearly halves the wall time of a gzip ingest. Records are copied into the batch, so their
// fields stay valid until the caller's next call to next(), as with any reader.
#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "persona/core/handoff.h"
#include "persona/io/record.h"

namespace persona::io {

class ThreadedReader final : public RecordReader {
 public:
  // `on_record`, when given, runs on the reading thread for every record before it is handed
  // over (work that only needs the record itself, moved off the caller's thread).
  using Hook = std::function<void(Record&)>;
  explicit ThreadedReader(std::unique_ptr<RecordReader> inner, Hook on_record = {}, size_t batch_records = 4096);
  ~ThreadedReader() override;

  const std::vector<std::string>& columns() const override { return columns_; }
  bool next(Record& record) override;
  uint64_t compressed_bytes_read() const override { return compressed_.load(std::memory_order_relaxed); }
  uint64_t file_bytes() const override { return file_bytes_; }
  const std::string& path() const override { return path_; }

 private:
  struct Batch {
    struct Entry {
      int64_t line;
      size_t raw_offset, raw_length, first_field;
      uint32_t field_count;
      int8_t duplicate;
      std::string problem;
    };
    std::string arena;
    std::vector<Entry> entries;
    std::vector<std::pair<size_t, size_t>> fields;  // offset, length in arena
    std::vector<uint8_t> present;
    void clear() {
      arena.clear();
      entries.clear();
      fields.clear();
      present.clear();
    }
  };

  void produce();

  std::unique_ptr<RecordReader> inner_;
  Hook on_record_;
  std::vector<std::string> columns_;
  std::string path_;
  uint64_t file_bytes_;
  size_t batch_records_;
  Handoff<std::unique_ptr<Batch>> batches_{4};
  std::thread worker_;
  std::unique_ptr<Batch> current_;
  size_t position_ = 0;
  std::atomic<uint64_t> compressed_{0};
};

}  // namespace persona::io
