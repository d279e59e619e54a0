#include "persona/core/time.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <strings.h>

#include <fmt/format.h>

#include "persona/core/error.h"

namespace persona {

// Howard Hinnant's civil-date algorithms (public domain), the standard way to do this.
int64_t days_from_civil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int>(yoe + era * 400 + (m <= 2));
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

std::string format_timestamp(int64_t t) {
  const int64_t days = floor_div(t, 86400);
  const int64_t secs = t - days * 86400;
  int y; unsigned m, d;
  civil_from_days(days, y, m, d);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", y, m, d, secs / 3600, secs / 60 % 60, secs % 60);
}

std::string format_date(int64_t t) { return format_timestamp(t).substr(0, 10); }

std::string TimeWindow::describe() const { return fmt::format("from {} to {}", format_date(min), format_date(max)); }

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads between min and max digits at text[pos]; advances pos.
bool read_int(std::string_view text, size_t& pos, int min_digits, int max_digits, int& out) {
  int n = 0, value = 0;
  while (n < max_digits && pos < text.size() && is_digit(text[pos])) {
    value = value * 10 + (text[pos] - '0');
    ++pos, ++n;
  }
  out = value;
  return n >= min_digits;
}

bool valid_date(int y, int m, int d) {
  static const int days_in[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1) return false;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= days_in[m - 1] + (m == 2 && leap);
}

std::optional<int64_t> compose(int y, int mo, int d, int h, int mi, int s, int offset_s) {
  if (!valid_date(y, mo, d) || h > 23 || mi > 59 || s > 60) return std::nullopt;
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset_s;
}

// Optional "Z", "+hh:mm", "+hhmm", "+hh" at pos.
bool read_offset(std::string_view text, size_t& pos, int& offset_s) {
  offset_s = 0;
  if (pos >= text.size()) return true;
  if (text[pos] == 'Z' || text[pos] == 'z') { ++pos; return true; }
  if (text[pos] != '+' && text[pos] != '-') return false;
  const int sign = text[pos] == '-' ? -1 : 1;
  ++pos;
  int hh, mm = 0;
  if (!read_int(text, pos, 2, 2, hh)) return false;
  if (pos < text.size() && text[pos] == ':') ++pos;
  if (pos < text.size()) {
    if (!read_int(text, pos, 2, 2, mm)) return false;
  }
  // Real offsets run from -12:00 to +14:00; "+99:99" is a typo, not four days.
  if (mm > 59 || hh * 60 + mm > (sign > 0 ? 14 * 60 : 12 * 60)) return false;
  offset_s = sign * (hh * 3600 + mm * 60);
  return true;
}

void skip_fraction(std::string_view text, size_t& pos) {
  if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
    ++pos;
    while (pos < text.size() && is_digit(text[pos])) ++pos;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<int64_t> parse_iso(std::string_view text) {
  size_t pos = 0;
  int y, mo, d, h = 0, mi = 0, s = 0, off = 0;
  if (!read_int(text, pos, 4, 4, y)) return std::nullopt;
  const char sep = pos < text.size() ? text[pos] : 0;
  if (sep != '-' && sep != '/') return std::nullopt;
  ++pos;
  if (!read_int(text, pos, 1, 2, mo) || pos >= text.size() || text[pos] != sep) return std::nullopt;
  ++pos;
  if (!read_int(text, pos, 1, 2, d)) return std::nullopt;
  if (pos < text.size() && (text[pos] == 'T' || text[pos] == ' ')) {
    ++pos;
    if (!read_int(text, pos, 1, 2, h) || pos >= text.size() || text[pos] != ':') return std::nullopt;
    ++pos;
    if (!read_int(text, pos, 2, 2, mi)) return std::nullopt;
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      if (!read_int(text, pos, 2, 2, s)) return std::nullopt;
      skip_fraction(text, pos);
    }
    if (pos < text.size() && text[pos] == ' ') ++pos;
    if (!read_offset(text, pos, off)) return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  return compose(y, mo, d, h, mi, s, off);
}

std::optional<int64_t> parse_epoch(std::string_view text, double scale) {
  if (text.empty()) return std::nullopt;
  int64_t whole = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), whole);
  if (ec != std::errc()) return std::nullopt;
  if (p == text.data() + text.size()) return scale == 1 ? whole : static_cast<int64_t>(std::floor(whole / scale));
  double value = 0;
  auto [p2, ec2] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec2 != std::errc() || p2 != text.data() + text.size() || !std::isfinite(value)) return std::nullopt;
  return static_cast<int64_t>(std::floor(value / scale));
}

