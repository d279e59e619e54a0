#include "persona/pipeline/consume.h"
#include "persona/pipeline/feedback.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <csignal>
#include <thread>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <mutex>

#include "persona/core/error.h"
#include "persona/core/handoff.h"
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

std::vector<store::StreamEntryKey> watermarks_of(io::StreamSource& stream) {
  try {
    return stream.watermarks();
  } catch (const io::StreamUnavailable&) {
    return {};  // next time
  }
}

int64_t lag_of(io::StreamSource& stream) {
  try {
    return stream.lag();
  } catch (const io::StreamUnavailable&) {
    return -1;
  }
}

std::vector<prep::RuleSpec> stream_rules(const SourceConfig& source, const std::vector<prep::RuleSpec>& rules,
                                         const ConsumeOptions& options) {
  std::vector<prep::RuleSpec> kept;
  for (const auto& rule : rules) {
    if (rule.kind != "outlier") kept.push_back(rule);
    else if (!options.without_outlier_rules)
      throw Error(fmt::format("outlier rule \"{}\" needs the whole data before its first row, which a stream never has",
                              rule.label()),
                  {source.mapping.name},
                  "consume with --without-outlier-rules (the other rules run as for a file), or use a source without it");
  }
  return kept;
}


// One batch of entries on its way to the store: built (mapped, cleaned) on the caller's thread,
// written on the writer's, so that the store's inserts overlap with reading and cleaning the
// next batch (as a file ingest's BatchWriter does).
struct Job {
  store::Batch batch;          // every row the entries produced; batch.stream.keys[i] is entry i
  std::vector<int64_t> lines;  // entry i's line in the ingest (its rows carry it)
  std::vector<uint8_t> kept;   // entry i's record was kept by the rules
  int64_t last_line = 0;
  std::vector<store::StreamEntryKey> prune_below;  // the stream's watermarks: stored keys under them can go
};

// What the writer did with a job, for the caller to acknowledge and count.
struct Written {
  std::vector<store::StreamEntryKey> keys;  // every entry of the job: stored now or before
  int64_t already_stored = 0, kept = 0, rejected = 0;
  bool wrote = false;
};

// Drops the entries found stored (a restart's own pending entries, a claim's, another consumer's
// win of a race) with every event, text and reject row they produced. Their users and items stay:
// upserts of the same records, which change nothing when written again.
int64_t drop_stored(Job& job, const std::vector<bool>& stored) {
  absl::flat_hash_set<int64_t> dropped;
  size_t out = 0;
  for (size_t i = 0; i < stored.size(); ++i) {
    if (stored[i]) {
      dropped.insert(job.lines[i]);
      continue;
    }
    job.batch.stream.keys[out] = job.batch.stream.keys[i];
    job.lines[out] = job.lines[i];
    job.kept[out++] = job.kept[i];
  }
  if (dropped.empty()) return 0;
  job.batch.stream.keys.resize(out);
  job.lines.resize(out);
  job.kept.resize(out);
  auto gone = [&](const auto& row) { return dropped.contains(row.first); };
  std::erase_if(job.batch.events, gone);
  std::erase_if(job.batch.texts, gone);
  std::erase_if(job.batch.rejects, [&](const store::RejectRow& r) { return dropped.contains(r.line); });
  return static_cast<int64_t>(dropped.size());
}

class JobWriter {
 public:
  JobWriter(store::Store& store, int64_t ingest, const std::string& source, const io::StreamSource& stream,
            RejectLogWriter* rejects, int64_t die_after_commit)
      : store_(store), ingest_(ingest), source_(source), stream_(stream), rejects_(rejects), die_after_commit_(die_after_commit),
        feedback_(store) {
    worker_ = std::thread([this] { run(); });
  }
  ~JobWriter() {
    jobs_.finish();
    if (worker_.joinable()) worker_.join();
  }
  // Waits while a job is waiting (one being written, one waiting: memory stays bounded).
  void write(Job job) {
    {
      std::lock_guard lock(mutex_);
      ++in_flight_;
    }
    if (!jobs_.push(std::move(job))) rethrow();
  }
  // Jobs written since the last call, in order.
  std::vector<Written> take_written() {
    std::lock_guard lock(mutex_);
    if (error_) std::rethrow_exception(error_);
    std::vector<Written> out;
    out.swap(written_);
    return out;
  }
  bool busy() {
    std::lock_guard lock(mutex_);
    return in_flight_ > 0;
  }
  void close() {
    jobs_.finish();
    if (worker_.joinable()) worker_.join();
    rethrow();
  }

