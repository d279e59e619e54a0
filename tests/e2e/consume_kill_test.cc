// kill -9 a real `persona consume` at several moments while a producer writes a known sequence to
// a real redis-server, or to a Kafka topic of librdkafka's mock cluster: afterwards the store holds
// each event exactly once, as an ingest of the same events from a file does.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sqlite3.h>

#include <atomic>
#include <thread>

#include "persona/io/redis_client.h"
#include "support/kafka_mock.h"
#include "support/redis_server.h"
#include "support/test_support.h"

namespace persona {
namespace {

using test::run_persona;

const char* kConfig = R"(
[store]
path = "{store}"
[[sources]]
name = "events"
path = "events.jsonl"
[sources.event]
user = "user"
item = "item"
type = "type"
timestamp = {{ column = "ts", format = "unix" }}
)";

std::string event_line(int i) {
  return fmt::format(R"({{"user": "u{}", "item": "i{}", "type": "{}", "ts": {}}})", i % 97, i % 41, i % 5 ? "view" : "purchase",
                     1700000000 + i);
}

nlohmann::json stats_of(const std::string& config) {
  auto r = run_persona({"stats", "--config", config, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out, nullptr, false);
}

// `persona consume --config CONFIG --from FROM --group g MORE... --quiet` in a child process, its
// output dropped; with die_after_commit, it kills itself after that batch's commit (the CLI's
// crash-test hook).
pid_t start_consume(const std::string& config, const std::string& from, const std::vector<std::string>& more,
                    int die_after_commit = 0) {
  std::vector<std::string> args = {PERSONA_BINARY, "consume", "--config", config, "--from", from, "--group", "g"};
  args.insert(args.end(), more.begin(), more.end());
  args.push_back("--quiet");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    if (die_after_commit > 0) setenv("PERSONA_TEST_DIE_AFTER_COMMIT", std::to_string(die_after_commit).c_str(), 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

TEST(KillNine, ConsumeStoresEveryEntryOnceThroughKills) {
  PERSONA_NEED_REDIS(redis);
  test::TempDir dir;
  constexpr int kEvents = 4000;
  std::string file;
  for (int i = 0; i < kEvents; ++i) file += event_line(i) + "\n";
  test::write_file(dir.file("events.jsonl"), file);
  test::write_file(dir.file("file.toml"), fmt::format(fmt::runtime(kConfig), fmt::arg("store", "file.db")));
  test::write_file(dir.file("stream.toml"), fmt::format(fmt::runtime(kConfig), fmt::arg("store", "stream.db")));
  ASSERT_EQ(run_persona({"ingest", "--config", dir.file("file.toml"), "--quiet"}).exit_code, 0);
  const auto expected = stats_of(dir.file("file.toml"));

  std::atomic<bool> produced{false};
  std::thread producer([&] {
    redis::Connection c(redis->url());
    for (int i = 0; i < kEvents; ++i) {
      c.command({"XADD", "shop:events", "*", "json", event_line(i)});
      if (i % 200 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    produced = true;
  });
  const std::string config = dir.file("stream.toml");
  const std::string from = fmt::format("redis-stream://127.0.0.1:{}/shop:events", redis->port());
  auto start = [&](const char* idle, int die_after_commit = 0) {
    return start_consume(config, from, {"--consumer", "c1", "--batch", "50", "--until-idle", idle}, die_after_commit);
  };
  auto killed_by_itself = [](pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  };
  // Killed twice exactly between a batch's commit and its acknowledgement, then at moments in time.
  for (int batch : {2, 5}) EXPECT_TRUE(killed_by_itself(start("5", batch)));
  for (int delay_ms : {30, 80, 150, 250, 400}) {
    const pid_t pid = start("60");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  producer.join();
  ASSERT_TRUE(produced);
  const pid_t last = start("1");
  int status = 0;
  waitpid(last, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const auto got = stats_of(config);
  EXPECT_EQ(got["events"], expected["events"]) << "an entry stored twice, or lost";
  EXPECT_EQ(got["users"], expected["users"]);
  EXPECT_EQ(got["revenue"], expected["revenue"]);
}

// The events in a SQLite store, read beside the consumer writing it (-1 before it exists).
int64_t events_in(const std::string& path) {
  sqlite3* db = nullptr;
  int64_t n = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 1000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM events", -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

// SIGTERM: the batch in hand is stored and acknowledged, then the process exits 0; nothing
// delivered is left pending, and what was not yet read is there for the next run.
TEST(KillNine, ConsumeStopsOnSigtermAfterStoringTheBatchInHand) {
  PERSONA_NEED_REDIS(redis);
  test::TempDir dir;
  constexpr int kEvents = 20000;
  test::write_file(dir.file("stream.toml"), fmt::format(fmt::runtime(kConfig), fmt::arg("store", "stream.db")));
  {
    redis::Connection c(redis->url());
    std::vector<std::vector<std::string>> adds;
    for (int i = 0; i < kEvents; ++i) adds.push_back({"XADD", "shop:events", "*", "json", event_line(i)});
    c.pipeline(adds);
  }
  const std::string config = dir.file("stream.toml"), store = dir.file("stream.db");
  const std::string from = fmt::format("redis-stream://127.0.0.1:{}/shop:events", redis->port());
  auto start = [&] { return start_consume(config, from, {"--batch", "200", "--until-idle", "1"}); };
  const pid_t pid = start();
  for (int i = 0; i < 1200 && events_in(store) <= 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  redis::Connection c(redis->url());
  EXPECT_EQ(c.command({"XPENDING", "shop:events", "g"}).elements[0].integer, 0) << "entries delivered and not stored";
  const int64_t stored = events_in(store);
  EXPECT_GT(stored, 0);
  EXPECT_LT(stored, kEvents) << "SIGTERM came after the end: nothing was stopped";
  const pid_t rest = start();
  waitpid(rest, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(events_in(store), kEvents);
}

// Kafka: offsets are committed only as far as every message before them is stored. Each kill
// lands while the consumer is storing (the store's events grew since it started), at a
// different moment after a commit; afterwards the store equals the file ingest.
TEST(KillNine, ConsumeFromKafkaStoresEveryMessageOnceThroughKills) {
  PERSONA_SKIP_KAFKA_UNDER_TSAN();
  test::TempDir dir;
  test::KafkaMock kafka;
  kafka.create_topic("events", 3);
  constexpr int kEvents = 12000;
  std::string file;
  for (int i = 0; i < kEvents; ++i) file += event_line(i) + "\n";
  test::write_file(dir.file("events.jsonl"), file);
  test::write_file(dir.file("file.toml"), fmt::format(fmt::runtime(kConfig), fmt::arg("store", "file.db")));
  test::write_file(dir.file("stream.toml"), fmt::format(fmt::runtime(kConfig), fmt::arg("store", "stream.db")));
  ASSERT_EQ(run_persona({"ingest", "--config", dir.file("file.toml"), "--quiet"}).exit_code, 0);
  const auto expected = stats_of(dir.file("file.toml"));

  for (int i = 0; i < kEvents / 2; ++i) kafka.send("events", std::to_string(i), event_line(i));
  kafka.flush();
  std::thread producer([&] {  // the second half while the consumer is killed and restarted
    for (int i = kEvents / 2; i < kEvents; ++i) {
      kafka.send("events", std::to_string(i), event_line(i));
      if (i % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    kafka.flush();
  });
  const std::string config = dir.file("stream.toml"), store = dir.file("stream.db");
  // A killed member leaves the group when its session times out: 3 s here.
  const std::string from = kafka.url("events", "session.timeout.ms=3000&heartbeat.interval.ms=300");
  auto start = [&](const char* idle, int die_after_commit = 0) {
    return start_consume(config, from, {"--consumer", "c1", "--batch", "50", "--until-idle", idle}, die_after_commit);
  };
  // Exactly between a batch's commit to the store and its offsets' commit to Kafka...
  {
    const pid_t pid = start("20", 3);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  }
  // ...and at moments while it stores.
  for (int delay_ms : {0, 17, 41}) {
    const int64_t before = std::max<int64_t>(events_in(store), 0);
    const pid_t pid = start("60");
    for (int i = 0; i < 1200 && events_in(store) <= before; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    EXPECT_GT(events_in(store), before) << "the consumer stored nothing before its kill";
    EXPECT_LT(events_in(store), kEvents) << "killed after the end: not a kill mid-stream";
  }
  producer.join();
  const pid_t last = start("8");
  int status = 0;
  waitpid(last, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const auto got = stats_of(config);
  EXPECT_EQ(got["events"], expected["events"]) << "a message stored twice, or lost";
  EXPECT_EQ(got["users"], expected["users"]);
  EXPECT_EQ(got["revenue"], expected["revenue"]);
}

}  // namespace
}  // namespace persona
