#include "persona/io/kafka_stream.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>

#include <fmt/format.h>

namespace persona::io {
namespace {

struct PartitionList {
  rd_kafka_topic_partition_list_t* list;
  explicit PartitionList(int size = 0) : list(rd_kafka_topic_partition_list_new(size)) {}
  explicit PartitionList(rd_kafka_topic_partition_list_t* adopted) : list(adopted) {}
  ~PartitionList() {
    if (list) rd_kafka_topic_partition_list_destroy(list);
  }
  PartitionList(const PartitionList&) = delete;
  PartitionList& operator=(const PartitionList&) = delete;
};

void set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value, const std::string& url) {
  char error[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    throw Error(fmt::format("Kafka setting {}={}: {}", name, value, error), {url},
                "settings in the URL's query are librdkafka's (CONFIGURATION.md), e.g. ?session.timeout.ms=10000");
  }
}

extern "C" void kafka_error_cb(rd_kafka_t*, int code, const char* reason, void* opaque) {
  static_cast<KafkaStream*>(opaque)->on_error(code, reason);
}

extern "C" void kafka_rebalance_cb(rd_kafka_t*, rd_kafka_resp_err_t code, rd_kafka_topic_partition_list_t* partitions,
                                   void* opaque) {
  static_cast<KafkaStream*>(opaque)->on_rebalance(code, partitions);
}

// A message's value as a record: a JSON object (checked by the reader, like a line of a file).
StreamEntry entry_of(const rd_kafka_message_t& m) {
  StreamEntry e;
  e.key = {std::to_string(m.partition), m.offset, 0};
  if (!m.payload || m.len == 0) e.problem = "an empty message (no value)";
  else e.json.assign(static_cast<const char*>(m.payload), m.len);
  return e;
}

}  // namespace

KafkaStreamOptions parse_kafka_url(const std::string& url) {
  constexpr std::string_view scheme = "kafka://";
  constexpr const char* form = "kafka://BROKER[:PORT][,BROKER[:PORT]...]/TOPIC[?setting=value&...]";
  if (url.rfind(scheme, 0) != 0) throw Error("not a Kafka topic", {url}, form);
  KafkaStreamOptions o;
  std::string rest = url.substr(scheme.size());
  if (const auto q = rest.find('?'); q != std::string::npos) {
    std::string query = rest.substr(q + 1);
    rest.resize(q);
    size_t at = 0;
    while (at <= query.size()) {
      const auto amp = std::min(query.find('&', at), query.size());
      const std::string pair = query.substr(at, amp - at);
      const auto eq = pair.find('=');
      if (!pair.empty()) {
        if (eq == std::string::npos || eq == 0) throw Error(fmt::format("not a setting=value: {}", pair), {url}, form);
        o.settings.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
      }
      at = amp + 1;
    }
  }
  const auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size() || rest.find('/', slash + 1) != std::string::npos)
    throw Error("a Kafka URL names its brokers and one topic", {url}, form);
  o.brokers = rest.substr(0, slash);
  o.topic = rest.substr(slash + 1);
  return o;
}

KafkaStream::KafkaStream(KafkaStreamOptions options) : options_(std::move(options)) {
  if (options_.consumer.empty()) options_.consumer = default_consumer_name();
  name_ = fmt::format("kafka://{}/{}#{}", options_.brokers, options_.topic, options_.group);
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", options_.brokers, name_);
  set(conf, "group.id", options_.group, name_);
  set(conf, "client.id", options_.consumer, name_);
  // Offsets are committed by acknowledge(), after the store's commit, never by a timer.
  set(conf, "enable.auto.commit", "false", name_);
  set(conf, "enable.auto.offset.store", "false", name_);
  set(conf, "auto.offset.reset", "earliest", name_);
  set(conf, "log.connection.close", "false", name_);
  // Errors reach trouble() (the progress line says "waiting: ..."), not stderr line by line;
  // ?log_level=7 in the URL brings librdkafka's own log back.
  set(conf, "log_level", "2", name_);
  for (const auto& [k, v] : options_.settings) set(conf, k, v, name_);
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
  rd_kafka_conf_set_rebalance_cb(conf, kafka_rebalance_cb);
  char error[512];
  kafka_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof error);  // owns conf from here, if it succeeds
  if (!kafka_) {
    rd_kafka_conf_destroy(conf);
    throw Error(fmt::format("cannot start a Kafka consumer: {}", error), {name_});
  }
  rd_kafka_poll_set_consumer(kafka_);
  PartitionList topics(1);
  rd_kafka_topic_partition_list_add(topics.list, options_.topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (const auto err = rd_kafka_subscribe(kafka_, topics.list)) {
    rd_kafka_destroy(kafka_);
    throw Error(fmt::format("cannot subscribe to {}: {}", options_.topic, rd_kafka_err2str(err)), {name_});
  }
}

KafkaStream::~KafkaStream() {
  rd_kafka_consumer_close(kafka_);  // leaves the group at once, so that its partitions move without waiting
  rd_kafka_destroy(kafka_);
}

std::string KafkaStream::position(const store::StreamEntryKey& key) const {
  return fmt::format("partition {} offset {}", key.part, key.hi);
}

