#include "persona/io/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <regex>

#include <fmt/format.h>

namespace persona::redis {
namespace {

struct Address {
  std::string host, socket, user, password;
  int port = 6379, db = 0;
};

Address parse(const std::string& url) {
  Address a;
  static const std::regex tcp(R"(redis://(?:([^:@/]*)(?::([^@/]*))?@)?([^:/?]+)?(?::(\d+))?(?:/(\d+))?/?)");
  static const std::regex unix_socket(R"(unix://(/[^?]+)(?:\?db=(\d+))?)");
  std::smatch m;
  if (std::regex_match(url, m, tcp)) {
    a.user = m[1];
    a.password = m[2];
    if (!m[2].matched && m[1].matched) a.password = m[1], a.user.clear();  // redis://secret@host: a password alone
    a.host = m[3].matched ? m[3].str() : "127.0.0.1";
    if (m[4].matched) a.port = std::stoi(m[4]);
    if (m[5].matched) a.db = std::stoi(m[5]);
    return a;
  }
  if (std::regex_match(url, m, unix_socket)) {
    a.socket = m[1];
    if (m[2].matched) a.db = std::stoi(m[2]);
    return a;
  }
  throw Error(fmt::format("not a Redis URL: \"{}\"", printable_url(url)), {},
              "redis://[:password@]host[:port][/db] or unix:///path/to/redis.sock[?db=N]");
}

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_INTEGER: out.type = Reply::Type::Integer, out.integer = r->integer; break;
    case REDIS_REPLY_STRING: out.type = Reply::Type::String, out.text.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = Reply::Type::Status, out.text.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = Reply::Type::Error, out.text.assign(r->str, r->len); break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::Array;
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default: break;  // NIL
  }
  return out;
}

timeval to_timeval(std::chrono::milliseconds t) {
  return {static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>((t.count() % 1000) * 1000)};
}

}  // namespace

std::string printable_url(const std::string& url) {
  static const std::regex password(R"(^(redis://[^:@/]*:)[^@/]*@)");
  return std::regex_replace(url, password, "$1***@");
}

Connection::Connection(const std::string& url, std::chrono::milliseconds timeout) : c_(nullptr, redisFree) {
  const Address a = parse(url);
  where_ = a.socket.empty() ? fmt::format("redis {}:{}", a.host, a.port) : "redis " + a.socket;
  const timeval tv = to_timeval(timeout);
  c_.reset(a.socket.empty() ? redisConnectWithTimeout(a.host.c_str(), a.port, tv) : redisConnectUnixWithTimeout(a.socket.c_str(), tv));
  if (!c_ || c_->err)
    throw Unavailable(fmt::format("cannot connect to Redis: {}", c_ ? c_->errstr : "out of memory"), {where_},
                      "is redis-server running there? (--redis URL)");
  redisSetTimeout(c_.get(), tv);
  if (!a.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!a.user.empty()) auth.push_back(a.user);
    auth.push_back(a.password);
    if (const auto r = command(auth); r.type == Reply::Type::Error) throw Error("Redis refused the password", {where_});
  }
  if (a.db != 0) command({"SELECT", std::to_string(a.db)});
}

Connection::~Connection() = default;

bool Connection::ok() const { return c_ && c_->err == 0; }

Reply Connection::command(const std::vector<std::string>& args) {
  auto replies = pipeline({args});
  if (replies[0].type == Reply::Type::Error) throw Error(fmt::format("Redis: {}", replies[0].text), {where_});
  return std::move(replies[0]);
}

std::vector<Reply> Connection::pipeline(const std::vector<std::vector<std::string>>& commands) {
  if (!ok()) throw Unavailable("the connection to Redis was lost", {where_});
  for (const auto& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    if (redisAppendCommandArgv(c_.get(), static_cast<int>(argv.size()), argv.data(), lengths.data()) != REDIS_OK)
      throw Unavailable(fmt::format("lost the connection to Redis: {}", c_->errstr), {where_});
  }
  std::vector<Reply> out;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c_.get(), &raw) != REDIS_OK || !raw)
      throw Unavailable(fmt::format("lost the connection to Redis: {}", c_->errstr), {where_});
    std::unique_ptr<redisReply, void (*)(void*)> reply(static_cast<redisReply*>(raw), freeReplyObject);
    out.push_back(convert(reply.get()));
  }
  return out;
}

}  // namespace persona::redis