const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};

}  // namespace

namespace {
std::vector<std::string> split_alternatives(const std::string& format) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t bar = format.find('|', start);
    out.push_back(format.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
    if (bar == std::string::npos) return out;
    start = bar + 1;
  }
}
}  // namespace

TimestampParser::TimestampParser(std::string format) : format_(std::move(format)) {
  validate(format_);
  for (auto& f : split_alternatives(format_)) {
    if (f.empty() || f == "iso8601" || f == "auto") alternatives_.push_back({Kind::Iso, ""});
    else if (f == "unix") alternatives_.push_back({Kind::Unix, ""});
    else if (f == "unix_ms") alternatives_.push_back({Kind::UnixMs, ""});
    else alternatives_.push_back({Kind::Pattern, f});
  }
}

void TimestampParser::validate(const std::string& format) {
  for (const auto& f : split_alternatives(format)) {
    if (f.empty() || f == "iso8601" || f == "auto" || f == "unix" || f == "unix_ms") continue;
    for (size_t i = 0; i < f.size(); ++i) {
      if (f[i] != '%') continue;
      if (i + 1 >= f.size() || !std::strchr("YymdHMSfbz%", f[i + 1]))
        throw Error(fmt::format("unknown timestamp directive '%{}' in format {}", i + 1 < f.size() ? f[i + 1] : ' ',
                                quote_value(format)),
                    {}, "use %Y %y %m %d %H %M %S %f %b %z, or iso8601, unix, unix_ms");
      ++i;
    }
  }
}

std::optional<int64_t> TimestampParser::parse(std::string_view text) const {
  text = trim(text);
  if (!last_text_.empty() && text == last_text_) return last_value_;
  last_text_.assign(text);
  last_value_ = parse_uncached(text);
  return last_value_;
}

std::optional<int64_t> TimestampParser::parse_uncached(std::string_view text) const {
  for (const auto& a : alternatives_) {
    std::optional<int64_t> t;
    switch (a.kind) {
      case Kind::Iso: t = parse_iso(text); break;
      case Kind::Unix: t = parse_epoch(text, 1); break;
      case Kind::UnixMs: t = parse_epoch(text, 1000); break;
      case Kind::Pattern: t = parse_pattern(a.pattern, text); break;
    }
    if (t) return t;
  }
  return std::nullopt;
}

std::optional<int64_t> TimestampParser::parse_pattern(const std::string& f, std::string_view text) {
  int y = 1970, mo = 1, d = 1, h = 0, mi = 0, s = 0, off = 0;
  size_t pos = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') {
      if (pos >= text.size() || text[pos] != f[i]) return std::nullopt;
      ++pos;
      continue;
    }
    const char directive = f[++i];
    bool ok = true;
    switch (directive) {
      case 'Y': ok = read_int(text, pos, 4, 4, y); break;
      case 'y': ok = read_int(text, pos, 2, 2, y); y += y < 69 ? 2000 : 1900; break;
      case 'm': ok = read_int(text, pos, 1, 2, mo); break;
      case 'd': ok = read_int(text, pos, 1, 2, d); break;
      case 'H': ok = read_int(text, pos, 1, 2, h); break;
      case 'M': ok = read_int(text, pos, 1, 2, mi); break;
      case 'S': ok = read_int(text, pos, 1, 2, s); break;
      case 'f': while (pos < text.size() && is_digit(text[pos])) ++pos; break;
      case 'z': ok = read_offset(text, pos, off); break;
      case 'b': {
        ok = false;
        if (pos + 3 <= text.size()) {
          for (int k = 0; k < 12; ++k) {
            if (strncasecmp(text.data() + pos, kMonths[k], 3) == 0) { mo = k + 1; ok = true; pos += 3; break; }
          }
        }
        break;
      }
      case '%': ok = pos < text.size() && text[pos++] == '%'; break;
      default: ok = false;
    }
    if (!ok) return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  return compose(y, mo, d, h, mi, s, off);
}

}  // namespace persona
