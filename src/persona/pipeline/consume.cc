#include "persona/pipeline/consume.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <csignal>
#include <thread>

#include "persona/core/error.h"
#include "persona/io/byte_source.h"
#include "persona/io/jsonl_reader.h"
#include "persona/io/mapping.h"
#include "persona/prep/cleaner.h"

namespace persona::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

// Duplicates are looked for among at least this many records before (a set that never forgets
// would grow without end on a stream).
constexpr size_t kDuplicateWindow = 1'000'000;
// Stored keys below the stream's watermarks are forgotten every this many batches.
constexpr int64_t kPruneEvery = 20;

std::vector<std::string> jsonl_keys(const SourceConfig& source, const std::vector<prep::RuleSpec>& rules) {
  std::vector<std::string> keys = source.mapping.columns_used();
  for (const auto& rule : rules)
    for (const auto& f : rule.fields) {
      const auto dot = f.find('.');
      const bool model = dot != std::string::npos && parse_entity(f.substr(0, dot));
      if (!model && std::find(keys.begin(), keys.end(), f) == keys.end()) keys.push_back(f);
    }
  return keys;
}

// Waits about `wait` (the stream cannot be reached), returning early when stopped.
void wait_for_stream(std::chrono::milliseconds wait, const std::atomic<bool>* stop) {
  const auto until = Clock::now() + wait;
  while (Clock::now() < until && !(stop && *stop)) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

// A record on one line (a JSON object spread over several, pretty-printed, is written on one);
// false, with the problem said, when it is blank or not JSON at all.
bool on_one_line(io::StreamEntry& e) {
  if (e.json.find_first_not_of(" \t\r\n") == std::string::npos) {
    e.problem = "an empty record";
    return false;
  }
  if (e.json.find('\n') == std::string::npos) return true;
  try {
    e.json = nlohmann::json::parse(e.json).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return true;
  } catch (const nlohmann::json::exception& x) {
    e.problem = fmt::format("not JSON: {}", x.what());
    return false;
  }
}

store::RejectRow malformed(const io::StreamEntry& e, int64_t line) {
  return {line, "malformed_entry", "", "", e.problem, e.json.substr(0, 4096), false};
}

// An acknowledgement lost (the stream's server went away) is harmless: the entries come again
// and are found stored.
void acknowledge(io::StreamSource& stream, const std::vector<store::StreamEntryKey>& keys) {
  try {
    stream.acknowledge(keys);
  } catch (const io::StreamUnavailable&) {
  }
}

void forget_below_watermarks(store::Store& store, io::StreamSource& stream) {
  try {
    for (const auto& mark : stream.watermarks()) store.prune_stream_entries(stream.name(), mark);
  } catch (const io::StreamUnavailable&) {  // next time
  }
}

int64_t lag_of(io::StreamSource& stream) {
  try {
    return stream.lag();
  } catch (const io::StreamUnavailable&) {
    return -1;
  }
}

}  // namespace

nlohmann::json ConsumeReport::to_json() const {
  return {{"source", source},
          {"stream", stream},
          {"ingest_id", ingest_id},
          {"entries", entries},
          {"already_stored", already_stored},
          {"batches", batches},
          {"records_kept", records_kept},
          {"rejected", rejected},
          {"lag", lag},
          {"trouble", trouble.empty() ? nlohmann::json() : nlohmann::json(trouble)},
          {"seconds", seconds},
          {"entries_per_s", seconds > 0 ? static_cast<double>(entries) / seconds : 0.0}};
}