 private:
  void run() {
    try {
      while (auto job = jobs_.pop()) {
        auto done = store_job(*job);
        std::lock_guard lock(mutex_);
        written_.push_back(std::move(done));
        --in_flight_;
      }
    } catch (...) {
      std::lock_guard lock(mutex_);
      error_ = std::current_exception();
      jobs_.stop();  // the caller's next write() sees it
    }
  }
  void rethrow() {
    if (worker_.joinable()) {
      jobs_.finish();
      worker_.join();
    }
    std::lock_guard lock(mutex_);
    if (error_) std::rethrow_exception(error_);
  }
  Written store_job(Job& job) {
    Written w;
    w.keys = job.batch.stream.keys;
    // Feedback rows are stored once per request, item and kind whatever happens below: an entry
    // written again stores none twice, so they need no dropping.
    feedback_.stamp(job.batch.feedback);
    // The write checks, under the store's write lock, that none of the entries is stored; when some
    // are (a restart's own pending entries, a claim, a race), they are dropped and it goes again.
    for (int attempt = 1; !job.batch.stream.keys.empty(); ++attempt) {
      try {
        store_.write_batch(ingest_, job.batch, job.last_line);
        w.wrote = true;
        break;
      } catch (const store::StreamEntriesStored&) {
        if (attempt == 100) throw;
        w.already_stored += drop_stored(job, store_.stored_stream_entries(job.batch.stream));
      }
    }
    for (const auto& mark : job.prune_below) store_.prune_stream_entries(stream_.name(), mark);
    if (!w.wrote) return w;
    if (++batches_ == die_after_commit_) ::raise(SIGKILL);
    for (const uint8_t k : job.kept) w.kept += k;
    w.rejected = static_cast<int64_t>(job.batch.rejects.size());
    if (rejects_) {  // where each came from, as a file's rejects name the file (and the line)
      absl::flat_hash_map<int64_t, size_t> entry_of_line;
      for (size_t i = 0; i < job.lines.size(); ++i) entry_of_line[job.lines[i]] = i;
      for (const auto& r : job.batch.rejects)
        rejects_->write(source_, fmt::format("{} {}", stream_.name(), stream_.position(job.batch.stream.keys[entry_of_line.at(r.line)])), r);
    }
    return w;
  }

