#pragma once
// A Kafka topic read through a consumer group, for persona consume (librdkafka). Offsets are
// committed only for entries stored, and only as far as every entry before them in the partition
// is stored too: a partition's committed offset never passes an entry that is not in the store.
// Brokers going down and coming back are librdkafka's to handle; meanwhile trouble() says so.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "persona/io/stream_source.h"

struct rd_kafka_s;

namespace persona::io {

struct KafkaStreamOptions {
  std::string brokers;   // host:port[,host:port...]
  std::string topic;
  std::string group;     // the consumer group: new groups start at the topic's beginning
  std::string consumer;  // this consumer's name (client.id; default: the host's name)
  // Further librdkafka settings (session.timeout.ms, security.protocol, ...), from the URL's query.
  std::vector<std::pair<std::string, std::string>> settings;
};

// "kafka://BROKER[:PORT][,BROKER[:PORT]...]/TOPIC[?setting=value&...]".
KafkaStreamOptions parse_kafka_url(const std::string& url);

class KafkaStream final : public StreamSource {
 public:
  explicit KafkaStream(KafkaStreamOptions options);
  ~KafkaStream() override;
  const std::string& name() const override { return name_; }
  const std::string& consumer() const override { return options_.consumer; }
  std::string position(const store::StreamEntryKey& key) const override;
  std::vector<StreamEntry> poll(size_t max, std::chrono::milliseconds wait) override;
  void acknowledge(const std::vector<store::StreamEntryKey>& keys) override;
  std::vector<store::StreamEntryKey> watermarks() override;
  int64_t lag() override;
  std::string trouble() const override;

  // librdkafka's callbacks (not for callers).
  void on_error(int code, const char* reason);
  void on_rebalance(int code, void* partitions);

 private:
  KafkaStreamOptions options_;
  std::string name_;
  rd_kafka_s* kafka_ = nullptr;
  // Per partition: offsets delivered and not yet committed, each with whether it is stored.
  std::map<int32_t, std::map<int64_t, bool>> delivered_;
  mutable std::mutex trouble_mutex_;
  std::string trouble_;
  bool fatal_ = false;
};

}  // namespace persona::io
