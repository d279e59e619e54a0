#pragma once
// A progress line for long jobs: done/total, rate and ETA, redrawn at most 10 times a second
// on a terminal; silent when stderr is not a terminal or when quiet is asked for.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

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

// A one-line status for a job with a time budget: "LABEL: STAGE · 42 s of 120 s", redrawn every
// half second by its own thread (a stage can run for minutes without a word from it), cleared
// when the job ends. Silent when stderr is not a terminal or `enabled` is false.
class StatusLine {
 public:
  StatusLine(std::string label, double budget_s, bool enabled = true);
  ~StatusLine();
  void stage(const std::string& stage);  // thread-safe

 private:
  void draw();
  std::string label_, stage_;
  double budget_s_;
  bool enabled_, stopping_ = false;
  std::chrono::steady_clock::time_point start_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::thread ticker_;
};

}  // namespace persona
