#pragma once
// Key material (libsodium; no hand-written cryptography). A key file, made by `persona keys init`
// with mode 0600, holds numbered 32-byte master keys, one of them active, and a separate
// pseudonym key (rotated only on purpose: pseudonyms must stay stable for analytics to join).
// Or the environment: PERSONA_MASTER_KEY (base64 of 32 bytes, key id 1) and optionally
// PERSONA_PSEUDONYM_KEY. Each use derives its own subkey (crypto_kdf, BLAKE2b), so one key never
// serves two purposes. Key material is zeroed when freed and never printed.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace persona::privacy {

// 32 bytes of secret, zeroed on destruction.
class SecretKey {
 public:
  SecretKey();
  SecretKey(const SecretKey& o);
  SecretKey& operator=(const SecretKey& o);
  ~SecretKey();
  unsigned char* data() { return bytes_.data(); }
  const unsigned char* data() const { return bytes_.data(); }
  static constexpr size_t size() { return 32; }

 private:
  std::array<unsigned char, 32> bytes_{};
};

class KeyRing {
 public:
  // Writes a new key file (refuses to overwrite one) with key 1 active and a pseudonym key.
  static KeyRing create(const std::string& path);
  // Reads a key file; refuses one that others than its owner can read.
  static KeyRing load(const std::string& path);
  // PERSONA_MASTER_KEY / PERSONA_PSEUDONYM_KEY, when set.
  static std::optional<KeyRing> from_environment();
  // --key-file when given, else $PERSONA_KEY_FILE, else the environment's keys, else
  // ./persona.key when it exists; a clear error (saying how to make one) otherwise.
  static KeyRing resolve(const std::string& key_file = "");
  // The same search, but none found is not an error: the ring that commands on a store use when
  // one is at hand (a store sealed with a key then needs it; a plain one works without).
  static std::optional<KeyRing> discover(const std::string& key_file = "");

  // Adds a key and makes it the active one (saved at once when the ring came from a file).
  uint32_t rotate();
  uint32_t active_id() const { return active_; }
  bool has(uint32_t id) const { return keys_.count(id) > 0; }
  std::vector<uint32_t> ids() const;
  const std::string& path() const { return path_; }

  // A purpose's subkey of master key `id` (`context`: 8 characters, e.g. "fieldenc").
  SecretKey derive(uint32_t id, const char* context, uint64_t subkey = 1) const;
  SecretKey pseudonym_key() const { return pseudonym_; }

 private:
  void save() const;
  std::map<uint32_t, SecretKey> keys_;
  SecretKey pseudonym_;
  uint32_t active_ = 0;
  std::string path_;  // "" when from the environment
};

// The key file a command means: --key-file when given, else $PERSONA_KEY_FILE, else ./persona.key.
std::string key_file_path(const std::string& given = "");

// libsodium's initialisation (idempotent; throws if the library cannot start).
void sodium_ready();
std::string to_base64(const unsigned char* data, size_t size);
std::string from_base64(const std::string& text);  // throws std::invalid_argument

}  // namespace persona::privacy
