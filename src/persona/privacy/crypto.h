#pragma once
// Encryption and keyed hashing with the key ring (libsodium):
//  - sealed fields: XChaCha20-Poly1305 (IETF), a fresh random nonce each time, the row's identity
//    as associated data, so a ciphertext copied onto another row does not open. Text form
//    "pv1.<key id>.<base64url(nonce || ciphertext || tag)>", so a sealed value says which key
//    opens it and rotation can re-seal old values while they stay readable;
//  - sealed files (exports): secretstream (XChaCha20-Poly1305 in chunks, each authenticated, the
//    last marked final, so truncation is detected too), behind a header naming the key;
//  - pseudonyms: keyed BLAKE2b of an external id: stable, not reversible without the key, and
//    mapped back by a key holder by recomputing them over the known ids.
// A wrong key, a tampered or moved ciphertext is a CryptoError, never garbage.
#include <stdexcept>
#include <string>
#include <string_view>

#include "persona/privacy/keys.h"

namespace persona::privacy {

class CryptoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string seal_field(const KeyRing& keys, std::string_view plaintext, std::string_view row_identity);
std::string open_field(const KeyRing& keys, std::string_view sealed, std::string_view row_identity);
bool is_sealed(std::string_view value);
uint32_t sealed_key_id(std::string_view sealed);  // throws CryptoError when not a sealed value
// Sealed again with the active key (rotation); the same text when already under it.
std::string reseal_field(const KeyRing& keys, std::string_view sealed, std::string_view row_identity);

// Sealed copies of files; returns the bytes of plaintext written or read.
size_t seal_file(const KeyRing& keys, const std::string& in_path, const std::string& out_path);
size_t open_file(const KeyRing& keys, const std::string& in_path, const std::string& out_path);

// "p_" and 26 base32 characters (128 bits of keyed BLAKE2b).
std::string pseudonym(const KeyRing& keys, std::string_view external_id);

// The id an erasure receipt carries: "e<key id>_" and 32 hex digits of BLAKE2b keyed with its own
// subkey of the active master key. Neither the id nor its pseudonym, so the audit log does not
// keep the person; a key holder asked "was X erased?" recomputes it.
std::string erasure_receipt(const KeyRing& keys, std::string_view external_id, uint32_t key_id = 0);

// `bytes` random bytes from the system's CSPRNG, as lowercase hex: ids that must not be guessed
// (chat sessions).
std::string random_hex(size_t bytes);

// Whether a file starts like a sealed file (seal_file's output).
bool is_sealed_file(const std::string& path);

}  // namespace persona::privacy
