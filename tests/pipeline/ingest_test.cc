#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "persona/core/error.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/erasure.h"
#include "persona/pipeline/run.h"
#include "support/test_support.h"

namespace persona::pipeline {
namespace {

const char* kConfig = R"(
[store]
path = "p.db"
[ingest]
batch_rows = 100
[[sources]]
name = "events"
path = "events.csv"
[sources.event]
user = "user"
item = "item"
type = "type"
timestamp = { column = "ts", format = "unix" }
[[sources.clean]]
rule = "exact_duplicate"
[[sources.clean]]
rule = "missing"
fields = ["event.user"]
)";

// 1,000 rows: every 10th duplicates the row before it, every 37th has no user.
std::string events_csv() {
  std::string csv = "user,item,type,ts\n";
  std::string previous;
  for (int i = 0; i < 1000; ++i) {
    std::string line = i % 10 == 9 ? previous
                                   : (i % 37 == 0 ? "" : "u" + std::to_string(i % 50)) + ",i" + std::to_string(i % 30) +
                                         (i % 4 ? ",view," : ",purchase,") + std::to_string(1700000000 + i) + "\n";
    csv += line;
    previous = line;
  }
  return csv;
}

struct Fixture {
  test::TempDir dir;
  Config config;
  Fixture() {
    test::write_file(dir.file("events.csv"), events_csv());
    test::write_file(dir.file("shop.toml"), kConfig);
    config = load_config(dir.file("shop.toml"));
  }
  store::DatasetStats stats() {
    auto store = store::open_sqlite_store(config.resolve(config.store_path));
    return store->stats();
  }
};

TEST(Ingest, ASourceThatKeepsNothingFailsAndIsReadAgain) {
  // format = "iso8601" on unix seconds (the issue's case was the other way round): every row is
  // a type error. The run fails, says why with an example row, keeps nothing in the store, and
  // is not recorded as done: a second run reads the file again, and a fixed mapping ingests it.
  Fixture f;
  std::string toml = kConfig;
  toml.replace(toml.find("format = \"unix\""), 15, "format = \"iso8601\"");
  test::write_file(f.dir.file("shop.toml"), toml);
  auto config = load_config(f.dir.file("shop.toml"));
  for (int run = 0; run < 2; ++run) {
    auto store = store::open_sqlite_store(config.resolve(config.store_path));
    const auto report = ingest(config, *store, {.progress = false});
    ASSERT_TRUE(report.failed());
    const auto& s = report.sources[0];
    EXPECT_EQ(s.status, "failed") << "run " << run;
    EXPECT_EQ(s.summary.rows_kept, 0u);
    EXPECT_NE(s.failure.find("kept none of the 1000 rows"), std::string::npos) << s.failure;
    EXPECT_NE(s.failure.find("in the format ISO 8601"), std::string::npos) << s.failure;
    EXPECT_NE(s.failure.find("line 3: \"1700000001\""), std::string::npos) << s.failure;  // the first bad value
    EXPECT_EQ(store->stats().events, 0u);
    EXPECT_EQ(store->ingests()[0].status, "failed");
  }
  EXPECT_EQ(test::read_file(config.reject_log_path()).find("ISO 8601") != std::string::npos, true);
  {
    auto store = store::open_sqlite_store(f.config.resolve(f.config.store_path));
    const auto fixed = ingest(f.config, *store, {.progress = false});
    EXPECT_FALSE(fixed.failed());
    EXPECT_EQ(fixed.sources[0].status, "ingested");
  }
  EXPECT_GT(f.stats().events, 800u);
}

TEST(Ingest, MinKeptShareFailsASourceThatKeepsTooLittle) {
  // The fixture's file loses 10% to duplicates and about 3% to missing users.
  Fixture f;
  f.config.min_kept_share = 0.95;
  {
    auto store = store::open_sqlite_store(f.config.resolve(f.config.store_path));
    const auto report = ingest(f.config, *store, {.progress = false});
    ASSERT_TRUE(report.failed());
    EXPECT_NE(report.sources[0].failure.find("below [ingest] min_kept_share = 0.95"), std::string::npos)
        << report.sources[0].failure;
    EXPECT_NE(report.sources[0].failure.find("exact_duplicate removed"), std::string::npos) << report.sources[0].failure;
  }
  EXPECT_EQ(f.stats().events, 0u);  // the events of a failed run are taken out again
  f.config.min_kept_share = 0.8;
  auto store = store::open_sqlite_store(f.config.resolve(f.config.store_path));
  EXPECT_FALSE(ingest(f.config, *store, {.progress = false}).failed());
}

TEST(Ingest, SecondIngestOfTheSameFileAddsNothing) {
  Fixture f;
  {
    auto store = store::open_sqlite_store(f.config.resolve(f.config.store_path));
    const auto first = ingest(f.config, *store, {.progress = false});
    EXPECT_EQ(first.sources[0].status, "ingested");
    EXPECT_EQ(first.sources[0].summary.rows_read, 1000u);
  }
  const auto before = f.stats();
  {
    auto store = store::open_sqlite_store(f.config.resolve(f.config.store_path));
    const auto second = ingest(f.config, *store, {.progress = false});
    EXPECT_EQ(second.sources[0].status, "already ingested");
  }
  const auto after = f.stats();
  EXPECT_EQ(before.events, after.events);
  EXPECT_EQ(before.rejects, after.rejects);
  EXPECT_EQ(after.events + after.rejects, 1000);
}

TEST(Ingest, RejectLogAccountsForEveryRemovedRow) {
  Fixture f;
  auto store = store::open_sqlite_store(f.config.resolve(f.config.store_path));
  const auto report = ingest(f.config, *store, {.progress = false});
  const auto& s = report.sources[0].summary;
  EXPECT_EQ(s.rows_read, s.rows_kept + s.rows_removed);
  const std::string log = test::read_file(f.config.reject_log_path());
  const auto lines = static_cast<uint64_t>(std::count(log.begin(), log.end(), '\n'));
  EXPECT_EQ(lines, s.rows_removed);
  EXPECT_NE(log.find("\"source\":\"events\""), std::string::npos);
  EXPECT_NE(log.find("\"rule\":\"exact_duplicate\""), std::string::npos);
  EXPECT_NE(log.find("\"line\":"), std::string::npos);
}

// Crash (as kill -9 would) after the commit of batch N, or inside its transaction, then run
// the ingest again: the store must end exactly as after one uninterrupted ingest.
void crash_then_resume(const char* crash_at) {
  Fixture reference;
  {
    auto store = store::open_sqlite_store(reference.config.resolve(reference.config.store_path));
    ingest(reference.config, *store, {.progress = false});
  }
  const auto expected = reference.stats();

  Fixture f;
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("PERSONA_CRASH_AT", crash_at, 1);
    auto store = store::open_sqlite_store(f.config.resolve(f.config.store_path));
    ingest(f.config, *store, {.progress = false});
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_EQ(WEXITSTATUS(status), 137) << "the crash point was not reached";
  const auto partial = f.stats();
  EXPECT_LT(partial.events, expected.events);
  EXPECT_EQ(partial.ingests[0].status, "running");
  {
    auto store = store::open_sqlite_store(f.config.resolve(f.config.store_path));
    const auto report = ingest(f.config, *store, {.progress = false});
    EXPECT_EQ(report.sources[0].status, "resumed");
    EXPECT_EQ(report.sources[0].summary.rows_read, 1000u);
  }
  const auto resumed = f.stats();
  EXPECT_EQ(resumed.events, expected.events);
  EXPECT_EQ(resumed.users, expected.users);
  EXPECT_EQ(resumed.items, expected.items);
  EXPECT_EQ(resumed.rejects, expected.rejects);
  EXPECT_EQ(resumed.event_types.size(), expected.event_types.size());
  EXPECT_EQ(resumed.ingests[0].status, "complete");
  EXPECT_EQ(resumed.ingests[0].summary["rows_kept"], expected.ingests[0].summary["rows_kept"]);
}

TEST(Ingest, ResumesAfterACrashBetweenBatches) { crash_then_resume("3:after"); }
TEST(Ingest, ResumesAfterACrashInsideATransaction) { crash_then_resume("5:before"); }
TEST(Ingest, ResumesAfterACrashInTheFirstBatch) { crash_then_resume("1:before"); }

}  // namespace
}  // namespace persona::pipeline