ConsumeReport consume(store::Store& store, const SourceConfig& source, const std::vector<prep::RuleSpec>& rules,
                      io::StreamSource& stream, RejectLogWriter* rejects, const ConsumeOptions& options,
                      const std::function<void(const ConsumeReport&)>& progress) {
  const auto start = Clock::now();
  ConsumeReport report;
  report.source = source.mapping.name;
  report.stream = stream.name();
  const auto keys = jsonl_keys(source, rules);
  // One reader per batch, over the batch's entries as JSON Lines; the mapper and the cleaner
  // are the stream's, for its whole life (the cleaner's summary counts every batch).
  io::Mapper mapper(source.mapping, keys, stream.name());
  prep::Cleaner cleaner(rules, mapper, stream.name());
  if (cleaner.needs_first_pass())
    throw Error("outlier rules read their data twice, which a stream cannot", {source.mapping.name},
                "consume with a config whose rules for this source have no outlier rule");
  cleaner.remember_at_most(kDuplicateWindow);

  const std::string path = fmt::format("{} consumer {}", stream.name(), stream.consumer());
  const std::string identity = fmt::format("stream:{:016x}", XXH3_64bits(path.data(), path.size()));
  const auto ingest = store.begin_ingest(source.mapping.name, path, identity, source_fingerprint(source, rules));
  report.ingest_id = ingest.id;
  int64_t line = ingest.last_line;  // entries get the ingest's next line numbers (reject rows, events)
  auto last_entry = Clock::now(), last_progress = Clock::now();

  for (;;) {
    if (options.stop && *options.stop) break;
    std::vector<io::StreamEntry> entries;
    try {
      entries = stream.poll(options.batch, options.wait);
      report.trouble = stream.trouble();
    } catch (const io::StreamUnavailable& e) {
      report.trouble = e.what();
      wait_for_stream(options.wait, options.stop);
    }
    if (entries.empty()) {
      if (options.until_idle.count() > 0 && Clock::now() - last_entry >= options.until_idle) break;
    } else {
      last_entry = Clock::now();
      report.entries += static_cast<int64_t>(entries.size());
    }
    for (int attempt = 1;; ++attempt) {  // until stored: again without the entries another consumer stored first
      store::StreamEntries keys_of{stream.name(), {}};
      for (const auto& e : entries) keys_of.keys.push_back(e.key);
      const auto stored = store.stored_stream_entries(keys_of);
      std::vector<store::StreamEntryKey> done;
      std::vector<io::StreamEntry> fresh;
      for (size_t i = 0; i < entries.size(); ++i)
        (stored[i] ? done.push_back(entries[i].key) : fresh.push_back(std::move(entries[i])));
      report.already_stored += static_cast<int64_t>(done.size());
      acknowledge(stream, done);
      if (fresh.empty()) break;

      store::Batch batch;
      batch.stream.stream = stream.name();
      std::string lines;
      std::vector<int64_t> line_of;  // the ingest's line of each JSON line in `lines`
      const int64_t first_line = line + 1;  // fresh[i] is line first_line + i
      int64_t next = line;
      for (auto& e : fresh) {
        batch.stream.keys.push_back(e.key);
        ++next;
        if (!e.problem.empty() || !on_one_line(e)) {
          batch.rejects.push_back(malformed(e, next));
        } else {
          lines += e.json;
          lines += '\n';
          line_of.push_back(next);
        }
      }
      io::JsonlReader reader(io::ByteSource::from_memory(std::move(lines), stream.name()), keys,
                             source.mapping.csv.max_record_bytes);
      io::Record record;
      std::vector<io::FieldValue> values;
      for (size_t i = 0; reader.next(record); ++i) {
        record.line = line_of[std::min(i, line_of.size() - 1)];
        if (record.problem.empty()) mapper.map(record, values);
        else values.clear();
        const auto verdict = cleaner.apply(record, values);
        add_row(batch, record, values, verdict, mapper);
        report.records_kept += verdict.kept ? 1 : 0;
      }
      try {
        store.write_batch(ingest.id, batch, next);
      } catch (const store::StreamEntriesStored&) {
        // Another consumer stored some meanwhile: sort them out again. Each round finds more
        // stored, so only a store that says stored but then does not find them goes on and on.
        if (attempt == 100) throw;
        entries = std::move(fresh);
        continue;
      }
      line = next;
      ++report.batches;
      if (report.batches == options.die_after_commit) ::raise(SIGKILL);
      report.rejected += static_cast<int64_t>(batch.rejects.size());
      if (rejects)  // where each came from, as a file's rejects name the file (and the line)
        for (const auto& r : batch.rejects)
          rejects->write(source.mapping.name,
                         fmt::format("{} {}", stream.name(), stream.position(batch.stream.keys[static_cast<size_t>(r.line - first_line)])), r);
      acknowledge(stream, batch.stream.keys);  // only now: the batch is committed
      if (report.batches % kPruneEvery == 0) forget_below_watermarks(store, stream);
      break;
    }
    if (progress && Clock::now() - last_progress >= options.progress_every) {
      last_progress = Clock::now();
      report.lag = lag_of(stream);
      report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      progress(report);
    }
  }
  report.lag = lag_of(stream);
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (progress) progress(report);
  return report;
}

}  // namespace persona::pipeline
