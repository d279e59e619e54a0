// The test suite's PostgreSQL server, as CTest fixtures: `pg_test_server start DIR` before the
// tests (one cluster for the whole suite), `pg_test_server stop DIR` after them (by its pid).
// Without PostgreSQL, start says why and fails only under CI=true (the tests then skip).
#include <cstdlib>
#include <iostream>
#include <string>

#include "support/pg_server.h"

int main(int argc, char** argv) {
  if (argc != 3 || (std::string(argv[1]) != "start" && std::string(argv[1]) != "stop")) {
    std::cerr << "usage: pg_test_server start|stop DIR\n";
    return 2;
  }
  const std::string dir = argv[2];
  persona::test::PgServer::stop(dir);  // a server left by an interrupted run
  if (std::string(argv[1]) == "stop") return 0;
  std::string why;
  auto server = persona::test::PgServer::start(dir, &why);
  if (!server) {
    std::cerr << "no PostgreSQL for the tests: " << why << "\n";
    const char* ci = std::getenv("CI");
    return ci && std::string(ci) == "true" ? 1 : 0;
  }
  std::cout << "PostgreSQL for the tests: pid " << server->pid() << ", " << server->url() << "\n";
  server->keep_running();  // `stop` ends it
  return 0;
}
