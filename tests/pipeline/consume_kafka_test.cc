// persona consume from Kafka, against librdkafka's mock cluster (tests/support/kafka_mock.h; the
// protocol mock, not a broker): a topic of several partitions is stored as its file would be,
// each message once, whatever is delivered again; malformed messages go to the reject log with
// their partition and offset; a broker that goes down and comes back loses nothing.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <optional>
#include <thread>

#include "persona/io/kafka_stream.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/consume.h"
#include "persona/pipeline/run.h"
#include "persona/store/store.h"
#include "pipeline/consume_events.h"
#include "support/kafka_mock.h"
#include "support/test_support.h"

namespace persona::pipeline {
namespace {

using namespace std::chrono_literals;

struct KafkaFixture {
  test::TempDir dir;
  Config config;
  test::KafkaMock kafka;
  KafkaFixture() {
    test::write_file(dir.file("shop.toml"), kConfig);
    config = load_config(dir.file("shop.toml"));
    kafka.create_topic("events", 3);
  }
  // Identical records get the same key, so they land in the same partition, in order.
  void produce(const std::vector<std::string>& lines) {
    for (const auto& line : lines) kafka.send("events", line, line);
    kafka.flush();
  }
  std::unique_ptr<io::KafkaStream> stream(const std::string& consumer) {
    auto o = io::parse_kafka_url(kafka.url("events"));
    o.group = "persona";
    o.consumer = consumer;
    return std::make_unique<io::KafkaStream>(o);
  }
  // Until `entries` came (joining a group takes the coordinator seconds), then until idle for
  // `until_idle` (more would be too many). At most a minute.
  ConsumeReport consume(store::Store& store, io::StreamSource& s, int64_t entries, RejectLogWriter* rejects = nullptr,
                        std::chrono::milliseconds until_idle = 500ms) {
    ConsumeOptions options;
    options.batch = 64;
    options.wait = 100ms;
    options.progress_every = 0ms;
    std::atomic<bool> stop{false};
    options.stop = &stop;
    const auto start = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::time_point> since;  // all `entries` came, or the limit passed
    int64_t seen = -1;
    return pipeline::consume(store, config.sources[0], config.rules_for(config.sources[0]), s, rejects, options,
                             [&](const ConsumeReport& r) {
                               const auto now = std::chrono::steady_clock::now();
                               if (r.entries != seen) since.reset();
                               seen = r.entries;
                               if (!since && (r.entries >= entries || now - start > 60s)) since = now;
                               if (since && now - *since >= until_idle) stop = true;
                             });
  }
};

TEST(ConsumeKafka, ATopicIsStoredAsItsFileWouldBeAndOnlyOnce) {
  PERSONA_SKIP_KAFKA_UNDER_TSAN();
  KafkaFixture f;
  const auto lines = event_lines(300);
  auto from_file = ingested_as_a_file(f.dir, f.config, lines);

  f.produce(lines);
  auto from_topic = store::open_store("sqlite:" + f.dir.file("topic.db"));
  auto stream = f.stream("a");
  const auto report = f.consume(*from_topic, *stream, 300);
  EXPECT_EQ(report.entries, 300);
  EXPECT_EQ(report.lag, 0);
  EXPECT_EQ(events_of(*from_topic), events_of(*from_file));
  EXPECT_EQ(from_topic->stats().rejects, from_file->stats().rejects);

  const auto again = f.consume(*from_topic, *stream, 0, nullptr, 1s);
  EXPECT_EQ(again.entries, 0) << "committed messages were delivered again";
  f.produce(event_lines(20, 1000));
  const auto more = f.consume(*from_topic, *stream, 20);
  EXPECT_EQ(more.entries, 20);
  EXPECT_GT(from_topic->stats().events, from_file->stats().events);
}

// Offsets never committed (a consumer that stored and died): the next consumer of the group gets
// every message again and stores none twice; committed offsets then let stored keys be forgotten.
TEST(ConsumeKafka, MessagesDeliveredAgainAreStoredOnce) {
  PERSONA_SKIP_KAFKA_UNDER_TSAN();
  KafkaFixture f;
  f.produce(event_lines(200));
  auto store = store::open_store("sqlite:" + f.dir.file("s.db"));
  {
    auto stream = f.stream("dies");
    ForgetsToAcknowledge dying(*stream);
    EXPECT_EQ(f.consume(*store, dying, 200).entries, 200);
  }
  const auto events = store->stats().events;
  ASSERT_GT(events, 0);
  auto next = f.stream("next");
  const auto report = f.consume(*store, *next, 200);
  EXPECT_EQ(report.entries, 200);
  EXPECT_EQ(report.already_stored, 200);
  EXPECT_EQ(store->stats().events, events);
  // Committed now: every partition's watermark is its end, so every stored key can go.
  int64_t marked = 0;
  for (const auto& mark : next->watermarks()) {
    marked += mark.hi;
    store->prune_stream_entries(next->name(), mark);
  }
  EXPECT_EQ(marked, 200);
  store::StreamEntries keys{next->name(), {{"0", 0, 0}, {"1", 0, 0}, {"2", 0, 0}}};
  for (const bool stored : store->stored_stream_entries(keys)) EXPECT_FALSE(stored);
}

TEST(ConsumeKafka, MalformedMessagesAreRejectedWithTheirPositionAndTheRestStored) {
  PERSONA_SKIP_KAFKA_UNDER_TSAN();
  KafkaFixture f;
  f.kafka.create_topic("one", 1);
  const std::vector<std::string> values = {R"({"user": "u1", "item": "i1", "type": "view", "ts": 1700000000})", "not json", "",
                                           "{\n  \"user\": \"u2\",\n  \"item\": \"i2\",\n  \"type\": \"view\",\n  \"ts\": 1700000001\n}",
                                           "{\"user\": \"u3\",\n \"item\": "};
  for (const auto& value : values)
    f.kafka.produce("one", "k", value);
  auto o = io::parse_kafka_url(f.kafka.url("one"));
  o.group = "persona";
  io::KafkaStream stream(o);
  auto store = store::open_store("sqlite:" + f.dir.file("s.db"));
  const auto log = f.dir.file("rejects.jsonl");
  {
    RejectLogWriter rejects(log);
    const auto report = f.consume(*store, stream, 5, &rejects);
    rejects.close();
    EXPECT_EQ(report.entries, 5);
    EXPECT_EQ(report.records_kept, 2) << "a pretty-printed object is a record too";
  }
  EXPECT_EQ(store->stats().events, 2);
  std::ifstream in(log);
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 3u);
  std::string all;
  for (const auto& r : rows) all += r.dump() + "\n";
  // Each names the topic's partition and offset, as a file's rejects name the file and line.
  EXPECT_EQ(rows[0]["file"], stream.name() + " partition 0 offset 1") << all;  // not JSON
  EXPECT_EQ(rows[0]["row"], "not json");
  EXPECT_EQ(rows[1]["file"], stream.name() + " partition 0 offset 2") << all;  // empty
  EXPECT_EQ(rows[2]["file"], stream.name() + " partition 0 offset 4") << all;  // a broken object over lines
}

// The broker goes down while the consumer runs and comes back: the consumer says it is waiting,
// then stores what was produced meanwhile; nothing is lost or stored twice.
TEST(ConsumeKafka, ABrokerThatGoesDownAndComesBackLosesNothing) {
  PERSONA_SKIP_KAFKA_UNDER_TSAN();
  KafkaFixture f;
  f.produce(clean_lines(0, 100));
  auto store = store::open_store("sqlite:" + f.dir.file("s.db"));
  auto stream = f.stream("a");
  ConsumerThread consumer([&](const std::atomic<bool>& stop, auto progress) {
    ConsumeOptions options;
    options.batch = 32;
    options.wait = 100ms;
    options.progress_every = 100ms;
    options.stop = &stop;
    pipeline::consume(*store, f.config.sources[0], f.config.rules_for(f.config.sources[0]), *stream, nullptr, options, progress);
  });
  EXPECT_TRUE(consumer.wait_for([](const ConsumeReport& r) { return r.records_kept == 100; }, 30s));
  f.kafka.broker_down(1);
  EXPECT_TRUE(consumer.wait_for([](const ConsumeReport& r) { return !r.trouble.empty(); }, 30s))
      << "no trouble said while the broker was down";
  for (const auto& line : clean_lines(100, 50)) f.kafka.send("events", line, line);  // queued by the producer meanwhile
  std::this_thread::sleep_for(1s);
  f.kafka.broker_up(1);
  f.kafka.flush();
  EXPECT_TRUE(consumer.wait_for([](const ConsumeReport& r) { return r.records_kept == 150 && r.trouble.empty(); }, 60s));
  consumer.stop();
  EXPECT_EQ(store->stats().events, 150);
}

// A topic that does not exist yet is waited for, and read once it does.
TEST(ConsumeKafka, ATopicThatDoesNotExistYetIsWaitedFor) {
  PERSONA_SKIP_KAFKA_UNDER_TSAN();
  KafkaFixture f;
  f.kafka.create_topic("later", 1);
  f.kafka.topic_error("later", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  auto o = io::parse_kafka_url(f.kafka.url("later"));
  o.group = "persona";
  io::KafkaStream stream(o);
  auto store = store::open_store("sqlite:" + f.dir.file("s.db"));
  ConsumerThread consumer([&](const std::atomic<bool>& stop, auto progress) {
    ConsumeOptions options;
    options.wait = 100ms;
    options.progress_every = 100ms;
    options.stop = &stop;
    pipeline::consume(*store, f.config.sources[0], f.config.rules_for(f.config.sources[0]), stream, nullptr, options, progress);
  });
  EXPECT_TRUE(consumer.wait_for([](const ConsumeReport& r) { return !r.trouble.empty(); }, 30s)) << "not said";
  f.kafka.topic_error("later", RD_KAFKA_RESP_ERR_NO_ERROR);
  for (const auto& line : clean_lines(0, 10)) f.kafka.send("later", line, line);
  f.kafka.flush();
  EXPECT_TRUE(consumer.wait_for([](const ConsumeReport& r) { return r.records_kept == 10; }, 60s));
  consumer.stop();
  EXPECT_EQ(store->stats().events, 10);
}

}  // namespace
}  // namespace persona::pipeline
