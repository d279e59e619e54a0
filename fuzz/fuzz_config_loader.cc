// Any text as a config file: it loads, or it is a persona::Error with a message. Nothing else.
#include <cstdint>
#include <string>

#include "persona/core/error.h"
#include "persona/pipeline/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto config = persona::pipeline::parse_config(text, "fuzz.toml", "/base");
    for (const auto& s : config.sources) (void)persona::pipeline::source_fingerprint(s, config.rules_for(s));
  } catch (const persona::Error& e) {
    if (std::string(e.what()).empty()) __builtin_trap();
  }
  return 0;
}
