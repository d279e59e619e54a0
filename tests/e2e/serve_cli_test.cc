// `persona serve` as a process: it refuses to start without what it needs (with a reason), and
// SIGTERM in the middle of a stream of ingests ends it with exit 0, every accepted event stored.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "support/test_support.h"

#include <httplib.h>

namespace persona {
namespace {

using test::run_persona;

TEST(ServeCli, RefusesToStartWithoutWhatItNeeds) {
  test::TempDir dir;
  auto r = run_persona({"serve", "--store", dir.file("none.db"), "--no-auth"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no store"), std::string::npos) << r.err;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  ASSERT_EQ(run_persona({"ingest", "--config", dir.file("shop.toml"), "-q"}).exit_code, 0);
  r = run_persona({"serve", "--config", dir.file("shop.toml"), "--api-keys", dir.file("keys.json")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("keys create"), std::string::npos) << r.err;
  r = run_persona({"serve", "--config", dir.file("shop.toml"), "--no-auth", "--tls-cert", dir.file("shop.toml")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--tls-key"), std::string::npos) << r.err;
}

TEST(ServeCli, SigtermFinishesRequestsInFlightAndLosesNothing) {
  test::TempDir dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  ASSERT_EQ(run_persona({"ingest", "--config", dir.file("shop.toml"), "-q"}).exit_code, 0);
  const auto base = nlohmann::json::parse(run_persona({"stats", "--config", dir.file("shop.toml"), "--json"}).out)["events"];
  const int port = test::free_port();
  const std::string binary = PERSONA_BINARY, config = dir.file("shop.toml"), port_text = std::to_string(port);
  const pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen((dir.file("serve.err")).c_str(), "w", stderr);
    execl(binary.c_str(), binary.c_str(), "serve", "--config", config.c_str(), "--no-auth", "--port", port_text.c_str(),
          "--access-log", "", nullptr);
    _exit(127);
  }
  httplib::Client c("127.0.0.1", port);
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    const auto r = c.Get("/healthz");
    up = r && r->status == 200;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(up) << test::read_file(dir.file("serve.err"));
  std::atomic<int64_t> accepted{0};
  std::thread sender([&] {
    httplib::Client s("127.0.0.1", port);
    for (int b = 0; b < 2000; ++b) {
      nlohmann::json batch = nlohmann::json::array();
      for (int i = 0; i < 20; ++i)
        batch.push_back({{"user", "USIG"}, {"item", "P00001"}, {"type", "view"}, {"timestamp", 1764590400 + b * 100 + i}});
      const auto r = s.Post("/v1/events", batch.dump(), "application/json");
      if (!r) return;
      if (r->status == 200) accepted += nlohmann::json::parse(r->body)["accepted"].get<int64_t>();
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  sender.join();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << test::read_file(dir.file("serve.err"));
  EXPECT_NE(test::read_file(dir.file("serve.err")).find("stopped"), std::string::npos);
  EXPECT_GT(accepted.load(), 0);
  const auto stats = nlohmann::json::parse(run_persona({"stats", "--config", config, "--json"}).out);
  EXPECT_EQ(stats["events"].get<int64_t>(), base.get<int64_t>() + accepted.load()) << "the shop's events and every accepted one";
}

}  // namespace
}  // namespace persona
