#pragma once
// persona consume: a live stream (io/stream_source.h) into the store with a source's mapping and
// cleaning rules, as a file is ingested, and every entry stored exactly once: each batch is
// written with its entries' keys in one transaction (Store::write_batch), acknowledged only
// after; entries delivered again are found stored and only acknowledged.
// The stream's server may go away and come back: the consumer waits (trouble says why) and reads
// on; unacknowledged entries come again and are found stored.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

#include <nlohmann/json.hpp>

#include "persona/io/stream_source.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/run.h"

namespace persona::pipeline {

struct ConsumeOptions {
  size_t batch = 50000;                          // entries per transaction, at most (fewer when fewer are waiting)
  std::chrono::milliseconds wait{1000};          // a poll waits this long for entries
  std::chrono::milliseconds until_idle{0};       // stop after this long without entries (0: never)
  std::chrono::milliseconds progress_every{5000};
  const std::atomic<bool>* stop = nullptr;       // set (SIGTERM): the batch in hand is stored, then it returns
  // For the crash tests: the process kills itself (SIGKILL) once this batch is committed and
  // before it is acknowledged, the moment exactly-once is about (0: never).
  int64_t die_after_commit = 0;
  // Outlier rules need the whole data first, which a stream never has: they are refused, unless
  // this says to run without them.
  bool without_outlier_rules = false;
};

struct ConsumeReport {
  std::string source, stream;
  int64_t ingest_id = 0;
  int64_t entries = 0;         // delivered
  int64_t already_stored = 0;  // delivered again, found stored: acknowledged only
  int64_t batches = 0, records_kept = 0, rejected = 0;
  int64_t lag = -1;            // entries not yet delivered to the group (-1: unknown)
  std::string trouble;         // what keeps entries from coming just now (empty: nothing)
  double seconds = 0;
  double active_seconds = 0;   // from the start to the last batch stored (without the idle wait at the end)
  nlohmann::json to_json() const;
};

// Runs until stopped, idle for options.until_idle, or an error the stream cannot recover from.
// `progress` is called every options.progress_every and at the end.
ConsumeReport consume(store::Store& store, const SourceConfig& source, const std::vector<prep::RuleSpec>& rules,
                      io::StreamSource& stream, RejectLogWriter* rejects, const ConsumeOptions& options,
                      const std::function<void(const ConsumeReport&)>& progress = {});

}  // namespace persona::pipeline
