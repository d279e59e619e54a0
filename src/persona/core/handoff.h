#pragma once
// Hands items from one producer thread to one consumer, at most `depth` waiting at a time, and
// recycles the consumer's finished items back to the producer (big buffers are reused, not
// reallocated). An exception on the producer's side reaches the consumer after the items that
// came before it. Used by the read-ahead stages of io.
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <vector>

namespace persona {

template <typename T>
class Handoff {
 public:
  explicit Handoff(size_t depth) : depth_(depth) {}

  // Producer: an item to fill, recycled when one is free.
  T take_empty() {
    std::lock_guard lock(mutex_);
    if (free_.empty()) return T();
    T item = std::move(free_.back());
    free_.pop_back();
    return item;
  }
  // Producer: waits while `depth` items are waiting. False when the consumer has stopped.
  bool push(T item) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return stopped_ || ready_.size() < depth_; });
    if (stopped_) return false;
    ready_.push_back(std::move(item));
    changed_.notify_all();
    return true;
  }
  // Producer: no more items (with the error that ended them, if any).
  void finish(std::exception_ptr error = nullptr) {
    std::lock_guard lock(mutex_);
    finished_ = true;
    error_ = error;
    changed_.notify_all();
  }

  // Consumer: the next item; nullopt once all are taken; rethrows the producer's error then.
  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !ready_.empty() || finished_; });
    if (ready_.empty()) {
      if (error_) std::rethrow_exception(error_);
      return std::nullopt;
    }
    T item = std::move(ready_.front());
    ready_.pop_front();
    changed_.notify_all();
    return item;
  }
  // Consumer: an item waiting now, without blocking.
  bool has_ready() {
    std::lock_guard lock(mutex_);
    return !ready_.empty() || finished_;
  }
  void recycle(T item) {
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(item));
  }
  // Consumer: stop the producer (its push returns false from now on).
  void stop() {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    changed_.notify_all();
  }
  // After stop() and the producer's exit: start over empty (recycled items are kept).
  void reset() {
    std::lock_guard lock(mutex_);
    for (auto& item : ready_) free_.push_back(std::move(item));
    ready_.clear();
    stopped_ = finished_ = false;
    error_ = nullptr;
  }

 private:
  const size_t depth_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<T> ready_;
  std::vector<T> free_;
  bool stopped_ = false, finished_ = false;
  std::exception_ptr error_;
};

}  // namespace persona
