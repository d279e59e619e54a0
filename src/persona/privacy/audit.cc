#include "persona/privacy/audit.h"

#include <sodium.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/core/json.h"

namespace persona::privacy {
namespace {

std::mutex append_mutex;

std::string hex(const unsigned char* data, size_t size) {
  std::string out(size * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), data, size);
  out.pop_back();
  return out;
}

struct Head {
  int64_t seq = 0;
  std::string hash;
};

Head read_head(const std::string& path) {
  Head h;
  std::ifstream in(path + ".head");
  if (in) in >> h.seq >> h.hash;
  return h;
}

}  // namespace

std::string default_audit_log_path() {
  const char* p = std::getenv("PERSONA_AUDIT_LOG");
  return p && *p ? p : "persona-audit.jsonl";
}

AuditLog::AuditLog(std::string path, const KeyRing& keys) : path_(std::move(path)), key_(keys.derive(1, "auditlog")) {}

std::string AuditLog::entry_hash(const nlohmann::json& entry) const {
  nlohmann::json body = entry;
  body.erase("hash");
  const std::string text = body.dump();  // nlohmann orders object keys: a canonical form
  unsigned char out[32];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(text.data()), text.size(), key_.data(), key_.size());
  return hex(out, sizeof out);
}

nlohmann::json AuditLog::append(const std::string& actor, const std::string& action, const nlohmann::json& details) {
  std::lock_guard lock(append_mutex);
  const Head head = read_head(path_);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  nlohmann::json entry = {{"seq", head.seq + 1}, {"time", now},     {"actor", actor},
                          {"action", action},    {"details", details}, {"prev", head.hash.empty() ? std::string(64, '0') : head.hash}};
  entry["hash"] = entry_hash(entry);
  {
    std::ofstream out(path_, std::ios::binary | std::ios::app);
    if (!out) throw Error("cannot append to the audit log", {path_});
    out << entry.dump() << '\n';
    out.flush();
    if (!out) throw Error("could not write the audit entry", {path_});
  }
  const std::string tmp = path_ + ".head.tmp";
  {
    std::ofstream head_out(tmp, std::ios::trunc);
    head_out << entry["seq"].get<int64_t>() << ' ' << entry["hash"].get<std::string>() << '\n';
  }
  std::rename(tmp.c_str(), (path_ + ".head").c_str());
  return entry;
}

AuditVerdict AuditLog::verify() const {
  AuditVerdict v;
  std::ifstream in(path_, std::ios::binary);
  const Head head = read_head(path_);
  if (!in) {
    v.intact = head.seq == 0;
    if (!v.intact) v.problem = fmt::format("the log is missing but its head says {} entries", head.seq);
    return v;
  }
  std::string prev(64, '0'), line;
  int64_t line_no = 0;
  auto bad = [&](const std::string& why) {
    v.first_bad_line = line_no;
    v.problem = why;
    return v;
  };
  while (std::getline(in, line)) {
    ++line_no;
    nlohmann::json e;
    if (auto parsed = parse_json(line)) e = std::move(*parsed);
    else return bad("not a JSON entry");
    if (!e.is_object() || !e.contains("seq") || !e.contains("hash") || !e.contains("prev")) return bad("not an audit entry");
    if (e["seq"] != line_no) return bad(fmt::format("sequence number {} where {} was due (an entry removed or inserted)", e["seq"].dump(), line_no));
    if (e["prev"] != prev) return bad("it does not follow the entry before it (an entry removed, inserted or changed)");
    if (e["hash"] != entry_hash(e)) return bad("its content does not match its hash (the entry was changed)");
    prev = e["hash"].get<std::string>();
    ++v.entries;
  }
  if (head.seq != v.entries || (head.seq > 0 && head.hash != prev)) {
    line_no = v.entries + 1;
    return bad(fmt::format("the log ends at entry {} but its head says {} (entries cut off the end)", v.entries, head.seq));
  }
  v.intact = true;
  return v;
}

}  // namespace persona::privacy
