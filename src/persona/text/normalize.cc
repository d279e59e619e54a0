#include "persona/text/normalize.h"

#include "persona/text/html.h"

#include <utf8proc.h>

#include <cstdlib>

#include "persona/core/model.h"
#include "persona/core/unicode.h"

namespace persona::text {

std::string repair_utf8(std::string_view s) {
  if (valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
  while (left > 0) {
    utf8proc_int32_t cp;
    const utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0 || cp < 0) {
      out += "\xEF\xBF\xBD";
      ++p;
      --left;
      continue;
    }
    out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    p += n;
    left -= n;
  }
  return out;
}

std::string normalize_for_analysis(std::string_view input) {
  std::string valid = repair_utf8(input);
  if (looks_like_html(valid)) valid = html_to_text(valid);
  // Control characters (NUL, the C1 range) separate words: utf8proc's STRIPCC below would drop
  // them and glue "good\0product" into one word.
  for (size_t i = 0; i < valid.size(); ++i) {
    const auto c = static_cast<unsigned char>(valid[i]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) valid[i] = ' ';
    if (c == 0xC2 && i + 1 < valid.size() && static_cast<unsigned char>(valid[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(valid[i + 1]) <= 0x9F)
      valid[i] = valid[i + 1] = ' ';
  }
  utf8proc_uint8_t* mapped = nullptr;
  // NFKC (compat + compose) folds full-width forms; CASEFOLD lowers; STRIPCC drops controls.
  const auto options = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE |
                                                      UTF8PROC_CASEFOLD | UTF8PROC_STRIPCC | UTF8PROC_NLF2LS);
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(valid.data()),
                                          static_cast<utf8proc_ssize_t>(valid.size()), &mapped, options);
  std::string folded = n >= 0 ? std::string(reinterpret_cast<char*>(mapped), static_cast<size_t>(n)) : valid;
  std::free(mapped);
  // Collapse white space (ASCII and the line separator NLF2LS produced) to single spaces.
  std::string out;
  out.reserve(folded.size());
  bool space = true;
  for (size_t i = 0; i < folded.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(folded[i]);
    bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (c == 0xE2 && i + 2 < folded.size() && static_cast<unsigned char>(folded[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(folded[i + 2]) == 0xA8 || static_cast<unsigned char>(folded[i + 2]) == 0xA9)) {
      ws = true;
      i += 2;
    }
    if (ws) {
      if (!space) out += ' ';
      space = true;
    } else {
      out += static_cast<char>(c);
      space = false;
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

void decode_utf8(std::string_view s, std::u32string& out) {
  out.clear();
  auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
  while (left > 0) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0) {
      cp = 0xFFFD;
      n = 1;
    }
    out.push_back(static_cast<char32_t>(cp));
    p += n;
    left -= n;
  }
}

void append_utf8(char32_t cp, std::string& out) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

bool is_han(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2A700 && cp <= 0x2EBEF);
}

bool contains_han(std::string_view s) {
  std::u32string cps;
  decode_utf8(s, cps);
  for (char32_t c : cps)
    if (is_han(c)) return true;
  return false;
}

std::string han_alias(std::string_view aliases) {
  for (const auto& alias : split_aliases(aliases))
    if (contains_han(alias)) return alias;
  return "";
}

}  // namespace persona::text
