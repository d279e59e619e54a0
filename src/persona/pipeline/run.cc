#include "persona/pipeline/run.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <xxhash.h>

#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/core/handoff.h"
#include "persona/core/progress.h"
#include "persona/io/csv_reader.h"
#include "persona/io/input.h"
#include "persona/io/jsonl_reader.h"
#include "persona/io/threaded_reader.h"
#include "persona/pipeline/erasure.h"
#include "persona/pipeline/feedback.h"
#include "persona/prep/normaliser.h"
#include "persona/privacy/pii.h"
#include "persona/store/pg_client.h"

namespace persona::pipeline {

nlohmann::json SourceReport::to_json() const {
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& r : summary.rules) {
    nlohmann::json j = {{"rule", r.rule}, {"removed", r.removed}};
    if (r.changed) j["changed"] = r.changed;
    if (r.flagged) j["flagged"] = r.flagged;
    rules.push_back(j);
  }
  nlohmann::json j = {{"source", source},
                      {"path", path},
                      {"status", status},
                      {"rows_read", summary.rows_read},
                      {"rows_kept", summary.rows_kept},
                      {"rows_removed", summary.rows_removed},
                      {"rules", rules},
                      {"seconds", seconds},
                      {"file_bytes", file_bytes}};
  if (ingest_id) j["ingest"] = ingest_id;
  if (!failure.empty()) j["failure"] = failure;
  for (const auto& [rule, b] : outlier_bounds) j["outlier_bounds"][rule] = {b.first, b.second};
  return j;
}

nlohmann::json IngestReport::to_json() const {
  nlohmann::json j = {{"store", store_path}, {"reject_log", reject_log}, {"sources", nlohmann::json::array()}};
  for (const auto& s : sources) j["sources"].push_back(s.to_json());
  if (!normalisers.empty()) j["normalisers"] = normalisers;
  return j;
}

bool IngestReport::failed() const {
  return std::any_of(sources.begin(), sources.end(), [](const SourceReport& s) { return s.status == "failed"; });
}

std::unique_ptr<io::RecordReader> open_reader(const SourceConfig& source, const std::vector<prep::RuleSpec>& rules) {
  const auto& m = source.mapping;
  // Three stages on their own threads: gzip decompression (ByteSource read-ahead), parsing with
  // the exact-duplicate check (which needs only the record, and is the costliest rule on large
  // files), and mapping + cleaning on the caller's thread.
  io::ThreadedReader::Hook hook;
  if (std::any_of(rules.begin(), rules.end(), [](const prep::RuleSpec& r) { return r.kind == "exact_duplicate"; })) {
    auto seen = std::make_shared<prep::ExactDuplicates>();
    hook = [seen](io::Record& r) { r.duplicate = seen->seen_before(r) ? 1 : 0; };
  }
  if (m.format != io::Format::Jsonl)
    return std::make_unique<io::ThreadedReader>(
        std::make_unique<io::CsvReader>(io::ByteSource::open_file(m.path, m.encoding), m.csv), hook);
  std::vector<std::string> keys = m.columns_used();
  for (const auto& rule : rules)
    for (const auto& f : rule.fields) {
      const auto dot = f.find('.');
      const bool model = dot != std::string::npos && parse_entity(f.substr(0, dot));
      if (!model && std::find(keys.begin(), keys.end(), f) == keys.end()) keys.push_back(f);
    }
  return std::make_unique<io::ThreadedReader>(
      std::make_unique<io::JsonlReader>(io::ByteSource::open_file(m.path, m.encoding), keys, m.csv.max_record_bytes), hook);
}

