#include "persona/server/global_rate_limiter.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "persona/privacy/crypto.h"
#include "persona/io/redis_client.h"

namespace persona::server {
namespace {

// One key's bucket: refilled on Redis's clock, given back the tokens a server returns, charged
// the requests it served on credit, then asked for `want` tokens (granted what it has, never
// below zero). KEYS[1] the bucket; ARGV: rate, burst, give back, debt, want, ttl (ms).
constexpr const char* kBucketScript = R"lua(
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
if now > at then tokens = math.min(burst, tokens + (now - at) / 1000 * rate) end
tokens = math.min(burst, tokens + tonumber(ARGV[3])) - tonumber(ARGV[4])
local grant = math.max(0, math.min(math.floor(tokens), tonumber(ARGV[5])))
tokens = tokens - grant
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return grant
)lua";

// The servers alive: each one's last sync time in a sorted set; those silent for ARGV[2] ms go.
constexpr const char* kServersScript = R"lua(
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
return redis.call('ZCARD', KEYS[1])
)lua";

constexpr int kSilentServerMs = 3000;
// Syncs without a request after which a key's account is dropped (its next request is a first one).
constexpr int kForgetAfterSyncs = 100;

}  // namespace

GlobalRateLimiter::GlobalRateLimiter(std::string redis_url, std::string prefix, double per_s, double burst,
                                     std::chrono::milliseconds interval)
    : url_(std::move(redis_url)), prefix_(std::move(prefix)),
      server_id_(fmt::format("{}:{}", ::getpid(), privacy::random_hex(6))), per_s_(per_s), burst_(std::max(1.0, burst)),
      interval_(interval), thread_([this] { loop(); }) {}

GlobalRateLimiter::~GlobalRateLimiter() {
  {
    std::lock_guard lock(stop_mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

double GlobalRateLimiter::take(const std::string& key) {
  if (per_s_ <= 0) return 0;
  std::lock_guard lock(mutex_);
  auto [it, fresh] = accounts_.try_emplace(key);
  Account& a = it->second;
  if (fresh) a.credit = reserve();
  ++a.requests;
  a.idle = 0;
  const bool up = up_;
  if (!up) ++local_decisions_;
  if (a.granted >= 1) {
    a.granted -= 1;
    return 0;
  }
  if (a.credit >= 1) {
    a.credit -= 1;
    if (up) a.debt += 1;
    return 0;
  }
  return std::max(std::chrono::duration<double>(interval_).count(), 1 / per_s_);
}

void GlobalRateLimiter::loop() {
  std::unique_lock lock(stop_mutex_);
  while (!stopping_) {
    lock.unlock();
    sync();
    lock.lock();
    stop_cv_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

void GlobalRateLimiter::sync() {
  if (per_s_ <= 0) return;
  struct Ask {
    std::string key;
    double give_back = 0, debt = 0, want = 0;
  };
  std::vector<Ask> asks;
  {
    std::lock_guard lock(mutex_);
    for (auto it = accounts_.begin(); it != accounts_.end();) {
      Account& a = it->second;
      Ask ask{it->first};
      const int64_t demand = a.requests;
      a.requests = 0;
      if (demand == 0) ++a.idle;
      if (a.idle > kForgetAfterSyncs) {  // long quiet: every token goes back, and the account
        ask.give_back = a.granted;
        a.granted = 0;
      } else if (a.idle >= 2) {  // gone quiet: its tokens go back for the other servers, but a reserve
        ask.give_back = std::max(0.0, std::floor(a.granted - reserve()));
        a.granted -= ask.give_back;
      } else {
        // About two intervals of its demand in hand (at least the reserve, at most the burst).
        const double target = std::min(burst_, std::max(reserve(), 2.0 * static_cast<double>(demand)));
        ask.want = std::max(0.0, std::ceil(target - a.granted));
      }
      ask.debt = a.debt;
      a.debt = 0;
      if (a.idle > kForgetAfterSyncs && a.granted == 0 && a.debt == 0 && ask.give_back == 0 && ask.debt == 0) {
        it = accounts_.erase(it);
        continue;
      }
      if (ask.give_back > 0 || ask.debt > 0 || ask.want > 0) asks.push_back(std::move(ask));
      ++it;
    }
  }
  std::vector<int64_t> grants;
  try {
    if (!conn_ || !conn_->ok()) conn_ = std::make_unique<redis::Connection>(url_, std::chrono::milliseconds(500));
    std::vector<std::vector<std::string>> commands;
    commands.push_back({"EVAL", kServersScript, "1", prefix_ + "servers", server_id_, std::to_string(kSilentServerMs)});
    const std::string ttl = std::to_string(static_cast<int64_t>((burst_ / per_s_ + 60) * 1000));
    for (const auto& a : asks)
      commands.push_back({"EVAL", kBucketScript, "1", prefix_ + "rate:" + a.key, fmt::format("{}", per_s_), fmt::format("{}", burst_),
                          fmt::format("{}", a.give_back), fmt::format("{}", a.debt), fmt::format("{}", a.want), ttl});
    const auto replies = conn_->pipeline(commands);
    for (const auto& r : replies)
      if (r.type != redis::Reply::Type::Integer) throw redis::Unavailable(fmt::format("Redis answered: {}", r.text));
    servers_ = std::max<int>(1, static_cast<int>(replies[0].integer));
    for (size_t i = 1; i < replies.size(); ++i) grants.push_back(replies[i].integer);
  } catch (const std::exception&) {
    conn_.reset();
    // Redis is away: each server a local bucket of its share (the charges of this sync are lost).
    std::lock_guard lock(mutex_);
    up_ = false;
    const double share = per_s_ / servers_, cap = std::max(1.0, burst_ / servers_);
    for (const auto& ask : asks)
      if (const auto it = accounts_.find(ask.key); it != accounts_.end()) it->second.granted += ask.give_back;
    for (auto& [key, a] : accounts_) a.credit = std::min(cap, a.credit + share * std::chrono::duration<double>(interval_).count());
    return;
  }
  std::lock_guard lock(mutex_);
  up_ = true;
  ++syncs_;
  for (size_t i = 0; i < asks.size(); ++i) {
    auto it = accounts_.find(asks[i].key);
    if (it == accounts_.end()) continue;
    it->second.granted += static_cast<double>(grants[i]);
    it->second.credit = 0;  // credit holds until a key's first sync: from then on, the bucket's tokens
  }
}

}  // namespace persona::server
