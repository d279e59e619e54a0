#pragma once
// A real Redis for the tests: `redis-server` on a free loopback port, its files in a temporary
// directory (nothing saved), stopped by its pid when the object goes. Without redis-server the
// test is skipped, and under CI=true it fails (PERSONA_NEED_REDIS).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "support/test_support.h"

namespace persona::test {

class RedisServer {
 public:
  // Null with `why` when redis-server is missing or does not answer.
  static std::unique_ptr<RedisServer> start(std::string* why) {
    const char* candidates[] = {"/usr/bin/redis-server", "/usr/local/bin/redis-server"};
    std::string binary;
    for (const char* c : candidates)
      if (std::filesystem::exists(c)) binary = c;
    if (binary.empty()) {
      *why = "redis-server is not installed (scripts/install-deps installs it)";
      return nullptr;
    }
    std::unique_ptr<RedisServer> r(new RedisServer());
    r->binary_ = binary;
    r->port_ = free_port();
    if (!r->launch()) {
      *why = "redis-server did not answer PING";
      return nullptr;
    }
    return r;
  }
  ~RedisServer() { stop(); }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // Stops it by its pid (SIGKILL: as a crash would), keeping nothing.
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Starts it again on the same port (empty, as after a crash without persistence).
  bool restart() {
    stop();
    return launch();
  }

 private:
  RedisServer() = default;
  bool launch() {
    const std::string port = std::to_string(port_), dir = dir_.path();
    pid_ = fork();
    if (pid_ == 0) {
      std::freopen("/dev/null", "w", stdout);
      std::freopen((dir + "/redis.log").c_str(), "w", stderr);
      execl(binary_.c_str(), binary_.c_str(), "--port", port.c_str(), "--bind", "127.0.0.1", "--dir", dir.c_str(), "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes", nullptr);
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      if (ping()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
  }
  bool ping() const {
    const int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = false;
    if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && write(s, "PING\r\n", 6) == 6) {
      char buf[16] = {};
      ok = read(s, buf, sizeof buf - 1) > 0 && std::string(buf).rfind("+PONG", 0) == 0;
    }
    close(s);
    return ok;
  }
  TempDir dir_;
  std::string binary_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace persona::test

// Gives `server` (a std::unique_ptr<RedisServer>) or ends the test: skipped without Redis,
// failed under CI=true.
#define PERSONA_NEED_REDIS(server)                                                               \
  std::string redis_why_;                                                                        \
  auto server = ::persona::test::RedisServer::start(&redis_why_);                               \
  if (!server) {                                                                                 \
    if (const char* ci = std::getenv("CI"); ci && std::string(ci) == "true") FAIL() << redis_why_; \
    GTEST_SKIP() << redis_why_;                                                                  \
  }