  store::Store& store_;
  const int64_t ingest_;
  const std::string source_;
  const io::StreamSource& stream_;  // its name and positions only: the caller's thread reads and acknowledges
  RejectLogWriter* rejects_;
  const int64_t die_after_commit_;
  FeedbackStamper feedback_;
  int64_t batches_ = 0;
  Handoff<Job> jobs_{1};
  std::mutex mutex_;
  std::vector<Written> written_;
  int64_t in_flight_ = 0;
  std::exception_ptr error_;
  std::thread worker_;
};

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
          {"active_seconds", active_seconds},
          {"entries_per_s", active_seconds > 0 ? static_cast<double>(entries) / active_seconds : 0.0}};
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
  prep::Cleaner cleaner(stream_rules(source, rules, options), mapper, stream.name());
  cleaner.remember_at_most(kDuplicateWindow);

  const std::string path = fmt::format("{} consumer {}", stream.name(), stream.consumer());
  const std::string identity = fmt::format("stream:{:016x}", XXH3_64bits(path.data(), path.size()));
  const auto ingest = store.begin_ingest(source.mapping.name, path, identity, source_fingerprint(source, rules));
  report.ingest_id = ingest.id;
  int64_t line = ingest.last_line;  // entries get the ingest's next line numbers (reject rows, events)
  auto last_entry = Clock::now(), last_progress = Clock::now();

  // Entries as JSON Lines through a reader, the source's mapper and the cleaner, as a file's
  // lines are; each entry gets the ingest's next line number.
  auto build_job = [&](std::vector<io::StreamEntry>& entries, int64_t line_before) {
    Job job;
    job.batch.stream.stream = stream.name();
    job.kept.assign(entries.size(), 0);
    std::string lines;
    std::vector<size_t> entry_of;  // the entry of each JSON line in `lines`
    for (size_t i = 0; i < entries.size(); ++i) {
      auto& e = entries[i];
      const int64_t line_no = line_before + 1 + static_cast<int64_t>(i);
      job.batch.stream.keys.push_back(e.key);
      job.lines.push_back(line_no);
      if (!e.problem.empty() || !on_one_line(e)) {
        job.batch.rejects.push_back(malformed(e, line_no));
      } else {
        lines += e.json;
        lines += '\n';
        entry_of.push_back(i);
      }
    }
    job.last_line = line_before + static_cast<int64_t>(entries.size());
    io::JsonlReader reader(io::ByteSource::from_memory(std::move(lines), stream.name()), keys,
                           source.mapping.csv.max_record_bytes);
    io::Record record;
    std::vector<io::FieldValue> values;
    for (size_t n = 0; reader.next(record); ++n) {
      const size_t i = entry_of[std::min(n, entry_of.size() - 1)];
      record.line = job.lines[i];
      if (record.problem.empty()) mapper.map(record, values);
      else values.clear();
      const auto verdict = cleaner.apply(record, values);
      add_row(job.batch, record, values, verdict, mapper);
      job.kept[i] = verdict.kept ? 1 : 0;
    }
    // In the stream's order, however the entries were rejected (before reading, or by a rule).
    std::stable_sort(job.batch.rejects.begin(), job.batch.rejects.end(),
                     [](const store::RejectRow& a, const store::RejectRow& b) { return a.line < b.line; });
    return job;
  };

  JobWriter writer(store, ingest.id, source.mapping.name, stream, rejects, options.die_after_commit);
  // Acknowledges what the writer committed (only now: acknowledging is the stream's, on this thread).
  auto absorb = [&] {
    for (auto& w : writer.take_written()) {
      acknowledge(stream, w.keys);
      report.already_stored += w.already_stored;
      report.records_kept += w.kept;
      report.rejected += w.rejected;
      if (w.wrote) {
        ++report.batches;
        report.active_seconds = std::chrono::duration<double>(Clock::now() - start).count();
      }
    }
  };
  int64_t jobs = 0;
  for (;;) {
    absorb();
    if (options.stop && *options.stop) break;
    // While a batch is being written, short polls: its acknowledgement should not wait for entries.
    const bool writing = writer.busy();
    const auto wait = writing ? std::min(options.wait, std::chrono::milliseconds(5)) : options.wait;
    std::vector<io::StreamEntry> entries;
    try {
      entries = stream.poll(options.batch, wait);
      report.trouble = stream.trouble();
    } catch (const io::StreamUnavailable& e) {
      report.trouble = e.what();
      wait_for_stream(options.wait, options.stop);
    }
    if (entries.empty()) {
      if (!writing && options.until_idle.count() > 0 && Clock::now() - last_entry >= options.until_idle) break;
    } else {
      last_entry = Clock::now();
      report.entries += static_cast<int64_t>(entries.size());
      Job job = build_job(entries, line);
      line = job.last_line;
      if (++jobs % kPruneEvery == 0) job.prune_below = watermarks_of(stream);
      writer.write(std::move(job));
    }
    if (progress && Clock::now() - last_progress >= options.progress_every) {
      last_progress = Clock::now();
      report.lag = lag_of(stream);
      report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      progress(report);
    }
  }
  writer.close();
  absorb();
  report.lag = lag_of(stream);
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (progress) progress(report);
  return report;
}

}  // namespace persona::pipeline
