// kill -9 a real `persona consume` at several moments while a producer writes a known sequence to
// a real redis-server: afterwards the store holds each event exactly once, as an ingest of the
// same events from a file does.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <thread>

#include "persona/io/redis_client.h"
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
  const std::string binary = PERSONA_BINARY, config = dir.file("stream.toml");
  const std::string from = fmt::format("redis-stream://127.0.0.1:{}/shop:events", redis->port());
  auto start = [&](const char* idle) {
    const pid_t pid = fork();
    if (pid == 0) {
      freopen("/dev/null", "w", stdout);
      freopen("/dev/null", "w", stderr);
      execl(binary.c_str(), binary.c_str(), "consume", "--config", config.c_str(), "--from", from.c_str(), "--group", "g",
            "--consumer", "c1", "--batch", "50", "--until-idle", idle, "--quiet", nullptr);
      _exit(127);
    }
    return pid;
  };
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

}  // namespace
}  // namespace persona