SourceReport run_source(const SourceConfig& source, const std::vector<prep::RuleSpec>& rules, const RowCallback& on_row,
                        const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  SourceReport report;
  report.source = source.mapping.name;
  report.path = source.mapping.path;

  auto reader = open_reader(source, rules);
  if (reader->columns().empty() && source.mapping.csv.header && source.mapping.format != io::Format::Jsonl)
    throw Error("the file is empty: no header line", {source.mapping.path},
                "a CSV source needs a header line, or header = false");
  io::Mapper mapper(source.mapping, reader->columns(), source.mapping.path);
  prep::Cleaner cleaner(rules, mapper, source.mapping.path);
  io::Record record;
  std::vector<io::FieldValue> values;
  report.file_bytes = reader->file_bytes();

  if (cleaner.needs_first_pass()) {
    Progress progress(fmt::format("{} (outlier bounds)", report.source), report.file_bytes, "B", options.progress);
    while (reader->next(record)) {
      if (record.problem.empty()) mapper.map(record, values);
      cleaner.observe(record, values);
      progress.update(reader->compressed_bytes_read());
    }
    cleaner.end_first_pass();
    reader = open_reader(source, rules);
  }

  Progress progress(report.source, report.file_bytes, "B", options.progress);
  uint64_t rows = 0;
  while (reader->next(record)) {
    if (record.problem.empty()) mapper.map(record, values);
    else values.clear();
    const prep::RowVerdict verdict = cleaner.apply(record, values);
    on_row(record, values, verdict, mapper);
    if ((++rows & 0xFFF) == 0) progress.update(reader->compressed_bytes_read(), rows);
  }
  progress.update(report.file_bytes, rows);
  progress.finish();
  report.summary = cleaner.summary();
  report.outlier_bounds = cleaner.outlier_bounds();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

// ---- reject log -------------------------------------------------------------------------------

RejectLogWriter::RejectLogWriter(const std::string& path, bool append) : path_(path) {
  file_ = std::fopen(path.c_str(), append ? "ab" : "wb");
  if (!file_) throw Error(fmt::format("cannot write the reject log: {}", std::strerror(errno)), {path});
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);  // one write per MiB, not per 4 KiB
}

RejectLogWriter::~RejectLogWriter() {
  if (file_) std::fclose(file_);
}

void RejectLogWriter::close() {
  if (!file_) return;
  const bool ok = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!ok) throw Error(fmt::format("cannot finish writing the reject log: {}", std::strerror(errno)), {path_});
}

namespace {
// JSON string escaping for the reject log. Written by hand because this runs for every rejected
// row (hundreds of thousands on real logs) and a JSON DOM per line costs more than the cleaning;
// invalid UTF-8 bytes (which a rejected row may well contain) become U+FFFD.
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    size_t run = i;  // copy runs of plain ASCII in one go
    while (run < s.size() && static_cast<unsigned char>(s[run]) >= 0x20 && static_cast<unsigned char>(s[run]) < 0x7f &&
           s[run] != '"' && s[run] != '\\')
      ++run;
    if (run > i) {
      out.append(s.data() + i, run - i);
      i = run;
      if (i >= s.size()) break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\u{:04x}", c);
    else if (c < 0x80) out += static_cast<char>(c);
    else {
      // Validate one UTF-8 sequence.
      const int n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
      bool ok = n > 0 && i + n <= s.size();
      for (int k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
      if (ok && n == 3) {
        const auto c1 = static_cast<unsigned char>(s[i + 1]);
        ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
      }
      if (ok && n == 4) {
        const auto c1 = static_cast<unsigned char>(s[i + 1]);
        ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
      }
      if (ok) {
        out.append(s.data() + i, n);
        i += n - 1;
      } else {
        out += "\xEF\xBF\xBD";
      }
    }
  }
  out += '"';
}
}  // namespace

void RejectLogWriter::write(std::string_view source, std::string_view file, const store::RejectRow& row) {
  prep::RowVerdict verdict;
  verdict.flagged = row.flagged;
  verdict.rule = row.rule;
  verdict.field = row.field;
  verdict.value = row.value;
  verdict.reason = row.reason;
  write(source, file, row.line, verdict, row.raw);
}

void RejectLogWriter::write(std::string_view source, std::string_view file, int64_t line, const prep::RowVerdict& row,
                            std::string_view raw) {
  if (!file_) return;
  buffer_.clear();
  buffer_ += "{\"source\":";
  append_json_string(buffer_, source);
  buffer_ += ",\"file\":";
  append_json_string(buffer_, file);
  buffer_ += ",\"line\":";
  buffer_ += std::to_string(line);
  buffer_ += ",\"rule\":";
  append_json_string(buffer_, row.rule);
  if (row.flagged) buffer_ += ",\"action\":\"flagged\"";
  if (!row.field.empty()) {
    buffer_ += ",\"field\":";
    append_json_string(buffer_, row.field);
    buffer_ += ",\"value\":";
    append_json_string(buffer_, privacy::redact_pii(row.value));
  }
  buffer_ += ",\"reason\":";
  append_json_string(buffer_, row.reason);
  buffer_ += ",\"row\":";
  append_json_string(buffer_, privacy::redact_pii(raw));
  buffer_ += "}\n";
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size())
    throw Error(fmt::format("cannot write the reject log: {}", std::strerror(errno)), {path_});
  ++lines_;
}

// ---- clean ------------------------------------------------------------------------------------

