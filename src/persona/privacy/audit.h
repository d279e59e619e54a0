#pragma once
// The audit log: append-only JSON Lines, one entry per privacy-relevant act (keys made or
// rotated, data sealed or opened, releases, erasures). Each entry commits to the one before it:
// its "hash" is a keyed BLAKE2b-256 (the key ring's audit subkey) of the previous entry's hash and
// the entry's own fields, so changing, inserting or deleting an entry breaks the chain, and
// without the key the chain cannot be rebuilt. The last entry's sequence number and hash are
// also kept in a head file beside the log (LOG.head), so cutting entries off the end is detected
// too. `persona audit verify` checks all of it.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "persona/privacy/keys.h"

namespace persona::privacy {

struct AuditVerdict {
  bool intact = false;
  int64_t entries = 0;
  int64_t first_bad_line = 0;  // 0 when intact
  std::string problem;
};

class AuditLog {
 public:
  AuditLog(std::string path, const KeyRing& keys);
  // Appends {seq, time, actor, action, details, prev, hash}; returns the entry. Thread-safe
  // within one process; the file is opened in append mode and flushed per entry.
  nlohmann::json append(const std::string& actor, const std::string& action, const nlohmann::json& details = nlohmann::json::object());
  AuditVerdict verify() const;
  const std::string& path() const { return path_; }

 private:
  std::string entry_hash(const nlohmann::json& entry) const;
  std::string path_;
  SecretKey key_;
};

// $PERSONA_AUDIT_LOG, else persona-audit.jsonl in the current directory.
std::string default_audit_log_path();

}  // namespace persona::privacy
