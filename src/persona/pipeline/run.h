#pragma once
// Runs sources through the stages of the foundation: read -> map -> clean -> (store | file).
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/io/mapping.h"
#include "persona/io/record.h"
#include "persona/pipeline/config.h"
#include "persona/prep/cleaner.h"

namespace persona::store::pg {
class Connection;
}
#include "persona/store/store.h"

namespace persona::pipeline {

struct RunOptions {
  bool progress = true;  // a progress line on a terminal (never when stderr is not one)
  double min_kept_share = 0;  // ingest: see Config::min_kept_share
  bool bulk = false;          // ingest: a backfill (Store::begin_bulk_load)
};

struct SourceReport {
  std::string source, path, status;  // status: cleaned | ingested | resumed | already ingested | failed
  std::string failure;               // why it failed: kept too little, with the commonest reason
  prep::CleanSummary summary;
  std::vector<std::pair<std::string, std::pair<double, double>>> outlier_bounds;
  double seconds = 0;
  uint64_t file_bytes = 0;
  int64_t ingest_id = 0;
  nlohmann::json to_json() const;
};

// Opens the reader a source needs (CSV/TSV or JSON Lines, gzip or not).
std::unique_ptr<io::RecordReader> open_reader(const SourceConfig& source, const std::vector<prep::RuleSpec>& rules);

using RowCallback = std::function<void(const io::Record& record, std::vector<io::FieldValue>& values,
                                       const prep::RowVerdict& verdict, io::Mapper& mapper)>;

// Streams one source through mapping and cleaning, calling `on_row` for every row with its
// verdict. Outlier rules make it read the source twice (bounds first).
SourceReport run_source(const SourceConfig& source, const std::vector<prep::RuleSpec>& rules, const RowCallback& on_row,
                        const RunOptions& options);

// Writes reject-log lines: {"source","file","line","rule","field","value","reason","row"}.
class RejectLogWriter {
 public:
  RejectLogWriter() = default;
  explicit RejectLogWriter(const std::string& path, bool append = false);
  ~RejectLogWriter();
  RejectLogWriter(const RejectLogWriter&) = delete;
  RejectLogWriter& operator=(const RejectLogWriter&) = delete;
  void write(std::string_view source, std::string_view file, const store::RejectRow& row);
  // The same line straight from a verdict and the record's bytes, without copying them first.
  void write(std::string_view source, std::string_view file, int64_t line, const prep::RowVerdict& verdict,
             std::string_view raw);
  bool open() const { return file_ != nullptr; }
  // Flushes and closes; throws when the bytes could not all be written (a full disk).
  void close();
  uint64_t lines() const { return lines_; }

 private:
  std::FILE* file_ = nullptr;
  std::string path_, buffer_;
  uint64_t lines_ = 0;
};

// A row as the reject log keeps it (PII redacted).
store::RejectRow reject_row(const io::Record& record, const prep::RowVerdict& verdict);
// What one read row adds to a batch: its mapped records when kept, its reject row when removed
// or flagged.
void add_row(store::Batch& batch, const io::Record& record, const std::vector<io::FieldValue>& values,
             const prep::RowVerdict& verdict, const io::Mapper& mapper);

// persona clean: no store; kept rows optionally written to a CSV with the source's columns.
SourceReport clean_source(const SourceConfig& source, const std::vector<prep::RuleSpec>& rules,
                          const std::string& kept_csv, RejectLogWriter* rejects, const RunOptions& options);

// persona ingest: every source of the config into the store, resumable and idempotent.
struct IngestReport {
  std::string store_path, reject_log;
  std::vector<SourceReport> sources;
  nlohmann::json normalisers = nlohmann::json::object();
  nlohmann::json to_json() const;
  bool failed() const;  // some source failed
};
IngestReport ingest(const Config& config, store::Store& store, const RunOptions& options);
SourceReport ingest_source(store::Store& store, const SourceConfig& source, const std::vector<prep::RuleSpec>& rules,
                           size_t batch_rows, RejectLogWriter* rejects, const RunOptions& options);

// One `persona ingest` at a time per store: an advisory lock (flock) on <store>.ingest.lock that
// holds the writer's pid, released when the process ends however it ends. The store is correct
// under concurrent writers too (the server writes beside an ingest), but two runs of one file
// would both claim its checkpoint; a second ingest stops at once with "another ingest is writing
// to this store (pid N)". On PostgreSQL the lock is a session advisory lock held by a
// connection of its own (any host), named with the pid in its application_name.
class IngestLock {
 public:
  explicit IngestLock(const std::string& store_location);
  ~IngestLock();
  IngestLock(const IngestLock&) = delete;
  IngestLock& operator=(const IngestLock&) = delete;

 private:
  int fd_ = -1;
  std::unique_ptr<store::pg::Connection> pg_;
};

// A reject log written from a store, registered with its exports (pipeline/erasure.h) so that an
// erasure reaches every one (persona ingest registers the log it writes).
void register_reject_log(store::Store& store, const std::string& path);

// Fits the config's [[normalise]] entries on the store's data and saves them with it.
nlohmann::json fit_normalisers(const Config& config, store::Store& store);

// XXH3-128 of a file's bytes, as 32 hex digits.
std::string file_content_hash(const std::string& path);

}  // namespace persona::pipeline
