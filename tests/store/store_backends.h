#pragma once
// The store suite's fixture: every test of it runs on both backends, SQLite and PostgreSQL.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "persona/store/pg_client.h"
#include "persona/store/store.h"
#include "support/pg_server.h"
#include "support/test_support.h"

namespace persona::store {

// ---- the store suite: every test runs on both backends -----------------------------------------

enum class Backend { Sqlite, Postgres };

// A fresh store location per test: a file in a temporary directory, or a new database on the
// suite's PostgreSQL server (opening the location twice reaches the same store).
class StoreBackendTest : public testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::Postgres) {
      PERSONA_NEED_PG(server);
      location_ = server->url(server->create_database());
    } else {
      location_ = "sqlite:" + dir_.file(fmt::format("store-{}.db", ++stores_));
    }
  }
  std::unique_ptr<Store> open(const StoreOptions& options = {}) { return open_store(location_, options); }
  bool postgres() const { return GetParam() == Backend::Postgres; }
  // Runs a statement on the store's database behind its back (what a person with a SQL shell,
  // or a fault, would do).
  void exec_raw(const std::string& sqlite_sql, const std::string& postgres_sql) {
    if (postgres()) {
      pg::Connection(location_).exec(postgres_sql);
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(sqlite_path(location_).c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sqlite_sql.c_str(), nullptr, nullptr, &err);
    const std::string message = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }
  // Every value of the first column of a query, as text (NULL rows left out).
  std::vector<std::string> column_values(const std::string& sql) {
    std::vector<std::string> out;
    if (postgres()) {
      pg::Connection c(location_);
      const auto r = c.exec(sql);
      for (int i = 0; i < r.rows(); ++i)
        if (!r.null(i, 0)) out.emplace_back(r.text(i, 0));
      return out;
    }
    sqlite3* db = nullptr;
    sqlite3_open(sqlite_path(location_).c_str(), &db);
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &q, nullptr);
    while (q && sqlite3_step(q) == SQLITE_ROW)
      if (const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(q, 0))) out.emplace_back(t);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return out;
  }
  // Whether the stored data holds a string anywhere: SQLite's file and WAL, byte by byte; on
  // PostgreSQL every text column of every table (what the server gives back, not its pages).
  bool holds(const std::string& needle) {
    if (!postgres()) {
      const auto path = sqlite_path(location_);
      std::string bytes = test::read_file(path);
      if (std::filesystem::exists(path + "-wal")) bytes += test::read_file(path + "-wal");
      return bytes.find(needle) != std::string::npos;
    }
    pg::Connection c(location_);
    const auto tables = c.exec(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema='public' AND data_type='text'");
    for (int i = 0; i < tables.rows(); ++i) {
      const auto r = c.exec(fmt::format("SELECT count(*) FROM {} WHERE strpos({}, $1) > 0", tables.text(i, 0), tables.text(i, 1)),
                            {pg::Param::text(needle)});
      if (r.int64(0, 0) > 0) return true;
    }
    return false;
  }
  // The first row of a query, every value as text (NULL: nullopt).
  std::vector<std::optional<std::string>> first_row(const std::string& sql) {
    std::vector<std::optional<std::string>> row;
    if (postgres()) {
      pg::Connection c(location_);
      const auto r = c.exec(sql);
      if (r.rows())
        for (int i = 0; i < r.columns(); ++i)
          row.push_back(r.null(0, i) ? std::nullopt : std::optional<std::string>(std::string(r.text(0, i))));
      return row;
    }
    sqlite3* db = nullptr;
    sqlite3_open(sqlite_path(location_).c_str(), &db);
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &q, nullptr);
    if (q && sqlite3_step(q) == SQLITE_ROW)
      for (int i = 0; i < sqlite3_column_count(q); ++i) {
        const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(q, i));
        row.push_back(t ? std::optional<std::string>(t) : std::nullopt);
      }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return row;
  }
  test::TempDir dir_;
  std::string location_;
  int stores_ = 0;  // SetUp() again gives a new store
};


// The name each backend's tests carry (Backends/StoreTest.Name/PostgreSQL).
inline std::string backend_name(const testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::Sqlite ? "SQLite" : "PostgreSQL";
}

}  // namespace persona::store
