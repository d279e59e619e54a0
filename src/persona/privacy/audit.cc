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

}  // namespace

std::string default_audit_log_path() {
  const char* p = std::getenv("PERSONA_AUDIT_LOG");
  return p && *p ? p : "persona-audit.jsonl";
}

AuditLog::AuditLog(std::string path, const KeyRing& keys) : AuditLog(std::make_unique<AuditFile>(std::move(path)), keys) {}

AuditLog::AuditLog(std::unique_ptr<AuditStorage> storage, const KeyRing& keys)
    : storage_(std::move(storage)), key_(keys.derive(1, "auditlog")) {}

AuditStorage::Head AuditFile::head() const {
  Head h;
  std::ifstream in(path_ + ".head");
  if (in) in >> h.seq >> h.hash;
  return h;
}

bool AuditFile::exists() const { return std::ifstream(path_, std::ios::binary).good(); }

void AuditFile::for_each(const std::function<void(const std::string& line)>& fn) const {
  std::ifstream in(path_, std::ios::binary);
  for (std::string line; std::getline(in, line);) fn(line);
}

nlohmann::json AuditFile::append(const std::function<nlohmann::json(const Head&)>& make) {
  std::lock_guard lock(append_mutex);
  const nlohmann::json entry = make(head());
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

std::string AuditLog::entry_hash(const nlohmann::json& entry) const {
  nlohmann::json body = entry;
  body.erase("hash");
  const std::string text = body.dump();  // nlohmann orders object keys: a canonical form
  unsigned char out[32];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(text.data()), text.size(), key_.data(), key_.size());
  return hex(out, sizeof out);
}

nlohmann::json AuditLog::append(const std::string& actor, const std::string& action, const nlohmann::json& details) {
  return storage_->append([&](const AuditStorage::Head& head) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    nlohmann::json entry = {{"seq", head.seq + 1}, {"time", now},     {"actor", actor},
                            {"action", action},    {"details", details}, {"prev", head.hash.empty() ? std::string(64, '0') : head.hash}};
    entry["hash"] = entry_hash(entry);
    return entry;
  });
}

AuditVerdict AuditLog::verify() const {
  AuditVerdict v;
  const auto head = storage_->head();
  if (!storage_->exists()) {
    v.intact = head.seq == 0;
    if (!v.intact) v.problem = fmt::format("the log is missing but its head says {} entries", head.seq);
    return v;
  }
  std::string prev(64, '0');
  int64_t line_no = 0;
  bool failed = false;
  auto bad = [&](const std::string& why) {
    failed = true;
    v.first_bad_line = line_no;
    v.problem = why;
  };
  storage_->for_each([&](const std::string& line) {
    if (failed) return;
    ++line_no;
    nlohmann::json e;
    if (auto parsed = parse_json(line)) e = std::move(*parsed);
    else return bad("not a JSON entry");
    if (!e.is_object() || !e.contains("seq") || !e.contains("hash") || !e.contains("prev")) return bad("not an audit entry");
    if (e["seq"] != line_no)
      return bad(fmt::format("sequence number {} where {} was due (an entry removed or inserted)", e["seq"].dump(), line_no));
    if (e["prev"] != prev) return bad("it does not follow the entry before it (an entry removed, inserted or changed)");
    if (e["hash"] != entry_hash(e)) return bad("its content does not match its hash (the entry was changed)");
    prev = e["hash"].get<std::string>();
    ++v.entries;
  });
  if (failed) return v;
  if (head.seq != v.entries || (head.seq > 0 && head.hash != prev)) {
    v.first_bad_line = v.entries + 1;
    v.problem = fmt::format("the log ends at entry {} but its head says {} (entries cut off the end)", v.entries, head.seq);
    return v;
  }
  v.intact = true;
  return v;
}

}  // namespace persona::privacy
