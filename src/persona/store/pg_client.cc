#include "persona/store/pg_client.h"

#include <libpq-fe.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/store/store.h"

namespace persona::store::pg {
namespace {

// libpq's messages end with a newline; ours do not.
std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Host, port and database of a connection: its address in messages, never its password.
std::string describe(PGconn* c) {
  const char* host = PQhost(c);
  const char* db = PQdb(c);
  return fmt::format("postgresql {}:{}/{}", host ? host : "?", PQport(c) ? PQport(c) : "?", db ? db : "?");
}

void quiet_notices(void*, const char*) {}  // NOTICEs (e.g. "table does not exist, skipping") are not errors

// Throws the server's message unless the result has one of the wanted statuses.
void require(const Result& r, std::initializer_list<ExecStatusType> wanted, PGconn* c, const std::string& where,
             std::string_view sql) {
  const auto status = r.raw() ? PQresultStatus(r.raw()) : PGRES_FATAL_ERROR;
  for (auto w : wanted)
    if (status == w) return;
  std::string message = trimmed(r.raw() ? PQresultErrorMessage(r.raw()) : PQerrorMessage(c));
  for (auto& ch : message)
    if (ch == '\n' || ch == '\t') ch = ' ';
  // A client-side failure has no SQLSTATE; 08: connection exceptions; 57P: the server shut down.
  const char* state = r.raw() ? PQresultErrorField(r.raw(), PG_DIAG_SQLSTATE) : nullptr;
  const std::string_view code = state ? state : "";
  if (PQstatus(c) == CONNECTION_BAD || code.empty() || code.substr(0, 2) == "08" || code.substr(0, 3) == "57P")
    throw Unavailable(fmt::format("lost the connection to PostgreSQL: {}", message), {where},
                "is the server up? run the same command again once it is: an ingest resumes where it stopped");
  throw Error(fmt::format("PostgreSQL refused a statement: {}", message), {where},
              fmt::format("the statement began: {}", quote_value(sql, 120)));
}

Result checked(PGresult* raw, PGconn* c, const std::string& where, std::string_view sql) {
  Result r(raw);
  require(r, {PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY}, c, where, sql);
  return r;
}

}  // namespace

Param Param::of(int64_t v) { return text(std::to_string(v)); }

Param Param::of(double v) {
  if (std::isnan(v)) return text("NaN");
  if (std::isinf(v)) return text(v > 0 ? "Infinity" : "-Infinity");
  return text(fmt::format("{}", v));  // shortest digits that read back to v, "-0" kept
}

Result::Result(pg_result* r) : r_(r, PQclear) {}
int Result::rows() const { return PQntuples(r_.get()); }
int Result::columns() const { return PQnfields(r_.get()); }
bool Result::null(int row, int column) const { return PQgetisnull(r_.get(), row, column) != 0; }

std::string_view Result::text(int row, int column) const {
  return {PQgetvalue(r_.get(), row, column), static_cast<size_t>(PQgetlength(r_.get(), row, column))};
}

int64_t Result::int64(int row, int column) const {
  const auto s = text(row, column);
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size())
    throw Error(fmt::format("PostgreSQL column {} is not an integer: {}", column, quote_value(s)));
  return v;
}

double Result::real(int row, int column) const {
  const std::string s(text(row, column));
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);  // reads NaN, Infinity and -Infinity too
  if (end != s.c_str() + s.size()) throw Error(fmt::format("PostgreSQL column {} is not a number: {}", column, quote_value(s)));
  return v;
}

std::string Result::bytes(int row, int column) const {
  size_t n = 0;
  unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_.get(), row, column)), &n);
  if (!raw) throw Error("PostgreSQL bytea value could not be decoded (out of memory?)");
  std::string out(reinterpret_cast<const char*>(raw), n);
  PQfreemem(raw);
  return out;
}

