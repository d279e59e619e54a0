#include "persona/core/unicode.h"

#include <cstdlib>
#include <memory>

#include <utf8proc.h>

namespace persona {

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
  while (left > 0) {
    if (*p < 0x80) {  // ASCII fast path
      ++p, --left;
      continue;
    }
    utf8proc_int32_t cp;
    const utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n < 0) return false;
    p += n, left -= n;
  }
  return true;
}

static bool plain_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

std::string nfkc(std::string_view s) {
  if (plain_ascii(s)) return std::string(s);
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                          static_cast<utf8proc_ssize_t>(s.size()), &out,
                                          static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
  if (n < 0) return std::string(s);
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> guard(out, &std::free);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

bool clean_text(std::string& s) {
  std::string normal = nfkc(s);
  std::string out;
  out.reserve(normal.size());
  bool pending_space = false;
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(normal.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(normal.size());
  while (left > 0) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n < 0) {  // invalid byte: replaced, so the output is always valid UTF-8
      if (pending_space) out += ' ';
      pending_space = false;
      out += "\xEF\xBF\xBD";
      ++p, --left;
      continue;
    }
    const auto category = utf8proc_category(cp);
    const bool space = cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || category == UTF8PROC_CATEGORY_ZS ||
                       category == UTF8PROC_CATEGORY_ZL || category == UTF8PROC_CATEGORY_ZP;
    if (space) {
      pending_space = !out.empty();
    } else if (category != UTF8PROC_CATEGORY_CC && !(category == UTF8PROC_CATEGORY_CF && cp != 0x200D)) {
      if (pending_space) out += ' ';
      pending_space = false;
      out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    }
    p += n, left -= n;
  }
  const bool changed = out != s;
  s = std::move(out);
  return changed;
}

}  // namespace persona
