#pragma once
// JSON that Persona reads from outside (HTTP bodies, JSON Lines, model files, key files, logs)
// is parsed with a bound on nesting depth. nlohmann's parser is iterative, but copying, comparing
// and dump()ing a value recurse once per level: 60,000 nested arrays posted to the server
// overflowed the stack when an error message serialised the value. A bound at parse time makes
// every later step safe.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "persona/core/error.h"

namespace persona {

// Deeper nesting is refused everywhere (docs/operations.md, "Limits").
constexpr int kMaxJsonDepth = 64;

// The parsed value, or nullopt with `error` set ("not valid JSON: ..." or "nested deeper than
// 64 levels") for text that is not JSON or nests too deep.
std::optional<nlohmann::json> parse_json(std::string_view text, std::string* error = nullptr,
                                         int max_depth = kMaxJsonDepth);

// nlohmann's message without its "[json.exception.NAME.ID] " prefix.
std::string json_error_text(const nlohmann::json::exception& e);

// The same, throwing persona::Error at `where` (with `hint`) for bad text.
nlohmann::json parse_json_or_throw(std::string_view text, const Location& where, const std::string& hint = {},
                                   int max_depth = kMaxJsonDepth);

// A JSON value as a bounded string: at most `max_bytes` of its compact form (then "..."), with
// invalid UTF-8 replaced. For error messages and reject rows.
std::string json_excerpt(const nlohmann::json& value, size_t max_bytes = 200);

// Compact JSON text with invalid UTF-8 replaced (never throws for bad bytes).
std::string dump_json(const nlohmann::json& value);

}  // namespace persona
