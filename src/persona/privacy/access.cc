#include "persona/privacy/access.h"

#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/privacy/keys.h"

namespace persona::privacy {

const char* role_name(Role r) {
  switch (r) {
    case Role::Admin: return "admin";
    case Role::Analyst: return "analyst";
    case Role::Service: return "service";
    case Role::User: return "user";
  }
  return "?";
}

std::optional<Role> parse_role(std::string_view name) {
  for (Role r : {Role::Admin, Role::Analyst, Role::Service, Role::User})
    if (name == role_name(r)) return r;
  return std::nullopt;
}

const std::vector<std::string>& role_scopes(Role r) {
  static const std::vector<std::string> admin = {"*"};
  static const std::vector<std::string> analyst = {"stats:read", "dp:query", "segments:read", "models:read",
                                                   "profiles:pseudonymous", "experiments:read"};
  static const std::vector<std::string> service = {"events:write", "items:write", "users:write", "texts:write",
                                                   "recommend:read", "chat", "profiles:read", "analyze", "feedback:write"};
  static const std::vector<std::string> user = {"profile", "recommend", "chat"};  // on the key's own user
  switch (r) {
    case Role::Admin: return admin;
    case Role::Analyst: return analyst;
    case Role::Service: return service;
    case Role::User: return user;
  }
  return user;
}

bool allows(const ApiKey& key, std::string_view scope, std::string_view subject_user) {
  if (key.revoked) return false;
  if (key.role == Role::Admin) return true;
  const auto& scopes = role_scopes(key.role);
  const bool held = std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
  return key.role == Role::User ? held && !key.user.empty() && subject_user == key.user : held;
}

Argon2Cost Argon2Cost::interactive() { return {crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE}; }
Argon2Cost Argon2Cost::minimal() { return {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN}; }

std::string default_api_keys_path() {
  const char* p = std::getenv("PERSONA_API_KEYS");
  return p && *p ? p : "persona-api-keys.json";
}

ApiKeyStore::ApiKeyStore(std::string path, Argon2Cost cost) : ApiKeyStore(std::make_unique<KeyFile>(std::move(path)), cost) {}

ApiKeyStore::ApiKeyStore(std::unique_ptr<KeyStorage> storage, Argon2Cost cost) : storage_(std::move(storage)), cost_(cost) {
  sodium_ready();
  static_assert(sizeof cache_key_ == crypto_shorthash_siphashx24_KEYBYTES);
  randombytes_buf(cache_key_, sizeof cache_key_);
}

// The key file's identity now: every save renames a new file over the old one, so the inode
// tells; mtimes alone are too coarse. All zero when the file is missing.
std::array<int64_t, 4> KeyFile::version() {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return {};
  return {static_cast<int64_t>(st.st_ino), static_cast<int64_t>(st.st_mtim.tv_sec), static_cast<int64_t>(st.st_mtim.tv_nsec),
          static_cast<int64_t>(st.st_size)};
}

std::vector<ApiKey> KeyFile::load() {
  if (!std::filesystem::exists(path_)) return {};
  std::ifstream in(path_);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const nlohmann::json j = parse_json_or_throw(text, {path_}, "the API key file is damaged: restore it, or make new keys");
  return api_keys_from_json(j.at("keys"), path_);
}

void KeyFile::update(const std::function<void(std::vector<ApiKey>&)>& change) {
  auto keys = load();
  change(keys);
  const std::string tmp = path_ + ".tmp";
  const mode_t old = umask(077);
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json{{"format", "persona-api-keys-1"}, {"keys", api_keys_to_json(keys)}}.dump(2) << '\n';
    if (!out) {
      umask(old);
      throw Error("cannot write the API key file", {tmp});
    }
  }
  umask(old);
  std::filesystem::rename(tmp, path_);
}

nlohmann::json api_keys_to_json(const std::vector<ApiKey>& keys) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& k : keys)
    list.push_back({{"id", k.id}, {"name", k.name}, {"role", role_name(k.role)}, {"user", k.user}, {"created", k.created},
                    {"revoked", k.revoked}, {"hash", k.hash}});
  return list;
}

