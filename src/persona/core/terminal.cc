#include "persona/core/terminal.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <streambuf>

#include <fmt/format.h>

namespace persona {
namespace {

// The length of the UTF-8 sequence starting with `c` (0: not a lead byte).
size_t sequence_length(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

bool valid_sequence(std::string_view s) {
  const auto c0 = static_cast<unsigned char>(s[0]);
  for (size_t k = 1; k < s.size(); ++k)
    if ((static_cast<unsigned char>(s[k]) & 0xC0) != 0x80) return false;
  if (s.size() >= 2) {
    const auto c1 = static_cast<unsigned char>(s[1]);
    if ((c0 == 0xE0 && c1 < 0xA0) || (c0 == 0xED && c1 >= 0xA0) || (c0 == 0xF0 && c1 < 0x90) || (c0 == 0xF4 && c1 >= 0x90))
      return false;
  }
  return true;
}

}  // namespace

std::string TerminalFilter::filter(std::string_view chunk) {
  std::string in = pending_ + std::string(chunk);
  pending_.clear();
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7F)) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    const size_t n = sequence_length(c);
    if (n > 1 && i + n > in.size()) {  // cut off by the end of this write: wait for the rest
      if (valid_sequence(std::string_view(in).substr(i))) {
        pending_ = in.substr(i);
        break;
      }
    }
    if (n <= 1 || i + n > in.size() || !valid_sequence(std::string_view(in).substr(i, n))) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    if (n == 2 && c == 0xC2 && static_cast<unsigned char>(in[i + 1]) < 0xA0) {  // C1 controls, U+0080..U+009F
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(in[i + 1]));
    } else {
      out.append(in, i, n);
    }
    i += n;
  }
  return out;
}

std::string TerminalFilter::finish() {
  std::string out;
  for (unsigned char c : pending_) out += fmt::format("\\x{:02x}", c);
  pending_.clear();
  return out;
}

std::string terminal_safe(std::string_view text) {
  TerminalFilter f;
  std::string out = f.filter(text);
  return out + f.finish();
}

namespace {

std::FILE* terminal = nullptr;  // the real standard output

ssize_t write_filtered(void* cookie, const char* data, size_t size) {
  auto* filter = static_cast<TerminalFilter*>(cookie);
  const std::string out = filter->filter(std::string_view(data, size));
  if (!out.empty() && std::fwrite(out.data(), 1, out.size(), terminal) != out.size()) return -1;
  std::fflush(terminal);
  return static_cast<ssize_t>(size);
}

int close_filtered(void* cookie) {
  const std::string rest = static_cast<TerminalFilter*>(cookie)->finish();
  std::fwrite(rest.data(), 1, rest.size(), terminal);
  std::fflush(terminal);
  return 0;
}

// std::cout into the filtered stdout, so the two keep their order.
class StdioBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c == EOF ? 0 : std::fputc(c, stdout); }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    return static_cast<std::streamsize>(std::fwrite(s, 1, static_cast<size_t>(n), stdout));
  }
  int sync() override { return std::fflush(stdout); }
};

}  // namespace

void filter_stdout_on_terminal() {
  if (terminal || !::isatty(STDOUT_FILENO)) return;
  std::fflush(stdout);
  terminal = stdout;
  cookie_io_functions_t io{};
  io.write = write_filtered;
  io.close = close_filtered;
  static TerminalFilter filter;  // for the life of the process, as stdout is
  std::FILE* filtered = fopencookie(&filter, "w", io);
  if (!filtered) {
    terminal = nullptr;
    return;
  }
  std::setvbuf(filtered, nullptr, _IOLBF, 1 << 14);  // a line at a time, as a terminal expects
  stdout = filtered;  // glibc's stdout is an assignable FILE*
  static auto* buffer = new StdioBuffer();  // never destroyed: std::cout may flush at the very end
  std::cout.rdbuf(buffer);
}

}  // namespace persona
