#pragma once
// Live event streams a consumer reads (persona consume): a Redis stream through a consumer group,
// or a Kafka topic. One interface, so that the consumer (pipeline/consume.h) maps, cleans and
// stores every kind the same way, exactly once (docs/operations.md, "Streams").
// Work in progress (branch wip/issue-22): the interface only; see WIP-issue-22.md.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "persona/store/store.h"

namespace persona::io {

// One entry as delivered: where it is (its key in the stream), and its record as one JSON object
// (the fields of a Redis entry, or its one field holding a JSON object; a Kafka message's value).
struct StreamEntry {
  store::StreamEntryKey key;
  std::string json;
  std::string problem;  // non-empty: not a record (its bytes in `json`); goes to the reject log
};

class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // The stream and group as stored with the entries ("redis-stream://host/key#group").
  virtual const std::string& name() const = 0;
  // This consumer's name in the group: each consumer has an ingest record of its own (its own
  // line numbers), while the entries' keys are the stream's, whoever stored them.
  virtual const std::string& consumer() const = 0;
  // Up to `max` entries: first any left pending at this consumer or claimed from a dead one,
  // then new ones; waits at most `wait` when there are none.
  virtual std::vector<StreamEntry> poll(size_t max, std::chrono::milliseconds wait) = 0;
  // Acknowledges entries whose effect is committed to the store.
  virtual void acknowledge(const std::vector<store::StreamEntryKey>& keys) = 0;
  // Below these keys, nothing will be delivered again (one per part): the stored keys under
  // them can be forgotten.
  virtual std::vector<store::StreamEntryKey> watermarks() = 0;
  // Entries not yet delivered to the group (Redis 7's lag; Kafka's high watermark minus position).
  virtual int64_t lag() = 0;
};

}  // namespace persona::io
