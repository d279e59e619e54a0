#pragma once
// `persona serve` as a child process on a free port: started with its arguments, waited for
// until /healthz answers, stopped by its pid (SIGTERM, or SIGKILL as by a crash). Its stderr goes
// to a file the test names (shown when it does not come up).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

#include <httplib.h>

namespace persona::test {

class ServeProcess {
 public:
  // Starts `persona serve ARGS --port P --access-log ""`; up() says whether it answers.
  ServeProcess(const std::vector<std::string>& args, std::string err_file) : port_(free_port()), err_file_(std::move(err_file)) {
    std::vector<std::string> all = {PERSONA_BINARY, "serve"};
    all.insert(all.end(), args.begin(), args.end());
    for (const std::string& extra : {std::string("--port"), std::to_string(port_), std::string("--access-log"), std::string()})
      all.push_back(extra);
    pid_ = fork();
    if (pid_ == 0) {
      std::freopen("/dev/null", "w", stdout);
      std::freopen(err_file_.c_str(), "w", stderr);
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~ServeProcess() { stop(SIGKILL); }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // Waits (up to 20 s) until /healthz answers 200.
  bool up() {
    httplib::Client c("127.0.0.1", port_);
    for (int i = 0; i < 400; ++i) {
      if (const auto r = c.Get("/healthz"); r && r->status == 200) return true;
      int status = 0;
      if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // Sends `signal` and waits for the process; returns its wait status (-1 when not running).
  int stop(int signal = SIGTERM) {
    if (pid_ <= 0) return -1;
    kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  int port() const { return port_; }
  bool running() const { return pid_ > 0; }
  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(30, 0);
    return c;
  }
  std::string err() const { return read_file(err_file_); }

 private:
  int port_;
  std::string err_file_;
  pid_t pid_ = -1;
};

}  // namespace persona::test
