#pragma once
// A progress line for long jobs: done/total, rate and ETA, redrawn at most 10 times a second
// on a terminal; silent when stderr is not a terminal or when quiet is asked for.
#include <chrono>
#include <cstdint>
#include <string>

namespace persona {

class Progress {
 public:
  // `total` in `unit`s (0 = unknown). `enabled` false makes every call a no-op.
  Progress(std::string label, uint64_t total, std::string unit = "B", bool enabled = true);
  ~Progress();
  void update(uint64_t done, uint64_t rows = 0);
  void finish();

  // True when stderr is a terminal: the default for `enabled`, overridden by --quiet.
  static bool terminal();

 private:
  void draw(bool final);
  std::string label_, unit_;
  uint64_t total_, done_ = 0, rows_ = 0;
  bool enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace persona
