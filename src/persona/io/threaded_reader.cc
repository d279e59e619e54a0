#include "persona/io/threaded_reader.h"

namespace persona::io {
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
  batches_.stop();
  if (worker_.joinable()) worker_.join();
}

void ThreadedReader::produce() {
  try {
    Record record;
    bool more = true;
    while (more) {
      std::unique_ptr<Batch> batch = batches_.take_empty();
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
        const size_t raw_at = batch->arena.size();
        batch->arena.append(record.raw);
        const char* raw_begin = record.raw.data();
        const char* raw_end = raw_begin + record.raw.size();
        for (size_t i = 0; i < record.fields.size(); ++i) {
          const std::string_view f = record.fields[i];
          if (f.data() >= raw_begin && f.data() + f.size() <= raw_end) {
            // Most fields are a piece of the raw record, already copied: point into that copy.
            batch->fields.emplace_back(raw_at + static_cast<size_t>(f.data() - raw_begin), f.size());
          } else {  // unescaped ("" -> ") or extracted (JSON) text: copy it
            batch->fields.emplace_back(batch->arena.size(), f.size());
            batch->arena.append(f);
          }
          batch->present.push_back(i < record.present.size() ? record.present[i] : true);
        }
        batch->entries.push_back(std::move(e));
      }
      compressed_.store(inner_->compressed_bytes_read(), std::memory_order_relaxed);
      if (!batch->entries.empty() && !batches_.push(std::move(batch))) return;
    }
    batches_.finish();
  } catch (...) {
    batches_.finish(std::current_exception());  // after the rows read before the failure
  }
}

bool ThreadedReader::next(Record& record) {
  if (!current_ || position_ >= current_->entries.size()) {
    if (current_) batches_.recycle(std::move(current_));
    auto next = batches_.pop();  // rethrows a failure of the reader, after the rows before it
    if (!next) return false;
    current_ = std::move(*next);
    position_ = 0;
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