int64_t Result::affected() const {
  const char* n = PQcmdTuples(r_.get());
  return n && *n ? std::strtoll(n, nullptr, 10) : 0;
}

Connection::Connection(const std::string& conninfo) : c_(PQconnectdb(conninfo.c_str()), PQfinish) {
  if (!c_ || PQstatus(c_.get()) != CONNECTION_OK)
    throw Unavailable(fmt::format("cannot connect to PostgreSQL: {}", trimmed(c_ ? PQerrorMessage(c_.get()) : "out of memory")), {},
                "is the server running, and does the URL name its socket directory or host?");
  where_ = describe(c_.get());
  PQsetNoticeProcessor(c_.get(), quiet_notices, nullptr);
  // UTF-8 text whatever the server's default, and doubles written to round-trip exactly.
  exec("SET client_encoding = 'UTF8'; SET extra_float_digits = 1");
}

Result Connection::exec(const std::string& sql) { return checked(PQexec(c_.get(), sql.c_str()), c_.get(), where_, sql); }

namespace {

// Parameters as libpq takes them: values (NULL: a null), lengths, formats (1: binary).
struct ParamArrays {
  explicit ParamArrays(const std::vector<Param>& params) : values(params.size()), lengths(params.size()), formats(params.size()) {
    for (size_t i = 0; i < params.size(); ++i) {
      values[i] = params[i].value ? params[i].value->data() : nullptr;
      lengths[i] = params[i].value ? static_cast<int>(params[i].value->size()) : 0;
      formats[i] = params[i].binary ? 1 : 0;
    }
  }
  int count() const { return static_cast<int>(values.size()); }
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
};

}  // namespace

Result Connection::exec(const std::string& sql, const std::vector<Param>& params) {
  const ParamArrays p(params);
  return checked(PQexecParams(c_.get(), sql.c_str(), p.count(), nullptr, p.values.data(), p.lengths.data(), p.formats.data(), 0),
                 c_.get(), where_, sql);
}

Result Connection::exec_prepared(const std::string& name, const std::string& sql, const std::vector<Param>& params) {
  if (!prepared_.count(name)) {
    checked(PQprepare(c_.get(), name.c_str(), sql.c_str(), static_cast<int>(params.size()), nullptr), c_.get(), where_, sql);
    prepared_.insert(name);
  }
  const ParamArrays p(params);
  return checked(PQexecPrepared(c_.get(), name.c_str(), p.count(), p.values.data(), p.lengths.data(), p.formats.data(), 0),
                 c_.get(), where_, sql);
}

