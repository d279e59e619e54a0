#pragma once
// The audit log: append-only JSON Lines, one entry per privacy-relevant act (keys made or
// rotated, data sealed or opened, releases, erasures). Each entry commits to the one before it:
// its "hash" is a keyed BLAKE2b-256 (the key ring's audit subkey) of the previous entry's hash and
// the entry's own fields, so changing, inserting or deleting an entry breaks the chain, and
// without the key the chain cannot be rebuilt. The last entry's sequence number and hash are
// also kept in a head file beside the log (LOG.head), so cutting entries off the end is detected
// too. `persona audit verify` checks all of it. On a PostgreSQL store the log is a table of the
// database (store::PgAuditStorage): one chain for every server and CLI of the store.
#include <cstdint>
#include <functional>
#include <memory>
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

// Where the entries are kept: a JSON Lines file with its head file (AuditFile), or a database.
class AuditStorage {
 public:
  virtual ~AuditStorage() = default;
  struct Head {
    int64_t seq = 0;
    std::string hash;  // "" before the first entry
  };
  // Appends the entry `make` builds from the head as it is now, as one step: no other append,
  // from any process, comes between reading the head and writing the entry and the new head.
  virtual nlohmann::json append(const std::function<nlohmann::json(const Head&)>& make) = 0;
  virtual Head head() const = 0;
  // Whether the log exists at all, and each entry's text in order.
  virtual bool exists() const = 0;
  virtual void for_each(const std::function<void(const std::string& line)>& fn) const = 0;
  virtual std::string where() const = 0;
};

class AuditFile final : public AuditStorage {
 public:
  explicit AuditFile(std::string path) : path_(std::move(path)) {}
  nlohmann::json append(const std::function<nlohmann::json(const Head&)>& make) override;
  Head head() const override;
  bool exists() const override;
  void for_each(const std::function<void(const std::string& line)>& fn) const override;
  std::string where() const override { return path_; }

 private:
  std::string path_;
};

class AuditLog {
 public:
  AuditLog(std::string path, const KeyRing& keys);
  AuditLog(std::unique_ptr<AuditStorage> storage, const KeyRing& keys);
  // Appends {seq, time, actor, action, details, prev, hash}; returns the entry. Thread-safe
  // within one process; the file is opened in append mode and flushed per entry.
  nlohmann::json append(const std::string& actor, const std::string& action, const nlohmann::json& details = nlohmann::json::object());
  AuditVerdict verify() const;
  std::string path() const { return storage_->where(); }
  // Every entry, in order (for the privacy dashboard).
  void for_each(const std::function<void(const std::string& line)>& fn) const { storage_->for_each(fn); }

 private:
  std::string entry_hash(const nlohmann::json& entry) const;
  std::unique_ptr<AuditStorage> storage_;
  SecretKey key_;
};

// $PERSONA_AUDIT_LOG, else persona-audit.jsonl in the current directory.
std::string default_audit_log_path();

}  // namespace persona::privacy
