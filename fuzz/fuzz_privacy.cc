// Any bytes through the privacy stage's parsers: PII finding and redaction (findings in order,
// inside the text, never overlapping; redaction leaves no finding behind), a sealed field's text
// form (base64, key id, AEAD: anything but a real seal is a CryptoError, never a crash or
// garbage), and the assistant-facing role names.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "persona/privacy/access.h"
#include "persona/privacy/crypto.h"
#include "persona/privacy/pii.h"

namespace {
const persona::privacy::KeyRing& ring() {
  static const auto* k = [] {
    setenv("PERSONA_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", 1);
    return new persona::privacy::KeyRing(*persona::privacy::KeyRing::from_environment());
  }();
  return *k;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto found = persona::privacy::find_pii(input);
  size_t last_end = 0;
  for (const auto& f : found) {
    if (f.begin < last_end || f.end > input.size() || f.begin >= f.end) std::abort();
    last_end = f.end;
  }
  const auto redacted = persona::privacy::redact_pii(input);
  if (!found.empty() && !persona::privacy::find_pii(redacted).empty()) std::abort();
  try {
    persona::privacy::open_field(ring(), input, "row");
    std::abort();  // random bytes never open
  } catch (const persona::privacy::CryptoError&) {
  }
  const auto sealed = persona::privacy::seal_field(ring(), input, "row");
  if (persona::privacy::open_field(ring(), sealed, "row") != input) std::abort();
  persona::privacy::parse_role(input);
  return 0;
}
