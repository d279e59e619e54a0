#pragma once
// Kafka for the tests: librdkafka's own mock cluster (rdkafka_mock.h), which speaks the Kafka
// protocol on loopback ports from this process, with topics, consumer groups and committed
// offsets; brokers can be taken down and brought back. It is not a real broker: the docs say that
// Persona's Kafka consumer was tested against the protocol mock.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <stdexcept>
#include <string>

// Under ThreadSanitizer the Kafka tests are skipped: librdkafka starts its threads with C11
// thrd_create, which the ThreadSanitizer here (clang 14's) does not intercept, so those threads
// crash in its allocator (CI, 2026-12-05: SIGSEGV in getaddrinfo on an rdk:broker thread). The
// consumer's own threading (pipeline/consume.cc) is the same for Redis, whose tests do run under
// it; the Kafka tests run in the debug and ASan suites.
#if defined(__SANITIZE_THREAD__)
#define PERSONA_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PERSONA_UNDER_TSAN 1
#endif
#endif
#ifdef PERSONA_UNDER_TSAN
#define PERSONA_SKIP_KAFKA_UNDER_TSAN() \
  GTEST_SKIP() << "librdkafka's threads (C11 thrd_create) are not seen by this ThreadSanitizer"
#else
#define PERSONA_SKIP_KAFKA_UNDER_TSAN() (void)0
#endif

namespace persona::test {

class KafkaMock {
 public:
  explicit KafkaMock(int brokers = 1) {
    char error[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", error, sizeof error);  // the mock's own client says nothing
    owner_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    if (!owner_) throw std::runtime_error(error);
    cluster_ = rd_kafka_mock_cluster_new(owner_, brokers);
    if (!cluster_) throw std::runtime_error("no mock cluster");
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps().c_str(), error, sizeof error);
    rd_kafka_conf_set(conf, "log_level", "0", error, sizeof error);
    producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    if (!producer_) throw std::runtime_error(error);
  }
  ~KafkaMock() {
    rd_kafka_flush(producer_, 5000);
    rd_kafka_destroy(producer_);
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(owner_);
  }
  KafkaMock(const KafkaMock&) = delete;
  KafkaMock& operator=(const KafkaMock&) = delete;

  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }
  // kafka://BOOTSTRAPS/TOPIC, with a short session timeout (a consumer killed -9 leaves the
  // group within seconds) unless told otherwise.
  std::string url(const std::string& topic, const std::string& query = "session.timeout.ms=6000&heartbeat.interval.ms=500") const {
    return "kafka://" + bootstraps() + "/" + topic + (query.empty() ? "" : "?" + query);
  }
  void create_topic(const std::string& topic, int partitions) {
    if (rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1)) throw std::runtime_error("cannot create " + topic);
  }
  // One message; the key picks its partition. Waits until it is written.
  void produce(const std::string& topic, const std::string& key, const std::string& value) {
    send(topic, key, value);
    flush();
  }
  void send(const std::string& topic, const std::string& key, const std::string& value) {
    const auto err = rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(topic.c_str()),
                                       RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                                       RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err) throw std::runtime_error(rd_kafka_err2str(err));
    rd_kafka_poll(producer_, 0);
  }
  void flush() {
    if (rd_kafka_flush(producer_, 10000)) throw std::runtime_error("messages not delivered");
  }
  // Metadata requests for the topic answer this error (UNKNOWN_TOPIC_OR_PART: it does not exist);
  // RD_KAFKA_RESP_ERR_NO_ERROR undoes it.
  void topic_error(const std::string& topic, rd_kafka_resp_err_t error) {
    rd_kafka_mock_topic_set_error(cluster_, topic.c_str(), error);
  }
  void broker_down(int id) { rd_kafka_mock_broker_set_down(cluster_, id); }
  void broker_up(int id) { rd_kafka_mock_broker_set_up(cluster_, id); }

 private:
  rd_kafka_t* owner_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  rd_kafka_t* producer_ = nullptr;
};

}  // namespace persona::test
