#pragma once
// API keys with roles and scopes, for the HTTP server (and any caller of the library). A key is
// shown once, when made ("pk_<id>_<secret>", 256 random bits); only its Argon2id hash is kept
// (libsodium's crypto_pwhash_str), in a key file of mode 0600. Roles:
//   admin    everything;
//   analyst  aggregates and pseudonymous data only (stats, dp, segments, models, pseudonymous profiles);
//   service  the shop's systems: ingest events, recommendations, chat, profiles;
//   user     one end user's own data: their profile, recommendations and chat, nobody else's.
// Verified keys are remembered in memory by a keyed hash of the presented secret, so a busy
// server pays for Argon2id once per key, not once per request; a revoked key stops at once. A
// secret that failed is remembered for a minute too, and Argon2id runs outside every lock, two at
// a time at most: wrong secrets cannot slow down the keys already verified (the server also
// limits failed attempts per key id and per client address).
#include <array>
#include <atomic>
#include <limits>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace persona::privacy {

enum class Role { Admin, Analyst, Service, User };
const char* role_name(Role r);
std::optional<Role> parse_role(std::string_view name);
// The scopes a role holds ("*" for admin).
const std::vector<std::string>& role_scopes(Role r);

struct ApiKey {
  std::string id, name;
  Role role = Role::Service;
  std::string user;   // the user role's own user
  int64_t created = 0;
  bool revoked = false;
  std::string hash;   // Argon2id string (algorithm, parameters, salt, hash)
};

// May `key` use `scope` on data of `subject_user` ("" when the data is not one user's)?
bool allows(const ApiKey& key, std::string_view scope, std::string_view subject_user = "");

struct Argon2Cost {
  unsigned long long ops;
  size_t memory;
  static Argon2Cost interactive();  // libsodium's interactive limits (64 MiB)
  static Argon2Cost minimal();      // for tests only
};

// Where API keys are kept: a JSON file (KeyFile, the default), or a table of a PostgreSQL store
// that every server of it reads (store::PgKeyStorage).
class KeyStorage {
 public:
  virtual ~KeyStorage() = default;
  // A value that changes whenever the keys do. Checked on every request: cheap (a stat, or a
  // number in memory that refresh() moves).
  virtual std::array<int64_t, 4> version() = 0;
  virtual std::vector<ApiKey> load() = 0;
  // Changes the keys as one step: no other process's change in between is lost.
  virtual void update(const std::function<void(std::vector<ApiKey>&)>& change) = 0;
  // Looks for changes made elsewhere (a database's keys; a file's version is its stat).
  virtual void refresh() {}
  virtual std::string where() const = 0;  // for messages
};

// A JSON file {"format": "persona-api-keys-1", "keys": [...]}, written whole (owner-only) and
// renamed over the old one.
class KeyFile final : public KeyStorage {
 public:
  explicit KeyFile(std::string path) : path_(std::move(path)) {}
  std::array<int64_t, 4> version() override;
  std::vector<ApiKey> load() override;
  void update(const std::function<void(std::vector<ApiKey>&)>& change) override;
  std::string where() const override { return path_; }

 private:
  std::string path_;
};

// API keys as JSON (the file's "keys" array) and back; an unknown role is an error naming `where`.
nlohmann::json api_keys_to_json(const std::vector<ApiKey>& keys);
std::vector<ApiKey> api_keys_from_json(const nlohmann::json& list, const std::string& where);

class ApiKeyStore {
 public:
  explicit ApiKeyStore(std::string path, Argon2Cost cost = Argon2Cost::interactive());
  explicit ApiKeyStore(std::unique_ptr<KeyStorage> storage, Argon2Cost cost = Argon2Cost::interactive());
  struct Created {
    ApiKey key;
    std::string secret;  // shown once; not kept anywhere
  };
  Created create(const std::string& name, Role role, const std::string& user = "");
  std::vector<ApiKey> list() const;
  bool revoke(const std::string& id);  // false when unknown
  // Erasure: the keys bound to a user are deleted outright (revoked records would keep the id).
  // Returns how many.
  size_t forget_user(const std::string& user);
  // The key a presented secret belongs to, if it is valid and not revoked.
  std::optional<ApiKey> authenticate(std::string_view presented) const;
  // The same, but only from memory: a key verified before with the file unchanged (no Argon2id,
  // no file read, microseconds); nullopt otherwise, which proves nothing. Lets a server answer a
  // known key's request on its event loop and send the others to a worker. Whether the file
  // changed is checked at most once per kRecheckAfter (authenticate() checks every time): a key
  // revoked by another process stops within that.
  std::optional<ApiKey> authenticate_cached(std::string_view presented) const;
  static constexpr std::chrono::milliseconds kRecheckAfter{1};
  // Where the keys are: a file's path, or the database's location.
  std::string path() const { return storage_->where(); }
  // Reads changes made elsewhere now (a server calls it often; see KeyStorage::refresh).
  void refresh() {
    storage_->refresh();
    unchanged_at_.store(std::numeric_limits<int64_t>::min() / 2);  // what it found counts from the next request
  }

 private:
  std::vector<ApiKey> load() const;
  std::optional<ApiKey> from_memory(std::string_view presented, bool may_reuse_check) const;
  // A keyed hash of a presented secret (SipHash-2-4, 128 bits, under a key made for this process):
  // what marks a secret verified, without keeping the secret. Computed on every request, so a
  // short-input MAC rather than BLAKE2b (a tenth of the time on a 60-byte key).
  using Tag = std::array<unsigned char, 16>;
  Tag cache_tag(std::string_view presented) const;
  void forget_verified(const std::vector<std::string>& ids);
  std::unique_ptr<KeyStorage> storage_;
  Argon2Cost cost_;
  // Shared for the hot path (a key verified before, a file unchanged); exclusive to read the
  // file again, verify a new key or write.
  mutable std::shared_mutex mutex_;
  mutable std::map<Tag, std::string> verified_;  // keyed hash of a secret -> key id
  mutable std::vector<ApiKey> cached_;                    // the file as last read, and its version (inode, time, size)
  mutable std::array<int64_t, 4> cached_version_{};
  // When a check last found the keys unchanged (steady_clock ticks): see authenticate_cached.
  mutable std::atomic<int64_t> unchanged_at_{std::numeric_limits<int64_t>::min() / 2};
  // Secrets that failed verification, by keyed hash, until when they fail without another check.
  static constexpr std::chrono::seconds kRefusedFor{60};
  static constexpr size_t kMaxRefused = 10000;
  mutable std::map<Tag, std::chrono::steady_clock::time_point> refused_;
  // Argon2id verifications running now, at most kConcurrentVerifications (each takes 64 MiB).
  static constexpr int kConcurrentVerifications = 2;
  mutable std::mutex verify_mutex_;
  mutable std::condition_variable verify_free_;
  mutable int verifying_ = 0;
  unsigned char cache_key_[16];  // crypto_shorthash_siphashx24_KEYBYTES (asserted in access.cc)
};

// The id part of a presented key (pk_<id>_<secret>), or "" when it is not shaped like a key.
std::string api_key_id(std::string_view presented);

// $PERSONA_API_KEYS, else persona-api-keys.json in the current directory.
std::string default_api_keys_path();

}  // namespace persona::privacy
