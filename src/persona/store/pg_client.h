#pragma once
// A small RAII client over libpq's C API (the stable choice: Debian's libpqxx is 6.4, an old
// API): connections, results, parameterised statements, COPY in and out. Errors become
// persona::Error with the server's own message; nothing here knows Persona's schema.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace persona::store::pg {

// One statement parameter, sent as text (libpq's text format), or bytes for a bytea column.
struct Param {
  std::optional<std::string> value;  // none: NULL
  bool binary = false;
  static Param null() { return {}; }
  static Param text(std::string s) { return {std::move(s), false}; }
  static Param bytes(std::string b) { return {std::move(b), true}; }
  static Param of(int64_t v);
  static Param of(double v);  // shortest round-trip digits; NaN and infinities by name
};

class Result {
 public:
  explicit Result(pg_result* r);
  int rows() const;
  int columns() const;
  bool null(int row, int column) const;
  std::string_view text(int row, int column) const;
  int64_t int64(int row, int column) const;
  // Exact: the server writes float8 with the shortest digits that read back to the same double.
  double real(int row, int column) const;
  std::string bytes(int row, int column) const;  // a bytea column, unescaped
  int64_t affected() const;                      // rows an INSERT/UPDATE/DELETE touched
  pg_result* raw() const { return r_.get(); }

 private:
  std::unique_ptr<pg_result, void (*)(pg_result*)> r_;
};

class Connection {
 public:
  // A URL (postgresql://user@host/db, postgresql:///db?host=/socket/dir) or key=value pairs.
  explicit Connection(const std::string& conninfo);
  Result exec(const std::string& sql);  // one or more statements, no parameters
  Result exec(const std::string& sql, const std::vector<Param>& params);
  // The same, as a statement prepared once per connection under `name` (planned once: the hot
  // per-request reads, where planning cost as much as running).
  Result exec_prepared(const std::string& name, const std::string& sql, const std::vector<Param>& params);
  // COPY ... FROM STDIN (text format): `produce` is given a function that sends one row (its
  // line without the newline; build it with copy_field()).
  void copy_in(const std::string& sql, const std::function<void(const std::function<void(std::string_view)>&)>& produce);
  // COPY ... TO STDOUT (text format): each row's line without the newline; returns the rows.
  size_t copy_out(const std::string& sql, const std::function<void(std::string_view)>& row);
  // A string as an SQL literal (quoted and escaped), for the statements that take no parameters
  // (COPY).
  std::string literal(std::string_view value);
  // Whether a transaction is open (BEGIN without COMMIT or ROLLBACK yet).
  bool in_transaction();
  bool connected();  // the connection is still up
  pg_conn* raw() { return c_.get(); }

 private:
  std::unique_ptr<pg_conn, void (*)(pg_conn*)> c_;
  std::string where_;  // the connection without its password, for messages
  std::set<std::string> prepared_;  // statements prepared on this connection
};

// One row of COPY text output, split without copying: fields are unescaped only when read as
// text (the hot read of every event for training goes through here).
class CopyRow {
 public:
  explicit CopyRow(std::string_view line);
  size_t size() const { return fields_.size(); }
  bool null(size_t i) const { return fields_[i] == "\\N"; }
  int64_t int64(size_t i) const;
  double real(size_t i) const;  // NaN, Infinity and -Infinity by name
  std::string text(size_t i) const;  // NULL reads as ""

 private:
  std::vector<std::string_view> fields_;
};

// COPY text format: appends a field (tab-separated after the first), escaped, or \N for NULL.
void copy_field(std::string& line, std::optional<std::string_view> value);
// The fields of a COPY text line, unescaped (none: NULL).
std::vector<std::optional<std::string>> copy_fields(std::string_view line);

}  // namespace persona::store::pg
