#pragma once
// UTF-8 checks and text hygiene, on utf8proc (Debian's libutf8proc).
#include <string>
#include <string_view>

namespace persona {

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or truncated sequences).
bool valid_utf8(std::string_view s);

// Unicode NFKC (full-width letters and digits become ASCII, compatibility forms fold).
// Input must be valid UTF-8.
std::string nfkc(std::string_view s);

// NFKC, control characters removed (tab and newline become spaces), runs of white space
// collapsed to one space, ends trimmed. Returns true when the text changed.
bool clean_text(std::string& s);

}  // namespace persona
