// The libpq client against a real PostgreSQL server started by the test: values come back
// byte-equal (the edge values of the issue: int64 extremes, NaN, -0.0, 1e308, subnormals, empty
// text against NULL, CJK, emoji and combining marks, bytes with zeros), COPY in and out, and the
// server's own messages in errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "persona/core/error.h"
#include "persona/store/pg_client.h"
#include "support/pg_server.h"

namespace persona::store::pg {
namespace {

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

TEST(PgClient, ValuesComeBackByteEqual) {
  PERSONA_NEED_PG(server);
  Connection c(server->url(server->create_database()));
  c.exec("CREATE TABLE t (id bigint PRIMARY KEY, x double precision, s text COLLATE \"C\", b bytea)");
  const std::vector<double> reals = {0.1, -0.0, 1e308, -1e308, 5e-324, std::numeric_limits<double>::quiet_NaN(),
                                     std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                                     1.0 / 3, 123456789.123456789};
  const std::vector<std::string> texts = {"", "plain", "中文评论", "emoji 😀👍🏽", "e\xcc\x81 combining", "tab\tnew\nline\\"};
  const std::string bytes("\0\x01\xff\xfe sealed", 11);
  for (size_t i = 0; i < reals.size(); ++i)
    c.exec("INSERT INTO t VALUES ($1, $2, $3, $4)",
           {Param::of(static_cast<int64_t>(i)), Param::of(reals[i]), i < texts.size() ? Param::text(texts[i]) : Param::null(),
            Param::bytes(bytes)});
  c.exec("INSERT INTO t VALUES ($1, NULL, NULL, NULL), ($2, NULL, NULL, NULL)",
         {Param::of(std::numeric_limits<int64_t>::min()), Param::of(std::numeric_limits<int64_t>::max())});
  const auto r = c.exec("SELECT id, x, s, b FROM t ORDER BY id NULLS LAST");
  ASSERT_EQ(r.rows(), static_cast<int>(reals.size()) + 2);
  EXPECT_EQ(r.int64(0, 0), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r.int64(r.rows() - 1, 0), std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(r.null(0, 1));
  for (size_t i = 0; i < reals.size(); ++i) {
    const int row = static_cast<int>(i) + 1;
    EXPECT_EQ(r.int64(row, 0), static_cast<int64_t>(i));
    EXPECT_TRUE(same_bits(r.real(row, 1), reals[i]) || (std::isnan(reals[i]) && std::isnan(r.real(row, 1))))
        << i << ": " << r.text(row, 1);
    if (i < texts.size()) {
      ASSERT_FALSE(r.null(row, 2));
      EXPECT_EQ(r.text(row, 2), texts[i]);  // "" stays "", not NULL
    } else {
      EXPECT_TRUE(r.null(row, 2));
    }
    EXPECT_EQ(r.bytes(row, 3), bytes);
  }
  EXPECT_EQ(c.exec("UPDATE t SET s = 'x' WHERE id < 3").affected(), 4);  // ids 0, 1, 2 and INT64_MIN
}

TEST(PgClient, CopyInAndOutRoundTrip) {
  PERSONA_NEED_PG(server);
  Connection c(server->url(server->create_database()));
  c.exec("CREATE TABLE e (u bigint, note text)");
  const int rows = 20000;
  auto note = [](int i) -> std::optional<std::string> {
    if (i % 7 == 0) return std::nullopt;
    return "row " + std::to_string(i) + (i % 3 ? "\twith\\tabs\nand lines 中" : "");
  };
  c.copy_in("COPY e (u, note) FROM STDIN", [&](const auto& send) {
    for (int i = 0; i < rows; ++i) {
      std::string line;
      copy_field(line, std::to_string(i));
      const auto n = note(i);
      copy_field(line, n ? std::optional<std::string_view>(*n) : std::nullopt);
      send(line);
    }
  });
  int seen = 0;
  const size_t n = c.copy_out("COPY (SELECT u, note FROM e ORDER BY u) TO STDOUT", [&](std::string_view line) {
    const auto f = copy_fields(line);
    ASSERT_EQ(f.size(), 2u);
    EXPECT_EQ(*f[0], std::to_string(seen));
    EXPECT_EQ(f[1], note(seen));
    ++seen;
  });
  EXPECT_EQ(n, static_cast<size_t>(rows));
  EXPECT_EQ(seen, rows);
  // A bad row fails the whole COPY with the server's message, and the connection goes on.
  EXPECT_THROW(c.copy_in("COPY e (u, note) FROM STDIN", [](const auto& send) { send("not-a-number\tx"); }), Error);
  EXPECT_EQ(c.exec("SELECT count(*) FROM e").int64(0, 0), rows);
  // A client that stops half way leaves nothing behind.
  EXPECT_THROW(c.copy_in("COPY e (u, note) FROM STDIN",
                         [](const auto& send) {
                           send("1\tx");
                           throw std::runtime_error("the producer failed");
                         }),
               std::runtime_error);
  EXPECT_EQ(c.exec("SELECT count(*) FROM e").int64(0, 0), rows);
}

TEST(PgClient, ErrorsCarryTheServersMessage) {
  PERSONA_NEED_PG(server);
  Connection c(server->url(server->create_database()));
  try {
    c.exec("SELECT * FROM no_such_table");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_table"), std::string::npos) << e.what();
  }
  EXPECT_EQ(c.exec("SELECT 1 + 1").int64(0, 0), 2);  // still usable
  try {
    Connection refused("postgresql:///postgres?host=/nonexistent-socket-dir&connect_timeout=2");
    FAIL() << "connected to nothing";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect to PostgreSQL"), std::string::npos) << e.what();
  }
}

// A prepared statement is prepared once per connection and runs with each call's values.
TEST(PgClient, PreparedStatementsArePreparedOnceAndTakeEachCallsValues) {
  PERSONA_NEED_PG(server);
  Connection c(server->url(server->create_database()));
  c.exec("CREATE TABLE t(k text, v bigint); INSERT INTO t VALUES ('a', 1), ('b', 2), ('中', 3)");
  const std::string sql = "SELECT v FROM t WHERE k=$1";
  for (const auto& [k, v] : std::vector<std::pair<std::string, int64_t>>{{"a", 1}, {"中", 3}, {"b", 2}}) {
    const auto r = c.exec_prepared("lookup", sql, {Param::text(k)});
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(r.int64(0, 0), v);
  }
  EXPECT_EQ(c.exec("SELECT count(*) FROM pg_prepared_statements WHERE name='lookup'").int64(0, 0), 1) << "prepared once";
  EXPECT_EQ(c.exec_prepared("lookup", sql, {Param::null()}).rows(), 0);
  EXPECT_THROW(c.exec_prepared("broken", "SELECT v FROM no_such_table WHERE k=$1", {Param::text("a")}), Error);
  EXPECT_EQ(c.exec_prepared("lookup", sql, {Param::text("b")}).int64(0, 0), 2) << "still usable";
}

}  // namespace
}  // namespace persona::store::pg
