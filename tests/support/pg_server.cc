#include "support/pg_server.h"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "persona/store/pg_client.h"
#include "persona/store/store.h"

namespace persona::test {
namespace {

// The newest installed PostgreSQL's bin directory, by major version ("" when none).
std::string find_bin() {
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const int version = std::atoi(entry.path().filename().c_str());
    if (std::filesystem::exists(entry.path() / "bin" / "initdb") && version > best_version)
      best = entry.path().string(), best_version = version;
  }
  return best.empty() ? "" : best + "/bin";
}

// Runs a shell command (as `user` when given); true when it exits 0.
bool run(const std::string& user, const std::string& command) {
  const std::string line = user.empty() ? command : "runuser -u " + user + " -- " + command;
  return std::system(line.c_str()) == 0;
}

int pid_of(const std::string& data_dir) {
  std::ifstream in(data_dir + "/postmaster.pid");
  int pid = 0;
  in >> pid;
  return pid;
}

std::unique_ptr<PgServer>& instance() {
  static std::unique_ptr<PgServer> server;
  return server;
}

}  // namespace

std::unique_ptr<PgServer> PgServer::start(const std::string& dir, std::string* why) {
  std::unique_ptr<PgServer> s(new PgServer);
  std::string reason;
  s->bin_ = find_bin();
  std::error_code ec;
  if (s->bin_.empty()) reason = "PostgreSQL is not installed (scripts/install-deps installs postgresql-15)";
  if (reason.empty() && (!std::filesystem::create_directories(dir, ec) || ec))
    reason = "cannot create the PostgreSQL test directory " + dir + " (is one there already?)";
  s->dir_ = dir;
  if (reason.empty() && geteuid() == 0) {
    s->as_user_ = "postgres";  // initdb refuses root
    if (const passwd* pw = getpwnam("postgres")) {
      if (chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) reason = "cannot give " + dir + " to the postgres user";
    } else {
      reason = "running as root, and there is no postgres user to run PostgreSQL as";
    }
  }
  const std::string data = dir + "/data", log = dir + "/server.log";
  if (reason.empty() &&
      !run(s->as_user_, fmt::format("{}/initdb -D {} -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync > {}/initdb.log 2>&1",
                                    s->bin_, data, dir)))
    reason = "initdb failed: see " + dir + "/initdb.log";
  if (reason.empty()) s->launch(&reason);
  if (!reason.empty()) {
    s->owned_ = false;  // the directory is kept for its logs
    if (why) *why = reason;
    return nullptr;
  }
  return s;
}

bool PgServer::launch(std::string* why) {
  const std::string data = dir_ + "/data", log = dir_ + "/server.log";
  // Unix socket in the directory, no TCP; no fsync (a test cluster, thrown away). Commits are
  // written to the WAL before they return (synchronous_commit stays on), so a test that stops the
  // server immediately loses no committed transaction, as with a real server.
  if (!run(as_user_, fmt::format("{}/pg_ctl -D {} -l {} -w -t 60 -o \"-k {} -c listen_addresses='' -c fsync=off "
                                 "-c full_page_writes=off\" start > /dev/null 2>&1",
                                 bin_, data, log, dir_))) {
    if (why) *why = "PostgreSQL did not start: see " + log;
    return false;
  }
  pid_ = pid_of(data);
  return true;
}

void PgServer::stop_immediately() {
  if (pid_ > 0 && ::kill(pid_, SIGQUIT) == 0)  // the postmaster's immediate shutdown
    for (int i = 0; i < 600 && ::kill(pid_, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  pid_ = 0;
}

bool PgServer::restart(std::string* why) { return launch(why); }

std::unique_ptr<PgServer> PgServer::attach(const std::string& dir) {
  const int pid = pid_of(dir + "/data");
  if (pid <= 0 || ::kill(pid, 0) != 0) return nullptr;
  std::unique_ptr<PgServer> s(new PgServer);
  s->dir_ = dir;
  s->pid_ = pid;
  s->owned_ = false;
  return s;
}

void PgServer::stop(const std::string& dir) {
  if (auto s = attach(dir)) s->owned_ = true;  // stopped and removed as it goes
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

PgServer* PgServer::shared(std::string* why) {
  static bool tried = false;
  static std::string reason;
  if (!tried) {
    tried = true;
    const char* suite_dir = std::getenv("PERSONA_TEST_PG_DIR");
    if (suite_dir && *suite_dir) {
      instance() = attach(suite_dir);
      if (!instance()) reason = "the suite's PostgreSQL server (in " + std::string(suite_dir) + ") is not running: see its server.log, or the fixture test's output";
    } else {
      char templ[] = "/tmp/persona-pg-XXXXXX";
      if (mkdtemp(templ)) {
        std::filesystem::remove(templ);  // start() creates it
        instance() = start(templ, &reason);
      } else {
        reason = "cannot create a temporary directory for PostgreSQL";
      }
    }
    std::atexit([] { instance().reset(); });
  }
  if (!instance() && why) *why = reason;
  return instance().get();
}

PgServer::~PgServer() {
  if (!owned_) return;
  if (pid_ > 0 && ::kill(pid_, SIGINT) == 0) {  // a fast shutdown, by its pid
    for (int i = 0; i < 600 && ::kill(pid_, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (::kill(pid_, 0) == 0) ::kill(pid_, SIGKILL);
  }
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string PgServer::url(const std::string& database) const {
  return fmt::format("postgresql:///{}?host={}&user=postgres", database, dir_);
}

std::string PgServer::create_database(bool empty) {
  const std::string name = fmt::format("test_{}_{}", ::getpid(), ++databases_);
  store::pg::Connection admin(url());
  if (empty) {
    admin.exec("CREATE DATABASE " + name);
    return name;
  }
  // One migrated template per server, made once by whichever test process comes first (under
  // an advisory lock: several run at once); each database is a copy of it, ready to use.
  admin.exec("SELECT pg_advisory_lock(72)");
  if (admin.exec("SELECT count(*) FROM pg_database WHERE datname='persona_template'").int64(0, 0) == 0) {
    admin.exec("DROP DATABASE IF EXISTS persona_template_new");  // half made by a process that died
    admin.exec("CREATE DATABASE persona_template_new");
    store::open_postgres_store(url("persona_template_new"));  // creates and migrates the tables, then disconnects
    admin.exec("ALTER DATABASE persona_template_new RENAME TO persona_template");
  }
  admin.exec("SELECT pg_advisory_unlock(72)");
  admin.exec("CREATE DATABASE " + name + " TEMPLATE persona_template");
  return name;
}

}  // namespace persona::test