namespace persona::pipeline {
namespace {

// A store whose disk fills up at the Nth batch (the fault-injection habit: a Store that fails
// on demand). The error must reach the caller as it is, with no hang and no later batch written.
class DiskFullStore : public store::Store {
 public:
  DiskFullStore(std::unique_ptr<store::Store> inner, int fail_at) : inner_(std::move(inner)), fail_at_(fail_at) {}
  store::IngestRecord begin_ingest(const std::string& s, const std::string& p, const std::string& c,
                                   const std::string& m) override {
    return inner_->begin_ingest(s, p, c, m);
  }
  void write_batch(int64_t ingest, const store::Batch& batch, int64_t last_line) override {
    if (++writes_ == fail_at_) throw Error("store: database or disk is full", {}, "the disk is full");
    inner_->write_batch(ingest, batch, last_line);
  }
  std::vector<bool> stored_stream_entries(const store::StreamEntries& e) override { return inner_->stored_stream_entries(e); }
  void prune_stream_entries(const std::string& s, const store::StreamEntryKey& k) override { inner_->prune_stream_entries(s, k); }
  void finish_ingest(int64_t ingest, const nlohmann::json& summary) override { inner_->finish_ingest(ingest, summary); }
  void fail_ingest(int64_t ingest, const nlohmann::json& summary) override { inner_->fail_ingest(ingest, summary); }
  std::vector<store::IngestRecord> ingests() override { return inner_->ingests(); }
  void for_each_reject(int64_t ingest, const std::function<void(const store::RejectRow&)>& fn) override {
    inner_->for_each_reject(ingest, fn);
  }
  store::DatasetStats stats(int top_n) override { return inner_->stats(top_n); }
  std::vector<double> numeric_values(const std::string& field) override { return inner_->numeric_values(field); }
  void put_meta(const std::string& key, const nlohmann::json& value) override { inner_->put_meta(key, value); }
  std::optional<nlohmann::json> get_meta(const std::string& key) override { return inner_->get_meta(key); }
  store::EventColumns events(store::Use use) override { return inner_->events(use); }
  store::EventColumns events_of(const std::vector<std::string>& users) override { return inner_->events_of(users); }
  store::EventColumns history(const std::string& user) override { return inner_->history(user); }
  store::ChangeMark change_mark() override { return inner_->change_mark(); }
  int64_t generation() override { return inner_->generation(); }
  int64_t erasure_count() override { return inner_->erasure_count(); }
  std::vector<std::string> users_changed_since(const store::ChangeMark& m) override { return inner_->users_changed_since(m); }
  bool put_profiles(const std::vector<std::pair<std::string, std::string>>& rows, bool all, int64_t erasures_before) override {
    return inner_->put_profiles(rows, all, erasures_before);
  }
  std::optional<std::string> profile(const std::string& user) override { return inner_->profile(user); }
  void for_each_profile(const std::function<void(const std::string&, const std::string&)>& fn) override {
    inner_->for_each_profile(fn);
  }
  void for_each_text(store::Use use, const std::function<void(const Text&)>& fn) override {
    inner_->for_each_text(use, fn);
  }
  store::Consent consent(const std::string& user) override { return inner_->consent(user); }
  std::vector<std::string> users_refusing(store::Use use) override { return inner_->users_refusing(use); }
  store::Erasure erase_user(const std::string& user) override { return inner_->erase_user(user); }
  int64_t put_feedback(const std::vector<store::Feedback>& rows) override { return inner_->put_feedback(rows); }
  void for_each_feedback_tally(const std::string& e, const std::function<void(const store::FeedbackTally&)>& fn) override {
    inner_->for_each_feedback_tally(e, fn);
  }
  int64_t reseal() override { return inner_->reseal(); }
  bool sealed() override { return inner_->sealed(); }
  std::vector<std::string> unavailable_items() override { return inner_->unavailable_items(); }
  void put_graph(const store::Graph& g) override { inner_->put_graph(g); }
  std::vector<Item> items() override { return inner_->items(); }
  std::vector<User> users(store::Use use) override { return inner_->users(use); }
  store::Graph graph() override { return inner_->graph(); }
  int schema_version() override { return inner_->schema_version(); }
  store::EventColumns events_since(store::Use use, int64_t since) override { return inner_->events_since(use, since); }
  void export_table(const store::StoreTable& t, const std::function<void(const store::StoreRow&)>& fn) override {
    inner_->export_table(t, fn);
  }
  void import_rows(const store::StoreTable& t, const std::vector<store::StoreRow>& rows) override { inner_->import_rows(t, rows); }
  int writes() const { return writes_; }

