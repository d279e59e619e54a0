#include "persona/pipeline/consume.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <thread>

#include "persona/core/error.h"
#include "persona/io/byte_source.h"
#include "persona/io/jsonl_reader.h"
#include "persona/io/mapping.h"
#include "persona/prep/cleaner.h"

namespace persona::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

// Exact duplicates are looked for among this many records before (a set that never forgets
// would grow without end on a stream).
constexpr int64_t kDuplicateWindow = 1'000'000;
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

store::RejectRow malformed(const io::StreamEntry& e, int64_t line) {
  return {line, "malformed_entry", "", fmt::format("{}-{}", e.key.hi, e.key.lo), e.problem, e.json.substr(0, 4096), false};
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
  const bool exact_duplicates =
      std::any_of(rules.begin(), rules.end(), [](const prep::RuleSpec& r) { return r.kind == "exact_duplicate"; });
  prep::ExactDuplicates seen;
  int64_t seen_count = 0;

  const std::string path = fmt::format("{} consumer {}", stream.name(), stream.consumer());
  const std::string identity = fmt::format("stream:{:016x}", XXH3_64bits(path.data(), path.size()));
  const auto ingest = store.begin_ingest(source.mapping.name, path, identity, source_fingerprint(source, rules));
  report.ingest_id = ingest.id;
  int64_t line = ingest.last_line;  // entries get the ingest's next line numbers (reject rows, events)
  auto last_entry = Clock::now(), last_progress = Clock::now();

  for (;;) {
    if (options.stop && *options.stop) break;
    auto entries = stream.poll(options.batch, options.wait);
    if (entries.empty()) {
      if (options.until_idle.count() > 0 && Clock::now() - last_entry >= options.until_idle) break;
    } else {
      last_entry = Clock::now();
      report.entries += static_cast<int64_t>(entries.size());
    }
    for (;;) {  // until the batch is stored: again without the entries another consumer stored first
      store::StreamEntries keys_of{stream.name(), {}};
      for (const auto& e : entries) keys_of.keys.push_back(e.key);
      const auto stored = store.stored_stream_entries(keys_of);
      std::vector<store::StreamEntryKey> done;
      std::vector<io::StreamEntry> fresh;
      for (size_t i = 0; i < entries.size(); ++i)
        (stored[i] ? done.push_back(entries[i].key) : fresh.push_back(std::move(entries[i])));
      report.already_stored += static_cast<int64_t>(done.size());
      stream.acknowledge(done);
      if (fresh.empty()) break;

      store::Batch batch;
      batch.stream.stream = stream.name();
      std::string lines;
      std::vector<int64_t> line_of;  // the ingest's line of each JSON line in `lines`
      int64_t next = line;
      for (const auto& e : fresh) {
        batch.stream.keys.push_back(e.key);
        ++next;
        if (!e.problem.empty() || e.json.find('\n') != std::string::npos) {
          auto bad = e;
          if (bad.problem.empty()) bad.problem = "a record spans lines";
          batch.rejects.push_back(malformed(bad, next));
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
        if (exact_duplicates) {
          if (++seen_count % kDuplicateWindow == 0) seen.clear();
          record.duplicate = seen.seen_before(record) ? 1 : 0;
        }
        if (record.problem.empty()) mapper.map(record, values);
        else values.clear();
        const auto verdict = cleaner.apply(record, values);
        add_row(batch, record, values, verdict, mapper);
        report.records_kept += verdict.kept ? 1 : 0;
      }
      try {
        store.write_batch(ingest.id, batch, next);
      } catch (const store::StreamEntriesStored&) {
        entries = std::move(fresh);  // another consumer stored some meanwhile: sort them out again
        continue;
      }
      line = next;
      ++report.batches;
      report.rejected += static_cast<int64_t>(batch.rejects.size());
      if (rejects)
        for (const auto& r : batch.rejects) rejects->write(source.mapping.name, stream.name(), r);
      stream.acknowledge(batch.stream.keys);  // only now: the batch is committed
      if (report.batches % kPruneEvery == 0)
        for (const auto& mark : stream.watermarks()) store.prune_stream_entries(stream.name(), mark);
      break;
    }
    if (progress && Clock::now() - last_progress >= options.progress_every) {
      last_progress = Clock::now();
      report.lag = stream.lag();
      report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      progress(report);
    }
  }
  report.lag = stream.lag();
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (progress) progress(report);
  return report;
}

}  // namespace persona::pipeline
