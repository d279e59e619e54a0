#pragma once
// A Redis stream read through a consumer group (XREADGROUP), for persona consume: entries left
// pending at this consumer first (a restart after a crash), entries idle too long at another
// consumer claimed (XAUTOCLAIM: it died), then new ones. Acknowledged (XACK) only once stored.
// A deleted stream or group is created again and reading goes on.
#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "persona/io/stream_source.h"

namespace persona::redis {
class Connection;
}

namespace persona::io {

struct RedisStreamOptions {
  std::string url;       // redis://host[:port][/db] (the stream's key is not part of it)
  std::string key;       // the stream's key
  std::string group;     // the consumer group (created at the stream's start when missing)
  std::string consumer;  // this consumer's name in the group (default: the host's name)
  std::chrono::milliseconds claim_after{30000};  // an entry idle this long at another consumer is claimed
};

// "redis-stream://host[:port][/db]/key": the Redis URL and the key.
RedisStreamOptions parse_redis_stream_url(const std::string& url);

class RedisStream final : public StreamSource {
 public:
  explicit RedisStream(RedisStreamOptions options);
  ~RedisStream() override;
  const std::string& name() const override { return name_; }
  const std::string& consumer() const override { return options_.consumer; }
  std::string position(const store::StreamEntryKey& key) const override;
  std::vector<StreamEntry> poll(size_t max, std::chrono::milliseconds wait) override;
  void acknowledge(const std::vector<store::StreamEntryKey>& keys) override;
  std::vector<store::StreamEntryKey> watermarks() override;
  int64_t lag() override;

 private:
  redis::Connection& connection();  // connected again when it was lost
  void ensure_group();
  std::vector<StreamEntry> poll_reachable(size_t max, std::chrono::milliseconds wait);
  std::vector<store::StreamEntryKey> watermarks_reachable();
  std::vector<StreamEntry> read(const std::string& from, size_t max, std::chrono::milliseconds wait);
  std::vector<StreamEntry> claim(size_t max);

  RedisStreamOptions options_;
  std::string name_;
  std::unique_ptr<redis::Connection> conn_;
  bool own_pending_done_ = false;  // this consumer's entries pending from an earlier run were read
  std::string own_pending_after_ = "0";
  std::string claim_from_ = "0-0";
  std::chrono::steady_clock::time_point next_claim_{};
  // Entries this consumer was given and has not acknowledged (a batch being written): XAUTOCLAIM
  // takes idle entries from any consumer, this one too, and these are not to come back to it.
  std::set<store::StreamEntryKey> in_hand_;
};

}  // namespace persona::io
