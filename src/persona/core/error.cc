#include "persona/core/error.h"

#include <fmt/format.h>

namespace persona {
namespace {
std::string compose(const std::string& message, const Location& where, const std::string& hint) {
  std::string out;
  if (!where.file.empty()) {
    out += where.file;
    if (where.line > 0) out += fmt::format(":{}", where.line);
    out += ": ";
  }
  if (!where.field.empty()) out += fmt::format("field '{}': ", where.field);
  out += message;
  if (!where.value.empty()) out += fmt::format(" (value {})", quote_value(where.value));
  if (!hint.empty()) out += fmt::format("; {}", hint);
  return out;
}
}  // namespace

Error::Error(std::string message, Location where, std::string hint)
    : std::runtime_error(compose(message, where, hint)),
      reason_(std::move(message)),
      where_(std::move(where)),
      hint_(std::move(hint)) {}

std::string quote_value(std::string_view value, size_t max_chars) {
  std::string out = "\"";
  size_t shown = 0;
  for (unsigned char c : value) {
    if (shown >= max_chars) {
      out += fmt::format("...\" ({} bytes)", value.size());
      return out;
    }
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
    ++shown;
  }
  out += '"';
  return out;
}

}  // namespace persona