 private:
  std::unique_ptr<store::Store> inner_;
  int fail_at_, writes_ = 0;
};

TEST(Ingest, AStoreFailureStopsTheIngestWithItsError) {
  Fixture f;
  DiskFullStore store(store::open_sqlite_store(f.config.resolve(f.config.store_path)), 3);
  try {
    ingest(f.config, store, {.progress = false});
    FAIL() << "expected the store's error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("disk is full"), std::string::npos);
  }
  EXPECT_EQ(store.writes(), 3);  // nothing written after the failure
  const auto partial = f.stats();
  EXPECT_EQ(partial.ingests[0].status, "running");
  EXPECT_EQ(partial.ingests[0].last_line, 201);  // two batches of 100 rows, after the header line
  // With room on the disk again, the same command finishes the job.
  auto real = store::open_sqlite_store(f.config.resolve(f.config.store_path));
  EXPECT_EQ(ingest(f.config, *real, {.progress = false}).sources[0].status, "resumed");
  EXPECT_EQ(f.stats().events + f.stats().rejects, 1000);
}

// An ingest that adds nothing changes nothing: the second run used to empty the reject log.
TEST(Ingest, ASecondRunLeavesTheRejectLogAsItWas) {
  Fixture f;
  auto store = store::open_sqlite_store(f.config.resolve(f.config.store_path));
  ingest(f.config, *store, {.progress = false});
  const std::string first = test::read_file(f.config.reject_log_path());
  ASSERT_GT(std::count(first.begin(), first.end(), '\n'), 100);
  const auto second = ingest(f.config, *store, {.progress = false});
  EXPECT_EQ(second.sources[0].status, "already ingested");
  EXPECT_EQ(test::read_file(f.config.reject_log_path()), first);
}

// Every reject log an ingest writes is remembered by the store, so an erasure finds them all.
TEST(Ingest, EveryRejectLogWrittenIsRegistered) {
  Fixture f;
  auto store = store::open_sqlite_store(f.config.resolve(f.config.store_path));
  ingest(f.config, *store, {.progress = false});
  test::write_file(f.dir.file("more.csv"), "user,item,type,ts\nu1,i1,view,1700000000\n,i2,view,1700000001\n");
  Config other = f.config;
  other.sources[0].mapping.path = f.dir.file("more.csv");
  other.reject_log = f.dir.file("elsewhere.jsonl");
  ingest(other, *store, {.progress = false});
  const auto logs = registered_exports(*store);
  EXPECT_EQ(logs, (std::vector<std::string>{f.config.reject_log_path(), f.dir.file("elsewhere.jsonl")}));
  // The second log holds the rejects of the sources of its own config.
  EXPECT_NE(test::read_file(f.dir.file("elsewhere.jsonl")).find("more.csv"), std::string::npos);
}

TEST(Ingest, TimesOutsideTheWindowAreRejectedWithAReason) {
  Fixture f;
  test::write_file(f.dir.file("events.csv"), "user,item,type,ts\nu1,i1,view,1700000000\nu2,i1,view,9223372036854775807\n"
                                             "u3,i1,view,253402300800\nu4,i1,view,-86400\n");
  auto store = store::open_sqlite_store(f.config.resolve(f.config.store_path));
  const auto report = ingest(f.config, *store, {.progress = false});
  EXPECT_EQ(report.sources[0].summary.rows_kept, 1u);
  const std::string log = test::read_file(f.config.reject_log_path());
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 3);
  EXPECT_NE(log.find("outside the accepted times (from 1970-01-01 to 2100-01-01"), std::string::npos) << log;
}

}  // namespace
}  // namespace persona::pipeline
