#pragma once
// User-facing errors. Every message names where the problem is (file, line, field, value)
// and, where we know it, what to do about it.
#include <cstdint>
#include <stdexcept>
#include <string>

namespace persona {

struct Location {
  std::string file;
  int64_t line = 0;  // 1-based physical line; 0 = not applicable
  std::string field;
  std::string value;
};

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message, Location where = {}, std::string hint = {});
  const Location& where() const { return where_; }
  const std::string& hint() const { return hint_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
  Location where_;
  std::string hint_;
};

// A value shown in an error message: quoted, control bytes escaped, cut to a readable length.
std::string quote_value(std::string_view value, size_t max_chars = 80);

}  // namespace persona