std::vector<ApiKey> api_keys_from_json(const nlohmann::json& list, const std::string& where) {
  std::vector<ApiKey> out;
  for (const auto& k : list) {
    ApiKey a;
    a.id = k.at("id");
    a.name = k.value("name", "");
    const auto role = parse_role(k.at("role").get<std::string>());
    if (!role) throw Error(fmt::format("API key {} has an unknown role", a.id), {where});
    a.role = *role;
    a.user = k.value("user", "");
    a.created = k.value("created", int64_t{0});
    a.revoked = k.value("revoked", false);
    a.hash = k.at("hash");
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<ApiKey> ApiKeyStore::load() const {
  // Read again only when the keys changed (another process may have made or revoked one).
  const auto version = storage_->version();
  if (version == std::array<int64_t, 4>{}) return {};
  if (version == cached_version_) return cached_;
  cached_ = storage_->load();
  cached_version_ = version;
  return cached_;
}

ApiKeyStore::Created ApiKeyStore::create(const std::string& name, Role role, const std::string& user) {
  if (role == Role::User && user.empty()) throw Error("a user key needs the user it belongs to (--user)");
  std::lock_guard lock(mutex_);
  unsigned char id_bytes[6], secret_bytes[32];
  randombytes_buf(id_bytes, sizeof id_bytes);
  randombytes_buf(secret_bytes, sizeof secret_bytes);
  Created c;
  c.key.id = to_base64(id_bytes, sizeof id_bytes);
  // Letters and digits only: the id sits between underscores, and one starting with '-' would read
  // as an option on a command line (`persona keys revoke -Xa2...`).
  std::replace(c.key.id.begin(), c.key.id.end(), '_', 'x');
  std::replace(c.key.id.begin(), c.key.id.end(), '-', 'y');
  c.key.name = name;
  c.key.role = role;
  c.key.user = user;
  c.key.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  c.secret = "pk_" + c.key.id + "_" + to_base64(secret_bytes, sizeof secret_bytes);
  sodium_memzero(secret_bytes, sizeof secret_bytes);
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, c.secret.data(), c.secret.size(), cost_.ops, cost_.memory) != 0)
    throw Error("not enough memory to hash the API key");
  c.key.hash = hash;
  storage_->update([&](std::vector<ApiKey>& keys) { keys.push_back(c.key); });
  cached_version_ = {};  // read again after our own write
  return c;
}

std::vector<ApiKey> ApiKeyStore::list() const {
  std::lock_guard lock(mutex_);
  return load();
}

bool ApiKeyStore::revoke(const std::string& id) {
  std::lock_guard lock(mutex_);
  bool found = false;
  storage_->update([&](std::vector<ApiKey>& keys) {
    const auto it = std::find_if(keys.begin(), keys.end(), [&](const ApiKey& k) { return k.id == id; });
    if (it == keys.end()) return;
    it->revoked = true;
    found = true;
  });
  cached_version_ = {};
  if (found) forget_verified({id});
  return found;
}

size_t ApiKeyStore::forget_user(const std::string& user) {
  if (user.empty()) return 0;
  std::lock_guard lock(mutex_);
  std::vector<std::string> gone;
  storage_->update([&](std::vector<ApiKey>& keys) {
    for (const auto& k : keys)
      if (k.user == user) gone.push_back(k.id);
    keys.erase(std::remove_if(keys.begin(), keys.end(), [&](const ApiKey& k) { return k.user == user; }), keys.end());
  });
  cached_version_ = {};
  forget_verified(gone);
  return gone.size();
}

// (Under the exclusive lock.)
void ApiKeyStore::forget_verified(const std::vector<std::string>& ids) {
  for (auto v = verified_.begin(); v != verified_.end();)
    v = std::find(ids.begin(), ids.end(), v->second) != ids.end() ? verified_.erase(v) : std::next(v);
}

// pk_<id>_<secret>: the id, or "" when `presented` is not shaped like a key.
std::string api_key_id(std::string_view presented) {
  if (presented.size() < 10 || presented.size() > 200 || presented.substr(0, 3) != "pk_") return {};
  const auto sep = presented.find('_', 3);
  if (sep == std::string_view::npos) return {};
  return std::string(presented.substr(3, sep - 3));
}

