#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>

#include "persona/pipeline/config.h"
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
