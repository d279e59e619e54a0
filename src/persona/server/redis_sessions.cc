#include "persona/server/redis_sessions.h"

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "persona/privacy/crypto.h"
#include "persona/io/redis_client.h"

namespace persona::server {
namespace {

// Saves the session if this turn still holds its lock and nobody saved it since it was read.
// KEYS: the session, its lock; ARGV: the lock's token, the version read, the new state, ttl (ms).
constexpr const char* kSaveScript = R"lua(
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local now = redis.call('GET', KEYS[1])
local version = 0
if now then version = cjson.decode(now)['version'] end
if version ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
redis.call('DEL', KEYS[2])
return 1
)lua";

constexpr const char* kUnlockScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

// How long a turn may hold a session (then another server may take it over), and how long a
// turn waits for another one of the same session to finish.
constexpr int kLockMs = 10000, kWaitMs = 5000;

}  // namespace

RedisSessions::RedisSessions(std::string url, std::string prefix) : url_(std::move(url)), prefix_(std::move(prefix)) {}
RedisSessions::~RedisSessions() = default;

redis::Connection& RedisSessions::connection() {
  if (!conn_ || !conn_->ok()) conn_ = std::make_unique<redis::Connection>(url_);
  return *conn_;
}

void RedisSessions::with_session(const std::string& id, int64_t now, int64_t ttl_s,
                                 const std::function<void(assistant::Session& s, bool fresh)>& turn) {
  std::lock_guard guard(mutex_);
  auto& c = connection();
  const std::string key = prefix_ + "session:" + id, lock = key + ":lock", token = privacy::random_hex(12);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  for (int pause_ms = 2;; pause_ms = std::min(pause_ms * 2, 50)) {
    if (!c.command({"SET", lock, token, "NX", "PX", std::to_string(kLockMs)}).nil()) break;
    if (std::chrono::steady_clock::now() > deadline)
      throw assistant::SessionBusy("this conversation is still answering another message", {}, "send the message again in a moment");
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
  }
  try {
    const auto stored = c.command({"GET", key});
    int64_t version = 0;
    assistant::Session s;
    bool fresh = true;
    if (!stored.nil()) {
      const auto j = nlohmann::json::parse(stored.text, nullptr, false);
      if (j.is_object()) {
        version = j.value("version", int64_t{0});
        s = assistant::session_from_json(j.value("session", nlohmann::json::object()));
        fresh = now - s.last_active > ttl_s;
      }
    }
    turn(s, fresh);
    const std::string state = nlohmann::json{{"version", version + 1}, {"session", assistant::session_to_json(s)}}.dump();
    const std::string ttl_ms = std::to_string(std::max<int64_t>(1, ttl_s) * 1000);
    const auto saved = c.command({"EVAL", kSaveScript, "2", key, lock, token, std::to_string(version), state, ttl_ms});
    if (saved.integer != 1)
      throw assistant::SessionBusy("this conversation moved on while the message was answered", {}, "send the message again");
    if (!s.user.empty()) {
      const std::string list = prefix_ + "user-sessions:" + s.user;
      c.pipeline({{"SADD", list, id}, {"PEXPIRE", list, ttl_ms}});
    }
  } catch (...) {
    try {
      if (c.ok()) c.command({"EVAL", kUnlockScript, "1", lock, token});
    } catch (const std::exception&) {
      // the lock expires by itself
    }
    throw;
  }
}

std::optional<assistant::Session> RedisSessions::find(const std::string& id) {
  std::lock_guard guard(mutex_);
  const auto stored = connection().command({"GET", prefix_ + "session:" + id});
  if (stored.nil()) return std::nullopt;
  const auto j = nlohmann::json::parse(stored.text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  return assistant::session_from_json(j.value("session", nlohmann::json::object()));
}

size_t RedisSessions::forget_user(const std::string& user) {
  if (user.empty()) return 0;
  std::lock_guard guard(mutex_);
  auto& c = connection();
  const std::string list = prefix_ + "user-sessions:" + user;
  const auto ids = c.command({"SMEMBERS", list});
  std::vector<std::string> del = {"DEL", list};
  for (const auto& id : ids.elements) del.push_back(prefix_ + "session:" + id.text);
  c.command(del);
  return ids.elements.size();
}

}  // namespace persona::server