namespace {
void append_csv_field(std::string& out, std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(field);
    return;
  }
  out += '"';
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

}  // namespace

// The reject log keeps the row for whoever fixes the data, but never a person's PII in clear.
store::RejectRow reject_row(const io::Record& record, const prep::RowVerdict& verdict) {
  return {record.line,    verdict.rule, verdict.field, privacy::redact_pii(verdict.value), verdict.reason,
          privacy::redact_pii(record.raw), verdict.flagged};
}

void add_row(store::Batch& batch, const io::Record& record, const std::vector<io::FieldValue>& values,
             const prep::RowVerdict& verdict, const io::Mapper& mapper) {
  if (!verdict.kept || verdict.flagged) batch.rejects.push_back(reject_row(record, verdict));
  if (!verdict.kept) return;
  io::MappedRecords r = mapper.build(values);
  if (r.user) batch.users.push_back(std::move(*r.user));
  if (r.item) batch.items.push_back(std::move(*r.item));
  if (r.event) batch.events.emplace_back(record.line, std::move(*r.event));
  if (r.text) {
    r.text->body = privacy::redact_pii(r.text->body);  // texts are stored for analytics: no PII
    batch.texts.emplace_back(record.line, std::move(*r.text));
  }
  if (r.feedback) batch.feedback.push_back(std::move(*r.feedback));
}

SourceReport clean_source(const SourceConfig& source, const std::vector<prep::RuleSpec>& rules,
                          const std::string& kept_csv, RejectLogWriter* rejects, const RunOptions& options) {
  std::FILE* out = nullptr;
  std::string line;
  bool header_written = false;
  if (!kept_csv.empty()) {
    out = std::fopen(kept_csv.c_str(), "wb");
    if (!out) throw Error(fmt::format("cannot write: {}", std::strerror(errno)), {kept_csv});
  }
  auto on_row = [&](const io::Record& record, std::vector<io::FieldValue>&, const prep::RowVerdict& verdict,
                    io::Mapper& mapper) {
    if ((!verdict.kept || verdict.flagged) && rejects) rejects->write(source.mapping.name, source.mapping.path, record.line, verdict, record.raw);
    if (!verdict.kept || !out) return;
    line.clear();
    if (!header_written) {
      for (size_t i = 0; i < mapper.columns().size(); ++i) {
        if (i) line += ',';
        append_csv_field(line, mapper.columns()[i]);
      }
      line += '\n';
      header_written = true;
    }
    for (size_t i = 0; i < record.fields.size(); ++i) {
      if (i) line += ',';
      append_csv_field(line, record.fields[i]);
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), out);
  };
  SourceReport report;
  try {
    report = run_source(source, rules, on_row, options);
  } catch (...) {
    if (out) std::fclose(out);
    throw;
  }
  if (out && std::fclose(out) != 0) throw Error("cannot finish writing the cleaned file", {kept_csv});
  report.status = "cleaned";
  return report;
}

// ---- ingest -----------------------------------------------------------------------------------

std::string file_content_hash(const std::string& path) { return io::input_content_hash(path); }

namespace {
// Writes batches to the store on a thread of its own, so that SQLite's inserts overlap with
// reading and cleaning the next batch. Batches are written in order, each in its own
// transaction with its checkpoint, exactly as they would be on the caller's thread.
class BatchWriter {
 public:
  BatchWriter(store::Store& store, int64_t ingest) : store_(store), ingest_(ingest), feedback_(store) {
    worker_ = std::thread([this] { run(); });
  }
  ~BatchWriter() {  // on an error of the caller's: stop after the batch being written
    queue_.finish();
    if (worker_.joinable()) worker_.join();
  }
  void write(store::Batch batch, int64_t last_line) {
    if (!queue_.push({std::move(batch), last_line})) rethrow();
  }
  // Waits for every batch to be written; throws the writer's error, if it had one.
  void close() {
    queue_.finish();
    worker_.join();
    rethrow();
  }

 private:
  struct Pending {
    store::Batch batch;
    int64_t last_line = 0;
  };
  void run() {
    try {
      while (auto pending = queue_.pop()) {
        feedback_.stamp(pending->batch.feedback);
        store_.write_batch(ingest_, pending->batch, pending->last_line);
      }
    } catch (...) {
      error_ = std::current_exception();
      queue_.stop();  // the caller's next write() sees it
    }
  }
  void rethrow() {
    if (worker_.joinable()) {
      queue_.finish();
      worker_.join();
    }
    if (error_) std::rethrow_exception(error_);
  }