std::string Connection::literal(std::string_view value) {
  char* quoted = PQescapeLiteral(c_.get(), value.data(), value.size());
  if (!quoted) throw Error(fmt::format("PostgreSQL cannot quote a value: {}", trimmed(PQerrorMessage(c_.get()))), {where_});
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

bool Connection::connected() { return PQstatus(c_.get()) == CONNECTION_OK; }

bool Connection::in_transaction() { return PQtransactionStatus(c_.get()) != PQTRANS_IDLE; }

void Connection::copy_in(const std::string& sql, const std::function<void(const std::function<void(std::string_view)>&)>& produce) {
  require(Result(PQexec(c_.get(), sql.c_str())), {PGRES_COPY_IN}, c_.get(), where_, sql);
  std::string buffer;
  auto flush = [&] {
    if (!buffer.empty() && PQputCopyData(c_.get(), buffer.data(), static_cast<int>(buffer.size())) != 1)
      throw Error(fmt::format("PostgreSQL COPY failed: {}", trimmed(PQerrorMessage(c_.get()))), {where_});
    buffer.clear();
  };
  try {
    produce([&](std::string_view line) {
      buffer.append(line);
      buffer.push_back('\n');
      if (buffer.size() >= (1 << 16)) flush();  // send in 64 KiB pieces, not a row at a time
    });
    flush();
  } catch (...) {
    PQputCopyEnd(c_.get(), "the client stopped the COPY");
    while (PGresult* r = PQgetResult(c_.get())) PQclear(r);
    throw;
  }
  if (PQputCopyEnd(c_.get(), nullptr) != 1)
    throw Error(fmt::format("PostgreSQL COPY failed: {}", trimmed(PQerrorMessage(c_.get()))), {where_});
  // The COPY's own result (a bad row is reported here), then the end of the results.
  const Result done(PQgetResult(c_.get()));
  while (PGresult* r = PQgetResult(c_.get())) PQclear(r);
  require(done, {PGRES_COMMAND_OK}, c_.get(), where_, sql);
}

size_t Connection::copy_out(const std::string& sql, const std::function<void(std::string_view)>& row) {
  require(Result(PQexec(c_.get(), sql.c_str())), {PGRES_COPY_OUT}, c_.get(), where_, sql);
  size_t rows = 0;
  for (;;) {
    char* data = nullptr;
    const int n = PQgetCopyData(c_.get(), &data, 0);
    if (n == -1) break;  // done
    if (n < 0) throw Error(fmt::format("PostgreSQL COPY failed: {}", trimmed(PQerrorMessage(c_.get()))), {where_});
    std::string_view line(data, static_cast<size_t>(n));
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    try {
      row(line);
    } catch (...) {
      PQfreemem(data);
      throw;
    }
    PQfreemem(data);
    ++rows;
  }
  const Result done(PQgetResult(c_.get()));
  while (PGresult* r = PQgetResult(c_.get())) PQclear(r);
  require(done, {PGRES_COMMAND_OK}, c_.get(), where_, sql);
  return rows;
}

CopyRow::CopyRow(std::string_view line) {
  size_t start = 0;
  for (;;) {
    const size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      fields_.push_back(line.substr(start));
      return;
    }
    fields_.push_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

int64_t CopyRow::int64(size_t i) const {
  const auto s = fields_.at(i);
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size())
    throw Error(fmt::format("PostgreSQL COPY field {} is not an integer: {}", i, quote_value(s)));
  return v;
}

double CopyRow::real(size_t i) const {
  const auto s = fields_.at(i);
  if (s == "NaN") return std::nan("");
  if (s == "Infinity") return HUGE_VAL;
  if (s == "-Infinity") return -HUGE_VAL;
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size())
    throw Error(fmt::format("PostgreSQL COPY field {} is not a number: {}", i, quote_value(s)));
  return v;
}

std::string CopyRow::text(size_t i) const {
  const auto raw = fields_.at(i);
  if (raw == "\\N") return {};
  if (raw.find('\\') == std::string_view::npos) return std::string(raw);
  return *copy_fields(raw).front();
}

void copy_field(std::string& line, std::optional<std::string_view> value) {
  if (!line.empty()) line.push_back('\t');
  if (!value) {
    line += "\\N";
    return;
  }
  for (char ch : *value) {
    switch (ch) {
      case '\\': line += "\\\\"; break;
      case '\t': line += "\\t"; break;
      case '\n': line += "\\n"; break;
      case '\r': line += "\\r"; break;
      default: line.push_back(ch);
    }
  }
}

std::vector<std::optional<std::string>> copy_fields(std::string_view line) {
  std::vector<std::optional<std::string>> fields;
  size_t start = 0;
  for (;;) {
    const size_t tab = line.find('\t', start);
    const std::string_view raw = line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start);
    if (raw == "\\N") {
      fields.emplace_back(std::nullopt);
    } else {
      std::string v;
      v.reserve(raw.size());
      for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] != '\\' || i + 1 == raw.size()) {
          v.push_back(raw[i]);
          continue;
        }
        const char e = raw[++i];
        v.push_back(e == 't' ? '\t' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'v' ? '\v' : e);
      }
      fields.emplace_back(std::move(v));
    }
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  return fields;
}

}  // namespace persona::store::pg