ApiKeyStore::Tag ApiKeyStore::cache_tag(std::string_view presented) const {
  Tag tag;
  static_assert(sizeof tag == crypto_shorthash_siphashx24_BYTES);
  crypto_shorthash_siphashx24(tag.data(), reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), cache_key_);
  return tag;
}

std::optional<ApiKey> ApiKeyStore::authenticate_cached(std::string_view presented) const {
  return from_memory(presented, true);
}

std::optional<ApiKey> ApiKeyStore::from_memory(std::string_view presented, bool may_reuse_check) const {
  const std::string id = api_key_id(presented);
  if (id.empty()) return std::nullopt;
  const Tag tag = cache_tag(presented);
  // The hot path, on every request of a busy server: a key verified before, the file unchanged
  // (checked by stat outside any lock). Only a shared lock: no convoy of request threads. The
  // stat was a twentieth of a cached answer's CPU time: a check that found the file unchanged
  // less than kRecheckAfter ago stands for the requests that follow it.
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  const bool recent = may_reuse_check && now - unchanged_at_.load(std::memory_order_relaxed) <
                                             std::chrono::duration_cast<std::chrono::steady_clock::duration>(kRecheckAfter).count();
  const auto version = recent ? std::array<int64_t, 4>{} : storage_->version();
  std::shared_lock read(mutex_);
  if (!recent) {
    if (version != cached_version_ || version == std::array<int64_t, 4>{}) return std::nullopt;
    unchanged_at_.store(now, std::memory_order_relaxed);
  }
  if (const auto v = verified_.find(tag); v != verified_.end() && v->second == id)
    for (const auto& k : cached_)
      if (k.id == id && !k.revoked) return k;
  return std::nullopt;
}

std::optional<ApiKey> ApiKeyStore::authenticate(std::string_view presented) const {
  // pk_<id>_<secret>: the id finds the record; the whole string is checked against its hash.
  const std::string id = api_key_id(presented);
  if (id.empty()) return std::nullopt;
  if (auto known = from_memory(presented, false)) return known;
  const Tag tag = cache_tag(presented);
  const auto now = std::chrono::steady_clock::now();
  std::optional<ApiKey> record;
  {
    std::lock_guard lock(mutex_);
    const auto keys = load();
    const auto it = std::find_if(keys.begin(), keys.end(), [&](const ApiKey& k) { return k.id == id; });
    if (it == keys.end() || it->revoked) return std::nullopt;
    if (const auto v = verified_.find(tag); v != verified_.end() && v->second == id) return *it;
    // A secret that failed a moment ago fails again without another Argon2id.
    if (const auto r = refused_.find(tag); r != refused_.end() && r->second > now) return std::nullopt;
    record = *it;
  }
  // Argon2id (tens of milliseconds, 64 MiB) runs outside the lock, so verified keys go on being
  // answered meanwhile, and at most kConcurrentVerifications at once, so a flood of wrong secrets
  // cannot take the machine's memory.
  const bool valid = [&] {
    std::unique_lock slot(verify_mutex_);
    verify_free_.wait(slot, [this] { return verifying_ < kConcurrentVerifications; });
    ++verifying_;
    slot.unlock();
    const bool ok = crypto_pwhash_str_verify(record->hash.c_str(), presented.data(), presented.size()) == 0;
    slot.lock();
    --verifying_;
    verify_free_.notify_one();
    return ok;
  }();
  std::lock_guard lock(mutex_);
  if (!valid) {
    if (refused_.size() >= kMaxRefused) refused_.clear();
    refused_[tag] = now + kRefusedFor;
    return std::nullopt;
  }
  verified_[tag] = id;
  // Revoked or deleted while it was being verified: the file says last.
  const auto keys = load();
  const auto it = std::find_if(keys.begin(), keys.end(), [&](const ApiKey& k) { return k.id == id; });
  if (it == keys.end() || it->revoked) return std::nullopt;
  return *it;
}

}  // namespace persona::privacy
