#include "persona/core/json.h"

#include <fmt/format.h>

namespace persona {
namespace {
struct TooDeep {};
}  // namespace

std::string json_error_text(const nlohmann::json::exception& e) {
  // "[json.exception.parse_error.101] parse error at line 1, column 3: ..." -> from "parse error";
  // "[json.exception.out_of_range.406] number overflow parsing '1e999'" -> from "number".
  std::string what = e.what();
  const auto close = what.find("] ");
  return close == std::string::npos ? what : what.substr(close + 2);
}

std::optional<nlohmann::json> parse_json(std::string_view text, std::string* error, int max_depth) {
  // The parser callback sees every container as it opens, with its depth: deeper than the bound
  // stops the parse before anything is built below it.
  const nlohmann::json::parser_callback_t bound = [max_depth](int depth, nlohmann::json::parse_event_t event,
                                                              nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
        depth >= max_depth)
      throw TooDeep{};
    return true;
  };
  try {
    auto j = nlohmann::json::parse(text.begin(), text.end(), bound, true);
    return j;
  } catch (const TooDeep&) {
    if (error) *error = fmt::format("nested deeper than {} levels", max_depth);
  } catch (const nlohmann::json::exception& e) {
    // parse_error, and out_of_range for a number too large for a double ("1e99999").
    if (error) *error = fmt::format("not valid JSON: {}", json_error_text(e));
  }
  return std::nullopt;
}

nlohmann::json parse_json_or_throw(std::string_view text, const Location& where, const std::string& hint, int max_depth) {
  std::string error;
  auto j = parse_json(text, &error, max_depth);
  if (!j) throw Error(error, where, hint);
  return std::move(*j);
}

std::string dump_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string json_excerpt(const nlohmann::json& value, size_t max_bytes) {
  std::string s = value.is_string() ? value.get<std::string>() : dump_json(value);
  if (s.size() > max_bytes) {
    size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 sequence
    s = s.substr(0, cut) + "...";
  }
  return s;
}

}  // namespace persona