  store::Store& store_;
  int64_t ingest_;
  FeedbackStamper feedback_;
  Handoff<Pending> queue_{2};
  std::thread worker_;
  std::exception_ptr error_;
};
}  // namespace

// Why a source that read rows kept too few of them ("" when it kept enough): the share kept, the
// rule that removed the most, and its first row (line, field, value, reason) so the cause shows
// at once, e.g. format = "unix" on ISO timestamps. `first_removed`: each rule's first removed row,
// kept while the rows went by (the store's reject table is not read again for it).
std::string kept_too_little(const std::map<std::string, store::RejectRow>& first_removed,
                            const prep::CleanSummary& summary, double min_share) {
  if (summary.rows_read == 0) return {};
  const double share = static_cast<double>(summary.rows_kept) / static_cast<double>(summary.rows_read);
  if (summary.rows_kept > 0 && share >= min_share) return {};
  std::string why = summary.rows_kept == 0
                        ? fmt::format("kept none of the {} rows read", summary.rows_read)
                        : fmt::format("kept {} of {} rows ({:.1f}%), below [ingest] min_kept_share = {}", summary.rows_kept,
                                      summary.rows_read, 100 * share, min_share);
  const prep::RuleCount* top = nullptr;
  for (const auto& r : summary.rules)
    if (r.removed > 0 && (!top || r.removed > top->removed)) top = &r;
  if (!top) return why;
  why += fmt::format("; {} removed {}", top->rule, top->removed);
  if (const auto it = first_removed.find(top->rule); it != first_removed.end())
    why += fmt::format(", e.g. line {}: \"{}\": {}", it->second.line, json_excerpt(nlohmann::json(it->second.value), 80),
                       it->second.reason);
  return why;
}

SourceReport ingest_source(store::Store& store, const SourceConfig& source, const std::vector<prep::RuleSpec>& rules,
                           size_t batch_rows, RejectLogWriter* rejects, const RunOptions& options) {
  const std::string hash = file_content_hash(source.mapping.path);
  const store::IngestRecord ingest =
      store.begin_ingest(source.mapping.name, source.mapping.path, hash, source_fingerprint(source, rules));
  if (ingest.status == "complete") {
    SourceReport report;
    report.source = source.mapping.name;
    report.path = source.mapping.path;
    report.status = "already ingested";
    report.ingest_id = ingest.id;
    return report;
  }
  // A run that was killed left everything up to last_line in the store. Every row is read again
  // (duplicate detection needs to see them) but only later rows are written.
  const int64_t resume_after = ingest.last_line;
  BatchWriter writer(store, ingest.id);
  store::Batch batch;
  int64_t last_line = resume_after;
  size_t rows_in_batch = 0;
  auto flush = [&] {
    writer.write(std::move(batch), last_line);
    batch = store::Batch();
    rows_in_batch = 0;
  };
  std::map<std::string, store::RejectRow> first_removed;  // per rule, for the message of a failed run
  auto on_row = [&](const io::Record& record, std::vector<io::FieldValue>& values, const prep::RowVerdict& verdict,
                    io::Mapper& mapper) {
    if (!verdict.kept && !first_removed.count(verdict.rule)) first_removed.emplace(verdict.rule, reject_row(record, verdict));
    if (record.line <= resume_after) return;
    add_row(batch, record, values, verdict, mapper);
    last_line = record.line;
    if (++rows_in_batch >= batch_rows) flush();
  };
  SourceReport report = run_source(source, rules, on_row, options);
  flush();
  writer.close();
  report.ingest_id = ingest.id;
  report.failure = kept_too_little(first_removed, report.summary, options.min_kept_share);
  if (!report.failure.empty()) {
    // Not recorded as done: a run with a fixed mapping reads the file again.
    report.status = "failed";
    store.fail_ingest(ingest.id, report.to_json());
  } else {
    report.status = ingest.resumed ? "resumed" : "ingested";
    store.finish_ingest(ingest.id, report.to_json());
  }
  if (rejects)
    store.for_each_reject(ingest.id, [&](const store::RejectRow& row) { rejects->write(source.mapping.name, source.mapping.path, row); });
  return report;
}

