#pragma once
// The assistant's conversations in Redis, shared by every server of a deployment
// (docs/operations.md, "Several servers"): a turn holds the session's lock (SET NX with a
// token and an expiry), reads its state, and writes it back only if it still holds the lock and
// the state's version is the one it read; idle sessions expire with their key. A user's sessions
// are listed under the user (for an erasure), with the same expiry.
#include <memory>
#include <mutex>
#include <string>

#include "persona/assistant/sessions.h"

namespace persona::redis {
class Connection;
}

namespace persona::server {

class RedisSessions final : public assistant::SessionStore {
 public:
  RedisSessions(std::string url, std::string prefix);
  ~RedisSessions() override;
  void with_session(const std::string& id, int64_t now, int64_t ttl_s,
                    const std::function<void(assistant::Session& s, bool fresh)>& turn) override;
  std::optional<assistant::Session> find(const std::string& id) override;
  size_t forget_user(const std::string& user) override;

 private:
  redis::Connection& connection();  // connected again when it was lost
  std::string url_, prefix_;
  std::mutex mutex_;  // one connection
  std::unique_ptr<redis::Connection> conn_;
};

}  // namespace persona::server
