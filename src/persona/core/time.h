#pragma once
// Timestamps are int64 seconds since the Unix epoch, UTC, everywhere inside Persona.
// GCC 12's <chrono> has no parse(), and strptime is locale-bound and slow, so timestamp
// parsing is a small format-driven parser here.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace persona {

int64_t days_from_civil(int year, unsigned month, unsigned day);
void civil_from_days(int64_t days, int& year, unsigned& month, unsigned& day);

// "2011-12-09 12:50:00" (UTC).
std::string format_timestamp(int64_t unix_seconds);
// "2011-12-09".
std::string format_date(int64_t unix_seconds);

// The times Persona accepts for events, texts and sign-ups; a value outside is rejected with a
// reason. A typo (year 9999), milliseconds read as seconds or INT64_MAX would otherwise become a
// "latest event" that moves every recency, window and retraining. [ingest] time_window sets it.
struct TimeWindow {
  int64_t min = 0;           // 1970-01-01 00:00:00 UTC
  int64_t max = 4102444800;  // 2100-01-01 00:00:00 UTC, excluded
  bool contains(int64_t t) const { return t >= min && t < max; }
  // "from 1970-01-01 to 2100-01-01"
  std::string describe() const;
  bool operator==(const TimeWindow& o) const { return min == o.min && max == o.max; }
};

// The first second after `t` (t itself at the end of time: a store may hold INT64_MAX from before
// times were checked, and t + 1 would wrap round to the year -292277022657).
inline int64_t time_after(int64_t t) { return t == INT64_MAX ? t : t + 1; }

class TimestampParser {
 public:
  // `format` is one of:
  //   "iso8601" (also "auto"): 2011-12-09, 2011-12-09 12:50, 2011-12-09T12:50:00.123Z, +08:00 ...
  //   "unix" / "unix_ms": integer (or decimal) seconds / milliseconds since the epoch
  //   a pattern: %Y %y %m %d %H %M %S %f (fraction) %b (Jan..Dec) %z (+hh:mm) %% and literals;
  //   numeric fields accept one or two digits, so "%m/%d/%Y %H:%M" reads "12/1/2010 8:26".
  // Several formats separated by "|" are tried in turn: "iso8601|%m/%d/%Y %H:%M".
  explicit TimestampParser(std::string format = "iso8601");
  std::optional<int64_t> parse(std::string_view text) const;
  const std::string& format() const { return format_; }

  // Throws persona::Error when a pattern has an unknown directive.
  static void validate(const std::string& format);

 private:
  enum class Kind { Iso, Unix, UnixMs, Pattern };
  struct Alternative {
    Kind kind;
    std::string pattern;
  };
  std::string format_;
  std::vector<Alternative> alternatives_;
  // Logs repeat the same timestamp on consecutive rows (every line of an invoice): the last
  // answer is kept. A parser is used by one thread at a time.
  mutable std::string last_text_;
  mutable std::optional<int64_t> last_value_;
  std::optional<int64_t> parse_uncached(std::string_view text) const;
  static std::optional<int64_t> parse_pattern(const std::string& pattern, std::string_view text);
};

}  // namespace persona
