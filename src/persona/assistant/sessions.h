#pragma once
// Where the assistant keeps its conversations: in this process's memory (one server), or in a
// store several servers share (the server's Redis sessions, docs/operations.md), so that a
// conversation whose turns reach different servers goes on as with one.
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/core/error.h"

namespace persona::assistant {

struct Turn {
  std::string role;  // user | assistant
  std::string text;
  std::string intent;
};

struct Session {
  std::string id, user;        // user: the signed-in user ("" when anonymous)
  std::vector<Turn> history;
  std::vector<int64_t> recent; // knowledge-graph entities, most recent first
  int failures = 0;            // misunderstandings in a row
  bool handed_off = false;
  int64_t last_active = 0;
  // The form in progress ("" when none), its filled slots, and whether it awaits a yes or no.
  std::string form;
  nlohmann::json slots = nlohmann::json::object();
  bool confirming = false;
  bool chinese = false;  // the language of the conversation so far
};

// A session as JSON and back (every field: a session moved between servers answers the same).
nlohmann::json session_to_json(const Session& s);
Session session_from_json(const nlohmann::json& j);

// The session is answering another message elsewhere, or moved on while this turn ran: the
// message can be sent again (HTTP 409).
struct SessionBusy : Error {
  using Error::Error;
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;
  // Runs one turn of session `id`: `turn` gets its state (`fresh`: a new session, when unknown or
  // idle for longer than `ttl_s`) while no other turn of the same session runs, here or on any
  // server sharing the store, and what it leaves is kept. Throws persona::Error when the session
  // cannot be had (busy past a wait, its store unreachable).
  virtual void with_session(const std::string& id, int64_t now, int64_t ttl_s,
                            const std::function<void(Session& s, bool fresh)>& turn) = 0;
  // A session's state (none when unknown or expired).
  virtual std::optional<Session> find(const std::string& id) = 0;
  // Removes every session of `user` (an erasure); returns how many.
  virtual size_t forget_user(const std::string& user) = 0;
};

// In this process: one turn at a time across all sessions (the assistant's store connection is
// one); idle sessions are dropped at each turn.
class MemorySessions final : public SessionStore {
 public:
  void with_session(const std::string& id, int64_t now, int64_t ttl_s,
                    const std::function<void(Session& s, bool fresh)>& turn) override;
  std::optional<Session> find(const std::string& id) override;
  size_t forget_user(const std::string& user) override;

 private:
  std::mutex mutex_;
  std::map<std::string, Session> sessions_;
};

}  // namespace persona::assistant
