#pragma once
// Text normalisation for analysis (not for storage): NFKC, case folding, full-width to
// half-width, white space collapsed. Invalid UTF-8 is repaired, never passed on.
#include <string>
#include <string_view>

namespace persona::text {

// NFKC + Unicode case folding + white space collapsed; invalid bytes become U+FFFD. HTML is
// reduced to its text first (see html.h).
std::string normalize_for_analysis(std::string_view s);

// Replaces every invalid UTF-8 sequence with U+FFFD so that later stages can rely on validity.
std::string repair_utf8(std::string_view s);

// Decodes UTF-8 (valid input) into code points.
void decode_utf8(std::string_view s, std::u32string& out);
void append_utf8(char32_t cp, std::string& out);

bool is_han(char32_t cp);
// Whether the (valid UTF-8) text has a Han character: Chinese to answer in Chinese.
bool contains_han(std::string_view s);
// An item's Chinese name: the first of its '|'-separated aliases with Han characters ("" when
// none; the sample shop keeps its title_zh there).
std::string han_alias(std::string_view aliases);

}  // namespace persona::text
