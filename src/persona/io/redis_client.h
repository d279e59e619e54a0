#pragma once
// A small RAII client over hiredis (Debian's libhiredis): one connection, commands as argument
// vectors (binary-safe), pipelines. What several servers share per request lives in Redis
// (docs/operations.md, "Several servers"): rate limits and assistant conversations; and
// `persona consume` reads Redis streams with it.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "persona/core/error.h"

struct redisContext;

namespace persona::redis {

// Redis cannot be reached, or the connection was lost (the caller falls back or answers 503).
struct Unavailable : Error {
  using Error::Error;
};

struct Reply {
  enum class Type { Nil, Integer, String, Array, Status, Error };
  Type type = Type::Nil;
  int64_t integer = 0;
  std::string text;  // String, Status and Error
  std::vector<Reply> elements;
  bool nil() const { return type == Type::Nil; }
};

// redis://[[user]:password@]host[:port][/db] or unix:///path/to/redis.sock[?db=N]; connects at
// once (throws Unavailable when it cannot). Every command waits at most `timeout`.
class Connection {
 public:
  explicit Connection(const std::string& url, std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One command; an error reply throws persona::Error with Redis's message, a lost connection
  // Unavailable (and the connection is unusable from then on).
  Reply command(const std::vector<std::string>& args);
  // Several commands in one round trip, their replies in order (error replies returned, not thrown).
  std::vector<Reply> pipeline(const std::vector<std::vector<std::string>>& commands);
  bool ok() const;

 private:
  std::unique_ptr<redisContext, void (*)(redisContext*)> c_;
  std::string where_;  // host:port or the socket, for messages (never the password)
};

// The URL without its password, for messages and logs.
std::string printable_url(const std::string& url);

}  // namespace persona::redis
