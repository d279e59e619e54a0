#include "persona/privacy/keys.h"

#include <sodium.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "persona/core/error.h"
#include "persona/core/json.h"

namespace persona::privacy {

void sodium_ready() {
  static const int ok = sodium_init();
  if (ok < 0) throw std::runtime_error("libsodium could not be initialised");
}

SecretKey::SecretKey() = default;
SecretKey::SecretKey(const SecretKey& o) : bytes_(o.bytes_) {}
SecretKey& SecretKey::operator=(const SecretKey& o) {
  bytes_ = o.bytes_;
  return *this;
}
SecretKey::~SecretKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

std::string to_base64(const unsigned char* data, size_t size) {
  std::string out(sodium_base64_encoded_len(size, sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), data, size, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::string from_base64(const std::string& text) {
  std::string out(text.size(), '\0');
  size_t len = 0;
  for (int variant : {sodium_base64_VARIANT_URLSAFE_NO_PADDING, sodium_base64_VARIANT_ORIGINAL}) {
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr, &len,
                          nullptr, variant) == 0) {
      out.resize(len);
      return out;
    }
  }
  throw std::invalid_argument("not base64");
}

namespace {

SecretKey key_from_base64(const std::string& text, const std::string& what) {
  std::string raw;
  try {
    raw = from_base64(text);
  } catch (const std::invalid_argument&) {
    throw Error(what + " is not base64", {}, "a key is 32 random bytes in base64: persona keys init makes one");
  }
  if (raw.size() != SecretKey::size())
    throw Error(fmt::format("{} has {} bytes, not 32", what, raw.size()), {}, "persona keys init makes a key file");
  SecretKey k;
  std::memcpy(k.data(), raw.data(), raw.size());
  sodium_memzero(raw.data(), raw.size());
  return k;
}

SecretKey random_key() {
  SecretKey k;
  crypto_kdf_keygen(k.data());
  return k;
}

}  // namespace

KeyRing KeyRing::create(const std::string& path) {
  sodium_ready();
  if (std::filesystem::exists(path)) throw Error("a key file is already there; it is never overwritten", {path},
                                                 "use persona keys rotate to add a key");
  KeyRing ring;
  ring.path_ = path;
  ring.keys_[1] = random_key();
  ring.active_ = 1;
  ring.pseudonym_ = random_key();
  ring.save();
  return ring;
}

void KeyRing::save() const {
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& [id, k] : keys_) keys.push_back({{"id", id}, {"key", to_base64(k.data(), k.size())}});
  const nlohmann::json j = {{"format", "persona-keys-1"}, {"active", active_}, {"keys", keys},
                            {"pseudonym_key", to_base64(pseudonym_.data(), pseudonym_.size())}};
  // Written beside, with mode 0600 from the start, then renamed over: never half a key file.
  const std::string tmp = path_ + ".tmp";
  const mode_t old = umask(077);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << j.dump(2) << '\n';
    out.close();
    if (!out) {
      umask(old);
      throw Error("cannot write the key file", {tmp});
    }
  }
  umask(old);
  ::chmod(tmp.c_str(), 0600);
  std::filesystem::rename(tmp, path_);
}

KeyRing KeyRing::load(const std::string& path) {
  sodium_ready();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error("cannot read the key file", {path}, "persona keys init makes one");
  if (st.st_mode & 077)
    throw Error(fmt::format("the key file can be read by others (mode {:o})", st.st_mode & 0777), {path}, "chmod 600 " + path);
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  nlohmann::json j = parse_json_or_throw(text, {path}, "the key file is damaged: restore it from a backup");
  if (j.value("format", "") != "persona-keys-1") throw Error("not a Persona key file", {path});
  KeyRing ring;
  ring.path_ = path;
  for (const auto& k : j.at("keys")) ring.keys_[k.at("id").get<uint32_t>()] = key_from_base64(k.at("key").get<std::string>(), "a key");
  ring.active_ = j.at("active").get<uint32_t>();
  ring.pseudonym_ = key_from_base64(j.at("pseudonym_key").get<std::string>(), "the pseudonym key");
  if (!ring.has(ring.active_)) throw Error("the active key is not in the key file", {path});
  return ring;
}

std::optional<KeyRing> KeyRing::from_environment() {
  const char* master = std::getenv("PERSONA_MASTER_KEY");
  if (!master || !*master) return std::nullopt;
  sodium_ready();
  KeyRing ring;
  ring.keys_[1] = key_from_base64(master, "PERSONA_MASTER_KEY");
  ring.active_ = 1;
  const char* p = std::getenv("PERSONA_PSEUDONYM_KEY");
  ring.pseudonym_ = p && *p ? key_from_base64(p, "PERSONA_PSEUDONYM_KEY") : ring.derive(1, "pseudonm");
  return ring;
}

std::string key_file_path(const std::string& given) {
  if (!given.empty()) return given;
  const char* env = std::getenv("PERSONA_KEY_FILE");
  return env && *env ? env : "persona.key";
}

KeyRing KeyRing::resolve(const std::string& key_file) {
  if (const char* f = std::getenv("PERSONA_KEY_FILE"); !key_file.empty() || (f && *f)) return load(key_file_path(key_file));
  if (auto env = from_environment()) return *env;
  if (std::filesystem::exists("persona.key")) return load("persona.key");
  throw Error("no key: give --key-file, set PERSONA_KEY_FILE or PERSONA_MASTER_KEY, or make ./persona.key", {},
              "persona keys init --key-file persona.key");
}

std::optional<KeyRing> KeyRing::discover(const std::string& key_file) {
  const char* f = std::getenv("PERSONA_KEY_FILE");
  if (!key_file.empty() || (f && *f) || std::getenv("PERSONA_MASTER_KEY") || std::filesystem::exists("persona.key"))
    return resolve(key_file);
  return std::nullopt;
}

uint32_t KeyRing::rotate() {
  sodium_ready();
  const uint32_t id = keys_.empty() ? 1 : keys_.rbegin()->first + 1;
  keys_[id] = random_key();
  active_ = id;
  if (!path_.empty()) save();
  return id;
}

std::vector<uint32_t> KeyRing::ids() const {
  std::vector<uint32_t> out;
  for (const auto& [id, k] : keys_) out.push_back(id);
  return out;
}

SecretKey KeyRing::derive(uint32_t id, const char* context, uint64_t subkey) const {
  const auto it = keys_.find(id);
  if (it == keys_.end()) throw Error(fmt::format("key {} is not in the key ring", id), {}, "was the data sealed with another key file?");
  SecretKey out;
  crypto_kdf_derive_from_key(out.data(), out.size(), subkey, context, it->second.data());
  return out;
}

}  // namespace persona::privacy