void KafkaStream::on_error(int code, const char* reason) {
  {
    std::lock_guard lock(trouble_mutex_);
    trouble_ = reason ? reason : rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(code));
  }
  if (code == RD_KAFKA_RESP_ERR__FATAL) fatal_ = true;  // thrown by poll(): not through librdkafka's C frames
}

// Partitions that move away take their delivered offsets with them: what was stored of them is
// found stored by their next owner; what was not is delivered to it again.
void KafkaStream::on_rebalance(int code, void* partitions) {
  auto* list = static_cast<rd_kafka_topic_partition_list_t*>(partitions);
  const bool cooperative = std::string_view(rd_kafka_rebalance_protocol(kafka_)) == "COOPERATIVE";
  if (code == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (cooperative) rd_kafka_error_destroy(rd_kafka_incremental_assign(kafka_, list));
    else rd_kafka_assign(kafka_, list);
    return;
  }
  for (int i = 0; i < list->cnt; ++i) delivered_.erase(list->elems[i].partition);
  if (cooperative) rd_kafka_error_destroy(rd_kafka_incremental_unassign(kafka_, list));
  else rd_kafka_assign(kafka_, nullptr);
}

std::vector<StreamEntry> KafkaStream::poll(size_t max, std::chrono::milliseconds wait) {
  std::vector<StreamEntry> out;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (out.size() < max) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    rd_kafka_message_t* m = rd_kafka_consumer_poll(kafka_, out.empty() ? static_cast<int>(std::max<int64_t>(left.count(), 0)) : 0);
    if (fatal_) {
      if (m) rd_kafka_message_destroy(m);
      char why[512];
      const auto fatal = rd_kafka_fatal_error(kafka_, why, sizeof why);
      throw Error(fmt::format("Kafka: {} ({})", why, rd_kafka_err2name(fatal)), {name_},
                  "the consumer cannot go on (see the reason); start it again");
    }
    if (!m) {
      if (!out.empty() || left.count() <= 0) break;
      continue;
    }
    if (m->err) {
      // Transient (a broker down, a topic not there yet): librdkafka goes on by itself.
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        std::lock_guard lock(trouble_mutex_);
        trouble_ = rd_kafka_message_errstr(m);
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    {
      std::lock_guard lock(trouble_mutex_);
      trouble_.clear();
    }
    out.push_back(entry_of(*m));
    delivered_[m->partition].emplace(m->offset, false);
    rd_kafka_message_destroy(m);
  }
  return out;
}

void KafkaStream::acknowledge(const std::vector<store::StreamEntryKey>& keys) {
  std::vector<int32_t> touched;
  for (const auto& k : keys) {
    const int32_t partition = std::stoi(k.part);
    auto p = delivered_.find(partition);
    if (p == delivered_.end()) continue;  // moved to another consumer meanwhile
    if (auto o = p->second.find(k.hi); o != p->second.end()) o->second = true;
    touched.push_back(partition);
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  PartitionList commit;
  for (const int32_t partition : touched) {
    auto& offsets = delivered_[partition];
    int64_t next = -1;  // the offset to commit: the first one not stored
    while (!offsets.empty() && offsets.begin()->second) {
      next = offsets.begin()->first + 1;
      offsets.erase(offsets.begin());
    }
    if (next < 0) continue;
    if (!offsets.empty()) next = offsets.begin()->first;
    rd_kafka_topic_partition_list_add(commit.list, options_.topic.c_str(), partition)->offset = next;
  }
  if (commit.list->cnt == 0) return;
  // Asynchronous: a commit that is lost (a broker down) only means the entries come again,
  // are found stored, and are committed then.
  if (const auto err = rd_kafka_commit(kafka_, commit.list, 1)) {
    std::lock_guard lock(trouble_mutex_);
    trouble_ = fmt::format("committing offsets: {}", rd_kafka_err2str(err));
  }
}

// A partition's committed offset: nothing before it is delivered to the group again.
std::vector<store::StreamEntryKey> KafkaStream::watermarks() {
  rd_kafka_topic_partition_list_t* assigned = nullptr;
  if (rd_kafka_assignment(kafka_, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  PartitionList list(assigned);
  std::vector<store::StreamEntryKey> marks;
  if (list.list->cnt == 0 || rd_kafka_committed(kafka_, list.list, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) return marks;
  for (int i = 0; i < list.list->cnt; ++i) {
    const auto& p = list.list->elems[i];
    if (p.err == RD_KAFKA_RESP_ERR_NO_ERROR && p.offset >= 0) marks.push_back({std::to_string(p.partition), p.offset, 0});
  }
  return marks;
}

int64_t KafkaStream::lag() {
  rd_kafka_topic_partition_list_t* assigned = nullptr;
  if (rd_kafka_assignment(kafka_, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
  PartitionList list(assigned);
  if (list.list->cnt == 0 || rd_kafka_position(kafka_, list.list) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
  int64_t lag = 0;
  for (int i = 0; i < list.list->cnt; ++i) {
    const auto& p = list.list->elems[i];
    int64_t low = -1, high = -1;
    if (rd_kafka_get_watermark_offsets(kafka_, p.topic, p.partition, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR || high < 0)
      return -1;  // not fetched from yet
    lag += std::max<int64_t>(0, high - (p.offset >= 0 ? p.offset : low));
  }
  return lag;
}

std::string KafkaStream::trouble() const {
  std::lock_guard lock(trouble_mutex_);
  return trouble_;
}

}  // namespace persona::io
