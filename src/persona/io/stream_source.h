#pragma once
// Live event streams a consumer reads (persona consume): a Redis stream through a consumer group,
// or a Kafka topic. One interface, so that the consumer (pipeline/consume.h) maps, cleans and
// stores every kind the same way, exactly once (docs/operations.md, "Streams").
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "persona/core/error.h"
#include "persona/store/store.h"

namespace persona::io {

// The stream's server cannot be reached just now (down, restarting, the network): the consumer
// waits and reads on when it is back. Nothing is lost: unacknowledged entries are delivered again.
struct StreamUnavailable : Error {
  using Error::Error;
};

// One entry as delivered: where it is (its key in the stream), and its record as one JSON object
// (the fields of a Redis entry, or its one field holding a JSON object; a Kafka message's value).
struct StreamEntry {
  store::StreamEntryKey key;
  std::string json;
  std::string problem;  // non-empty: not a record (its bytes in `json`); goes to the reject log
};

// A consumer's name when none is given: the host's, so that a consumer restarted on the same host
// is the same consumer (Redis: it reads its own pending entries first); --consumer names several
// on one host.
std::string default_consumer_name();

class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // The stream and group as stored with the entries ("redis-stream://host/key#group").
  virtual const std::string& name() const = 0;
  // This consumer's name in the group: each consumer has an ingest record of its own (its own
  // line numbers), while the entries' keys are the stream's, whoever stored them.
  virtual const std::string& consumer() const = 0;
  // An entry's position as people write it ("1712345678901-0"; "partition 2 offset 41"), for the
  // reject log.
  virtual std::string position(const store::StreamEntryKey& key) const = 0;
  // Up to `max` entries: first any left pending at this consumer or claimed from a dead one,
  // then new ones; waits at most `wait` when there are none.
  virtual std::vector<StreamEntry> poll(size_t max, std::chrono::milliseconds wait) = 0;
  // Acknowledges entries whose effect is committed to the store.
  virtual void acknowledge(const std::vector<store::StreamEntryKey>& keys) = 0;
  // Below these keys, nothing will be delivered again (one per part): the stored keys under
  // them can be forgotten.
  virtual std::vector<store::StreamEntryKey> watermarks() = 0;
  // Entries not yet delivered to the group (Redis 7's lag; Kafka's high watermarks minus the
  // positions); -1 when unknown.
  virtual int64_t lag() = 0;
  // What keeps entries from coming just now ("all brokers are down"), or empty.
  virtual std::string trouble() const { return {}; }
};

}  // namespace persona::io
