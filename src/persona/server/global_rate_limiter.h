#pragma once
// A rate limit per API key that holds across every server sharing one Redis, without a Redis
// call on any request (docs/operations.md, "Several servers"; the error bound is stated there).
//
// Each key has one token bucket in Redis (refilled at `per_s`, up to `burst`, on Redis's clock).
// A server serves requests from tokens it took from that bucket beforehand; every `interval` a
// background thread tops each active key up to about two intervals of its recent demand, returns
// the tokens of keys gone idle but a reserve of burst / N (N the servers alive: a key's occasional
// requests find tokens at hand), and charges the bucket for requests served on credit. Tokens
// are conserved, so the servers together never admit more than the bucket gives, except:
//  - a key's first requests on a server, before its first top-up, are served on credit (its
//    reserve), charged at the next sync;
//  - while Redis is down, each server keeps a local bucket of per_s / N (N as last known), and
//    counts the requests it decided so (`local_decisions()`).
// The other way, a server refuses a request when it holds none of the key's tokens while others
// hold some: at most N reserves (or two intervals of demand each) sit with the servers.
#include <atomic>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

namespace persona::redis {
class Connection;
}

namespace persona::server {

class GlobalRateLimiter {
 public:
  // `prefix` names this deployment's keys in Redis ("persona:<store>:"), `server_id` this process.
  GlobalRateLimiter(std::string redis_url, std::string prefix, double per_s, double burst,
                    std::chrono::milliseconds interval = std::chrono::milliseconds(50));
  ~GlobalRateLimiter();
  GlobalRateLimiter(const GlobalRateLimiter&) = delete;
  GlobalRateLimiter& operator=(const GlobalRateLimiter&) = delete;

  // 0: the request may go on (and is counted); else the seconds to wait. Never calls Redis.
  double take(const std::string& key);

  bool redis_up() const { return up_; }
  int servers() const { return servers_; }
  int64_t local_decisions() const { return local_decisions_; }
  int64_t syncs() const { return syncs_; }

 private:
  struct Account {
    double granted = 0;  // tokens taken from the bucket, not yet used
    double credit = 0;   // tokens this server may use without the bucket (first use, Redis down)
    double debt = 0;     // credit used while Redis was up: charged at the next sync
    int64_t requests = 0;  // since the last sync
    int idle = 0;          // syncs without a request
  };
  void loop();
  void sync();
  double reserve() const { return std::max(1.0, std::floor(burst_ / servers_)); }
  std::string url_, prefix_, server_id_;
  double per_s_, burst_;
  std::chrono::milliseconds interval_;
  std::unique_ptr<redis::Connection> conn_;  // the sync thread's only
  std::mutex mutex_;
  std::unordered_map<std::string, Account> accounts_;
  std::atomic<bool> up_{false};
  std::atomic<int> servers_{1};
  std::atomic<int64_t> local_decisions_{0}, syncs_{0};
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace persona::server