IngestLock::IngestLock(const std::string& store_path) {
  if (store::is_postgres_location(store_path)) {
    // "ingest" in ASCII: another key than the store's write lock.
    constexpr const char* kKey = "110410488902516";
    const std::string host = [] {
      char name[256] = {};
      return ::gethostname(name, sizeof name - 1) == 0 ? std::string(name) : std::string("?");
    }();
    pg_ = std::make_unique<store::pg::Connection>(store_path);
    pg_->exec("SET application_name = " + pg_->literal(fmt::format("persona ingest pid {} on {}", ::getpid(), host)));
    if (pg_->exec(fmt::format("SELECT pg_try_advisory_lock({})", kKey)).text(0, 0) == "t") return;
    const auto holder = pg_->exec(fmt::format(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid=l.pid WHERE l.locktype='advisory' "
        "AND l.granted AND l.database=(SELECT oid FROM pg_database WHERE datname=current_database()) "
        "AND ((l.classid::bigint << 32) | l.objid::bigint) = {}",
        kKey));
    throw Error(fmt::format("another ingest is writing to this store{}",
                            holder.rows() ? fmt::format(" ({})", holder.text(0, 0).substr(std::string("persona ingest ").size()))
                                          : ""),
                {store::printable_location(store_path)}, "wait for it to finish: ingests of one store run one at a time");
  }
  const std::string path = store_path + ".ingest.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(fmt::format("cannot open the ingest lock: {}", std::strerror(errno)), {path});
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    const ssize_t n = ::pread(fd_, pid, sizeof pid - 1, 0);
    ::close(fd_);
    fd_ = -1;
    std::string holder = n > 0 ? std::string(pid, static_cast<size_t>(n)) : std::string();
    holder.erase(std::remove_if(holder.begin(), holder.end(), [](char c) { return c < '0' || c > '9'; }), holder.end());
    throw Error(fmt::format("another ingest is writing to this store{}", holder.empty() ? "" : fmt::format(" (pid {})", holder)),
                {store_path}, "wait for it to finish: ingests of one store run one at a time");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The lock holds without the pid; only the message of a second ingest is poorer.
  }
}

IngestLock::~IngestLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock (a PostgreSQL one goes with its connection)
}

void register_reject_log(store::Store& store, const std::string& path) {
  register_export(store, path, {{"what", "reject log"}});  // erasure rewrites every registered file
}

nlohmann::json fit_normalisers(const Config& config, store::Store& store) {
  nlohmann::json saved = store.get_meta("normalisers").value_or(nlohmann::json::object());
  if (!saved.is_object()) saved = nlohmann::json::object();
  for (const auto& n : config.normalisers) {
    prep::Normaliser normaliser(prep::Normaliser::parse_method(n.method));
    const auto values = store.numeric_values(n.field);
    if (values.empty()) continue;
    normaliser.fit(values);
    saved[n.field] = normaliser.to_json();
  }
  store.put_meta("normalisers", saved);
  return saved;
}

IngestReport ingest(const Config& config, store::Store& store, const RunOptions& options) {
  IngestReport report;
  report.store_path = config.resolve(config.store_path);
  report.reject_log = config.reject_log_path();
  RunOptions run = options;
  run.min_kept_share = config.min_kept_share;
  if (options.bulk) store.begin_bulk_load();
  try {
    for (const auto& source : config.sources)
      report.sources.push_back(ingest_source(store, source, config.rules_for(source), config.batch_rows, nullptr, run));
  } catch (...) {
    if (options.bulk) {
      try {
        store.end_bulk_load();
      } catch (const std::exception&) {
        // the store builds them at its next open
      }
    }
    throw;
  }
  if (options.bulk) store.end_bulk_load();
  // The reject log holds every rejected row of the config's sources, read back from the store.
  // An ingest that added nothing leaves it as it is (it used to be emptied); otherwise it is
  // written whole to a temporary and renamed over the old one, so a crash never leaves half a log.
  const bool added = std::any_of(report.sources.begin(), report.sources.end(),
                                 [](const SourceReport& s) { return s.status != "already ingested"; });
  if (added) {
    const std::string tmp = report.reject_log + ".tmp";
    {
      RejectLogWriter rejects(tmp, false);
      for (size_t i = 0; i < config.sources.size(); ++i) {
        const auto& m = config.sources[i].mapping;
        store.for_each_reject(report.sources[i].ingest_id,
                              [&](const store::RejectRow& row) { rejects.write(m.name, m.path, row); });
      }
      rejects.close();
    }
    std::filesystem::rename(tmp, report.reject_log);
    register_reject_log(store, report.reject_log);  // an erasure must reach it later
  }
  if (!config.normalisers.empty()) report.normalisers = fit_normalisers(config, store);
  return report;
}

}  // namespace persona::pipeline
