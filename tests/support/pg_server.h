#pragma once
// A real PostgreSQL server for the tests: its own cluster in a temporary directory, reached by a
// Unix socket only, stopped by its pid when the test binary ends. initdb refuses to run as root,
// so as root the cluster belongs to the `postgres` user (runuser).
#include <memory>
#include <string>

namespace persona::test {

class PgServer {
 public:
  // The suite's server: the one CTest's fixture started in $PERSONA_TEST_PG_DIR (one cluster for
  // the whole suite), else one of the test binary's own, started on first use and stopped at its
  // exit. Null when PostgreSQL is not installed (`why` says so). Under CI=true a missing server
  // is a test failure, never a skip: see PERSONA_NEED_PG.
  static PgServer* shared(std::string* why);
  // Starts a server in `dir` (created); null with `why` when it cannot.
  static std::unique_ptr<PgServer> start(const std::string& dir, std::string* why);
  // The server already running in `dir`, left running when this object goes (null when none).
  static std::unique_ptr<PgServer> attach(const std::string& dir);
  // Stops the server of `dir` by its pid and removes the directory.
  static void stop(const std::string& dir);
  ~PgServer();
  // A connection URL for one database of the server.
  std::string url(const std::string& database = "postgres") const;
  // A new database with Persona's tables and no rows, copied from a migrated template: one per
  // test. `empty`: without tables (for tests of creating them).
  std::string create_database(bool empty = false);
  int pid() const { return pid_; }
  // Stops the server as a power cut would (an immediate shutdown: no checkpoint, clients cut
  // off mid-statement), keeping its data.
  void stop_immediately();
  // Starts a server stopped by stop_immediately() again on the same data (it recovers from its
  // WAL); false with `why` when it cannot.
  bool restart(std::string* why);
  void keep_running() { owned_ = false; }  // not stopped when this object goes

 private:
  PgServer() = default;
  bool launch(std::string* why);
  std::string dir_, bin_, as_user_;
  int pid_ = 0;
  bool owned_ = true;  // stopped (and its directory removed) when this object goes
  int databases_ = 0;
};

}  // namespace persona::test

// Gives `server` (a PgServer*) or ends the test: skipped without PostgreSQL, failed under CI=true.
#define PERSONA_NEED_PG(server)                                                           \
  std::string pg_why_;                                                                    \
  auto* server = ::persona::test::PgServer::shared(&pg_why_);                             \
  if (!server) {                                                                          \
    if (const char* ci = std::getenv("CI"); ci && std::string(ci) == "true") FAIL() << pg_why_; \
    GTEST_SKIP() << pg_why_;                                                              \
  }
