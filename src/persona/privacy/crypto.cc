#include "persona/privacy/crypto.h"

#include <sodium.h>

#include <cstring>
#include <fstream>
#include <vector>

#include <fmt/format.h>

namespace persona::privacy {
namespace {

constexpr const char* kFieldContext = "fieldenc";
constexpr const char* kFileContext = "fileexpt";
constexpr std::string_view kFieldPrefix = "pv1.";
constexpr std::string_view kFileMagic = "PERSONA-SEALED-1\n";
constexpr size_t kChunk = 64 * 1024;

}  // namespace

bool is_sealed(std::string_view value) { return value.substr(0, kFieldPrefix.size()) == kFieldPrefix; }

uint32_t sealed_key_id(std::string_view sealed) {
  if (!is_sealed(sealed)) throw CryptoError("not a sealed value");
  const auto dot = sealed.find('.', kFieldPrefix.size());
  if (dot == std::string_view::npos) throw CryptoError("a sealed value without its key id");
  uint32_t id = 0;
  for (char c : sealed.substr(kFieldPrefix.size(), dot - kFieldPrefix.size())) {
    if (c < '0' || c > '9' || id > 100000000) throw CryptoError("a sealed value with a bad key id");
    id = id * 10 + static_cast<uint32_t>(c - '0');
  }
  return id;
}

std::string seal_field(const KeyRing& keys, std::string_view plaintext, std::string_view row_identity) {
  sodium_ready();
  const uint32_t id = keys.active_id();
  const SecretKey key = keys.derive(id, kFieldContext);
  std::vector<unsigned char> out(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + plaintext.size() +
                                 crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned char* nonce = out.data();
  randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &written,
                                             reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
                                             reinterpret_cast<const unsigned char*>(row_identity.data()), row_identity.size(),
                                             nullptr, nonce, key.data());
  return fmt::format("{}{}.{}", kFieldPrefix, id, to_base64(out.data(), out.size()));
}

std::string open_field(const KeyRing& keys, std::string_view sealed, std::string_view row_identity) {
  sodium_ready();
  const uint32_t id = sealed_key_id(sealed);
  if (!keys.has(id)) throw CryptoError(fmt::format("sealed with key {}, which this key ring does not hold", id));
  std::string raw;
  try {
    raw = from_base64(std::string(sealed.substr(sealed.find('.', kFieldPrefix.size()) + 1)));
  } catch (const std::invalid_argument&) {
    throw CryptoError("a sealed value that is not base64");
  }
  if (raw.size() < crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)
    throw CryptoError("a sealed value too short to be one");
  const SecretKey key = keys.derive(id, kFieldContext);
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  std::string out(raw.size() - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES - crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(reinterpret_cast<unsigned char*>(out.data()), &len, nullptr,
                                                 bytes + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                                 raw.size() - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                                 reinterpret_cast<const unsigned char*>(row_identity.data()), row_identity.size(),
                                                 bytes, key.data()) != 0)
    throw CryptoError("a sealed value does not open: wrong key, tampered, or moved from another row");
  out.resize(len);
  return out;
}

std::string reseal_field(const KeyRing& keys, std::string_view sealed, std::string_view row_identity) {
  if (sealed_key_id(sealed) == keys.active_id()) return std::string(sealed);
  std::string plain = open_field(keys, sealed, row_identity);
  auto out = seal_field(keys, plain, row_identity);
  sodium_memzero(plain.data(), plain.size());
  return out;
}

size_t seal_file(const KeyRing& keys, const std::string& in_path, const std::string& out_path) {
  sodium_ready();
  std::ifstream in(in_path, std::ios::binary);
  if (!in) throw CryptoError("cannot read " + in_path);
  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  if (!out) throw CryptoError("cannot write " + out_path);
  const uint32_t id = keys.active_id();
  const SecretKey key = keys.derive(id, kFileContext);
  unsigned char header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
  crypto_secretstream_xchacha20poly1305_state state;
  crypto_secretstream_xchacha20poly1305_init_push(&state, header, key.data());
  out << kFileMagic << id << '\n';
  out.write(reinterpret_cast<const char*>(header), sizeof header);
  std::vector<unsigned char> buf(kChunk), sealed(kChunk + crypto_secretstream_xchacha20poly1305_ABYTES);
  size_t total = 0;
  for (;;) {
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(kChunk));
    const auto got = static_cast<size_t>(in.gcount());
    const bool last = in.eof();
    unsigned long long len = 0;
    crypto_secretstream_xchacha20poly1305_push(&state, sealed.data(), &len, buf.data(), got, nullptr, 0,
                                               last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
    out.write(reinterpret_cast<const char*>(sealed.data()), static_cast<std::streamsize>(len));
    total += got;
    if (last) break;
  }
  sodium_memzero(buf.data(), buf.size());
  if (!out) throw CryptoError("could not write all of " + out_path);
  return total;
}

size_t open_file(const KeyRing& keys, const std::string& in_path, const std::string& out_path) {
  sodium_ready();
  std::ifstream in(in_path, std::ios::binary);
  if (!in) throw CryptoError("cannot read " + in_path);
  std::string magic(kFileMagic.size(), '\0');
  in.read(magic.data(), static_cast<std::streamsize>(magic.size()));
  if (magic != kFileMagic) throw CryptoError(in_path + " is not a sealed Persona file");
  std::string id_line;
  std::getline(in, id_line);
  uint32_t id = 0;
  try {
    id = static_cast<uint32_t>(std::stoul(id_line));
  } catch (const std::exception&) {
    throw CryptoError(in_path + ": a sealed file without its key id");
  }
  if (!keys.has(id)) throw CryptoError(fmt::format("{} was sealed with key {}, which this key ring does not hold", in_path, id));
  unsigned char header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
  in.read(reinterpret_cast<char*>(header), sizeof header);
  if (in.gcount() != static_cast<std::streamsize>(sizeof header)) throw CryptoError(in_path + " is truncated");
  const SecretKey key = keys.derive(id, kFileContext);
  crypto_secretstream_xchacha20poly1305_state state;
  if (crypto_secretstream_xchacha20poly1305_init_pull(&state, header, key.data()) != 0)
    throw CryptoError(in_path + ": a damaged header");
  // Written to a temporary file, renamed only when every chunk opened and the final one came.
  const std::string tmp = out_path + ".partial";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw CryptoError("cannot write " + out_path);
  std::vector<unsigned char> buf(kChunk + crypto_secretstream_xchacha20poly1305_ABYTES), plain(kChunk);
  size_t total = 0;
  bool final = false;
  while (!final) {
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<size_t>(in.gcount());
    unsigned long long len = 0;
    unsigned char tag = 0;
    if (got == 0 || crypto_secretstream_xchacha20poly1305_pull(&state, plain.data(), &len, &tag, buf.data(), got, nullptr, 0) != 0) {
      out.close();
      std::remove(tmp.c_str());
      throw CryptoError(in_path + " does not open: wrong key, tampered or truncated");
    }
    out.write(reinterpret_cast<const char*>(plain.data()), static_cast<std::streamsize>(len));
    total += len;
    final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    if (final && in.peek() != std::char_traits<char>::eof()) {
      out.close();
      std::remove(tmp.c_str());
      throw CryptoError(in_path + " has data after its final chunk");
    }
  }
  sodium_memzero(plain.data(), plain.size());
  out.close();
  if (!out) throw CryptoError("could not write all of " + out_path);
  std::rename(tmp.c_str(), out_path.c_str());
  return total;
}

std::string pseudonym(const KeyRing& keys, std::string_view external_id) {
  sodium_ready();
  const SecretKey key = keys.pseudonym_key();
  unsigned char hash[16];
  crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(external_id.data()), external_id.size(),
                     key.data(), key.size());
  static const char* alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out = "p_";
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char b : hash) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) out += alphabet[(buffer >> (bits -= 5)) & 31];
  }
  if (bits > 0) out += alphabet[(buffer << (5 - bits)) & 31];
  return out;
}

std::string random_hex(size_t bytes) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
  std::vector<unsigned char> raw(bytes);
  randombytes_buf(raw.data(), raw.size());
  std::string hex(bytes * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), raw.data(), raw.size());
  hex.pop_back();
  return hex;
}

std::string erasure_receipt(const KeyRing& keys, std::string_view external_id, uint32_t key_id) {
  sodium_ready();
  if (key_id == 0) key_id = keys.active_id();
  const SecretKey key = keys.derive(key_id, "erasercp");
  unsigned char hash[16];
  crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(external_id.data()), external_id.size(),
                     key.data(), key.size());
  char hex[sizeof hash * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
  return fmt::format("e{}_{}", key_id, hex);
}

bool is_sealed_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string magic(kFileMagic.size(), '\0');
  in.read(magic.data(), static_cast<std::streamsize>(magic.size()));
  return in.gcount() == static_cast<std::streamsize>(magic.size()) && magic == kFileMagic;
}

}  // namespace persona::privacy
