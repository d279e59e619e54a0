#pragma once
// What the consume tests share (Redis and Kafka): a source's config, a known sequence of records
// with duplicates, missing users and one that is not JSON, the same ingested from a file, the
// stored events as a sorted list, a consumer on a thread of its own, and a stream that never
// acknowledges (a consumer that dies after storing).
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "persona/io/stream_source.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/consume.h"
#include "persona/pipeline/run.h"
#include "persona/store/store.h"
#include "support/test_support.h"

namespace persona::pipeline {

inline const char* kConfig = R"(
[store]
path = "file.db"
[[sources]]
name = "events"
path = "events.jsonl"
[sources.event]
user = "user"
item = "item"
type = "type"
timestamp = { column = "ts", format = "unix" }
[[sources.clean]]
rule = "exact_duplicate"
[[sources.clean]]
rule = "missing"
fields = ["event.user"]
)";

// Every 10th duplicates the one before, every 37th has no user; the 101st is not JSON.
inline std::vector<std::string> event_lines(int n, int first = 0) {
  std::vector<std::string> out;
  for (int i = first; i < first + n; ++i) {
    if (i % 10 == 9 && !out.empty()) {
      out.push_back(out.back());
      continue;
    }
    if (i == 101) {
      out.push_back("{\"user\": \"u1\", \"item\": ");
      continue;
    }
    out.push_back(fmt::format(R"({{"user": "{}", "item": "i{}", "type": "{}", "ts": {}}})", i % 37 == 0 ? "" : fmt::format("u{}", i % 50),
                              i % 30, i % 4 ? "view" : "purchase", 1700000000 + i));
  }
  return out;
}

// The lines ingested from a file (the config's events.jsonl, in `dir`) into a store of their own:
// what a stream of the same records must store.
inline std::unique_ptr<store::Store> ingested_as_a_file(test::TempDir& dir, const Config& config,
                                                        const std::vector<std::string>& lines) {
  std::string file;
  for (const auto& l : lines) file += l + "\n";
  test::write_file(dir.file("events.jsonl"), file);
  auto store = store::open_store("sqlite:" + dir.file("file.db"));
  ingest(config, *store, {.progress = false});
  return store;
}

// Records every rule keeps, each a different event.
inline std::vector<std::string> clean_lines(int first, int n) {
  std::vector<std::string> out;
  for (int i = first; i < first + n; ++i)
    out.push_back(fmt::format(R"({{"user": "u{}", "item": "i{}", "type": "view", "ts": {}}})", i, i % 7, 1700000000 + i));
  return out;
}

// Runs `consume` on a thread of its own, keeping each progress report, until stop().
class ConsumerThread {
 public:
  template <typename Run>
  explicit ConsumerThread(Run run)
      : thread_([this, run] {
          run(stop_, [this](const ConsumeReport& r) {
            std::lock_guard lock(mutex_);
            last_ = r;
            ++reports_;
          });
        }) {}
  ~ConsumerThread() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Waits until a report satisfies `done`, at most `limit`.
  template <typename Done>
  bool wait_for(Done done, std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      {
        std::lock_guard lock(mutex_);
        if (reports_ > 0 && done(last_)) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  ConsumeReport last_;
  int64_t reports_ = 0;
  std::thread thread_;
};

inline std::vector<std::tuple<std::string, std::string, int, int64_t>> events_of(store::Store& s) {
  const auto e = s.events();
  std::vector<std::tuple<std::string, std::string, int, int64_t>> out;
  for (size_t i = 0; i < e.size(); ++i) out.emplace_back(e.user_ids[e.user[i]], e.item_ids[e.item[i]], e.type[i], e.timestamp[i]);
  std::sort(out.begin(), out.end());
  return out;
}

// A consumer that stored its batches but died before acknowledging them: its entries come again
// (to itself after a restart, or to another that claims them) and are not stored twice.
class ForgetsToAcknowledge final : public io::StreamSource {
 public:
  explicit ForgetsToAcknowledge(io::StreamSource& inner) : inner_(inner) {}
  const std::string& name() const override { return inner_.name(); }
  const std::string& consumer() const override { return inner_.consumer(); }
  std::string position(const store::StreamEntryKey& key) const override { return inner_.position(key); }
  std::vector<io::StreamEntry> poll(size_t max, std::chrono::milliseconds wait) override { return inner_.poll(max, wait); }
  void acknowledge(const std::vector<store::StreamEntryKey>&) override {}
  std::vector<store::StreamEntryKey> watermarks() override { return inner_.watermarks(); }
  int64_t lag() override { return inner_.lag(); }

 private:
  io::StreamSource& inner_;
};

}  // namespace persona::pipeline
