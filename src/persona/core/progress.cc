#include "persona/core/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace persona {
namespace {
std::string human(double v, const std::string& unit) {
  const char* prefixes[] = {"", "k", "M", "G", "T"};
  int i = 0;
  while (v >= 1000 && i < 4) v /= 1000, ++i;
  return fmt::format("{:.1f} {}{}", v, prefixes[i], unit);
}
}  // namespace

Progress::Progress(std::string label, uint64_t total, std::string unit, bool enabled)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled && terminal()),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() { finish(); }

bool Progress::terminal() { return isatty(STDERR_FILENO) == 1; }

void Progress::update(uint64_t done, uint64_t rows) {
  done_ = done;
  rows_ = rows;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(false);
}

void Progress::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  draw(true);
  std::fputc('\n', stderr);
}

void Progress::draw(bool final) {
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = secs > 0 ? done_ / secs : 0;
  std::string line = fmt::format("\r{} ", label_);
  if (total_ > 0) {
    const double frac = std::min(1.0, static_cast<double>(done_) / total_);
    const int width = 24, filled = static_cast<int>(frac * width);
    line += "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
    line += fmt::format("{:3.0f}% ", frac * 100);
  }
  line += human(rate, unit_ + "/s");
  if (rows_ > 0) line += fmt::format("  {} rows ({}/s)", rows_, human(secs > 0 ? rows_ / secs : 0, ""));
  if (!final && total_ > 0 && rate > 0) line += fmt::format("  ETA {:.0f}s", (total_ - std::min(done_, total_)) / rate);
  if (final) line += fmt::format("  {:.1f}s", secs);
  line += "\x1b[K";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

StatusLine::StatusLine(std::string label, double budget_s, bool enabled)
    : label_(std::move(label)), budget_s_(budget_s), enabled_(enabled && Progress::terminal()),
      start_(std::chrono::steady_clock::now()) {
  if (!enabled_) return;
  ticker_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      draw();
      wake_.wait_for(lock, std::chrono::milliseconds(500));
    }
  });
}

StatusLine::~StatusLine() {
  if (!enabled_) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  ticker_.join();
  std::fputs("\r\x1b[K", stderr);
  std::fflush(stderr);
}

void StatusLine::stage(const std::string& stage) {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  stage_ = stage;
  draw();
}

void StatusLine::draw() {
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::string line = fmt::format("\r{}: {} · {:.0f} s of {:.0f} s\x1b[K", label_, stage_, secs, budget_s_);
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace persona
