#include "persona/io/threaded_reader.h"

namespace persona::io {
namespace {
constexpr size_t kQueueDepth = 4;
}

ThreadedReader::ThreadedReader(std::unique_ptr<RecordReader> inner, Hook on_record, size_t batch_records)
    : inner_(std::move(inner)),
      on_record_(std::move(on_record)),
      columns_(inner_->columns()),
      path_(inner_->path()),
      file_bytes_(inner_->file_bytes()),
      batch_records_(batch_records) {
  worker_ = std::thread([this] { produce(); });
}

ThreadedReader::~ThreadedReader() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void ThreadedReader::produce() {
  try {
    Record record;
    bool more = true;
    while (more) {
      std::unique_ptr<Batch> batch;
      {
        std::lock_guard lock(mutex_);
        if (!free_.empty()) {
          batch = std::move(free_.back());
          free_.pop_back();
        }
      }
      if (!batch) batch = std::make_unique<Batch>();
      batch->clear();
      while (batch->entries.size() < batch_records_ && (more = inner_->next(record))) {
        if (on_record_) on_record_(record);
        Batch::Entry e{record.line,
                       batch->arena.size(),
                       record.raw.size(),
                       batch->fields.size(),
                       static_cast<uint32_t>(record.fields.size()),
                       record.duplicate,
                       record.problem};
        batch->arena.append(record.raw);
        for (size_t i = 0; i < record.fields.size(); ++i) {
          batch->fields.emplace_back(batch->arena.size(), record.fields[i].size());
          batch->arena.append(record.fields[i]);
          batch->present.push_back(i < record.present.size() ? record.present[i] : true);
        }
        batch->entries.push_back(std::move(e));
      }
      compressed_.store(inner_->compressed_bytes_read(), std::memory_order_relaxed);
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || ready_.size() < kQueueDepth; });
      if (stopping_) return;
      if (!batch->entries.empty()) ready_.push_back(std::move(batch));
      if (!more) done_ = true;
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard lock(mutex_);
    error_ = std::current_exception();
    done_ = true;
    changed_.notify_all();
  }
}

bool ThreadedReader::next(Record& record) {
  if (!current_ || position_ >= current_->entries.size()) {
    std::unique_lock lock(mutex_);
    if (current_) free_.push_back(std::move(current_));
    changed_.wait(lock, [&] { return !ready_.empty() || done_; });
    if (ready_.empty()) {
      // Everything read; a failure of the reader surfaces here, after the rows before it.
      if (error_) std::rethrow_exception(error_);
      return false;
    }
    current_ = std::move(ready_.front());
    ready_.pop_front();
    position_ = 0;
    changed_.notify_all();
  }
  const Batch& b = *current_;
  const Batch::Entry& e = b.entries[position_++];
  record.line = e.line;
  record.problem = e.problem;
  record.duplicate = e.duplicate;
  record.raw = std::string_view(b.arena.data() + e.raw_offset, e.raw_length);
  record.fields.resize(e.field_count);
  record.present.resize(e.field_count);
  for (uint32_t i = 0; i < e.field_count; ++i) {
    const auto [offset, length] = b.fields[e.first_field + i];
    record.fields[i] = std::string_view(b.arena.data() + offset, length);
    record.present[i] = b.present[e.first_field + i];
  }
  return true;
}

}  // namespace persona::io
