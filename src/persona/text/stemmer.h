#pragma once
// English stemming with Snowball (Debian's libstemmer): "returns", "returned" and "returning"
// all become "return", so a reworded question still meets the FAQ's words.
#include <string>
#include <string_view>

namespace persona::text {

// The Snowball English stem of a normalised (lower-case) word; other scripts come back unchanged.
// Thread-safe (one stemmer per thread).
std::string stem_english(std::string_view word);

}  // namespace persona::text
