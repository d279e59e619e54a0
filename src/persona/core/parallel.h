#pragma once
// Splits a loop over [0, n) into contiguous chunks, one per thread: for work that is the same for
// every item (vectorising, classifying texts), where a plain split balances as well as a queue.
#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

namespace persona {

// Calls fn(lo, hi) on `threads` threads at most, and on fewer when there are fewer than
// `min_per_thread` items each (a thread costs tens of microseconds to start). Runs on the
// caller's thread when one suffices. fn must not throw (catch inside it).
template <typename Fn>
void parallel_chunks(size_t n, int threads, size_t min_per_thread, Fn&& fn) {
  const size_t most = n / std::max<size_t>(1, min_per_thread) + 1;
  const size_t t = std::clamp<size_t>(static_cast<size_t>(std::max(1, threads)), 1, most);
  if (t == 1) {
    fn(size_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(t - 1);
  for (size_t k = 1; k < t; ++k) pool.emplace_back([&, k] { fn(n * k / t, n * (k + 1) / t); });
  fn(size_t{0}, n / t);
  for (auto& th : pool) th.join();
}

}  // namespace persona
