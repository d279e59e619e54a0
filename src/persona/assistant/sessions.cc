#include "persona/assistant/sessions.h"

namespace persona::assistant {

nlohmann::json session_to_json(const Session& s) {
  nlohmann::json history = nlohmann::json::array();
  for (const auto& t : s.history) history.push_back({{"role", t.role}, {"text", t.text}, {"intent", t.intent}});
  return {{"id", s.id},         {"user", s.user},         {"history", history},         {"recent", s.recent},
          {"failures", s.failures}, {"handed_off", s.handed_off}, {"last_active", s.last_active}, {"form", s.form},
          {"slots", s.slots},   {"confirming", s.confirming}, {"chinese", s.chinese}};
}

Session session_from_json(const nlohmann::json& j) {
  Session s;
  s.id = j.value("id", "");
  s.user = j.value("user", "");
  for (const auto& t : j.value("history", nlohmann::json::array()))
    s.history.push_back({t.value("role", ""), t.value("text", ""), t.value("intent", "")});
  s.recent = j.value("recent", std::vector<int64_t>{});
  s.failures = j.value("failures", 0);
  s.handed_off = j.value("handed_off", false);
  s.last_active = j.value("last_active", int64_t{0});
  s.form = j.value("form", "");
  s.slots = j.value("slots", nlohmann::json::object());
  s.confirming = j.value("confirming", false);
  s.chinese = j.value("chinese", false);
  return s;
}

void MemorySessions::with_session(const std::string& id, int64_t now, int64_t ttl_s,
                                  const std::function<void(Session& s, bool fresh)>& turn) {
  std::lock_guard lock(mutex_);
  for (auto it = sessions_.begin(); it != sessions_.end();)
    it = now - it->second.last_active > ttl_s ? sessions_.erase(it) : std::next(it);
  auto [it, fresh] = sessions_.try_emplace(id);
  turn(it->second, fresh);
}

std::optional<Session> MemorySessions::find(const std::string& id) {
  std::lock_guard lock(mutex_);
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  return it->second;
}

size_t MemorySessions::forget_user(const std::string& user) {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (auto it = sessions_.begin(); it != sessions_.end();)
    if (!user.empty() && it->second.user == user) it = sessions_.erase(it), ++n;
    else ++it;
  return n;
}

}  // namespace persona::assistant
