// persona consume against a real redis-server (tests/support/redis_server.h): a stream's entries
// are stored as the same records in a file would be, each once, whatever is delivered again.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "persona/io/redis_client.h"
#include "persona/io/redis_stream.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/consume.h"
#include "persona/pipeline/run.h"
#include "persona/store/store.h"
#include "pipeline/consume_events.h"
#include "support/redis_server.h"
#include "support/test_support.h"

namespace persona::pipeline {
namespace {

struct Fixture {
  test::TempDir dir;
  Config config;
  std::unique_ptr<test::RedisServer> redis;
  explicit Fixture(std::unique_ptr<test::RedisServer> r) : redis(std::move(r)) {
    test::write_file(dir.file("shop.toml"), kConfig);
    config = load_config(dir.file("shop.toml"));
  }
  void produce(const std::vector<std::string>& lines) {
    redis::Connection c(redis->url());
    for (const auto& line : lines) c.command({"XADD", "shop:events", "*", "json", line});
  }
  std::unique_ptr<io::RedisStream> stream(const std::string& consumer,
                                         std::chrono::milliseconds claim_after = std::chrono::seconds(30)) {
    auto o = io::parse_redis_stream_url("redis-stream://127.0.0.1:" + std::to_string(redis->port()) + "/shop:events");
    o.group = "persona";
    o.consumer = consumer;
    o.claim_after = claim_after;
    return std::make_unique<io::RedisStream>(o);
  }
  ConsumeReport consume(store::Store& store, io::StreamSource& s, RejectLogWriter* rejects = nullptr) {
    ConsumeOptions options;
    options.batch = 64;
    options.wait = std::chrono::milliseconds(50);
    options.until_idle = std::chrono::milliseconds(300);
    return pipeline::consume(store, config.sources[0], config.rules_for(config.sources[0]), s, rejects, options);
  }
};

// The same records as a file and as a stream: the same events and the same rejects; consumed
// again, nothing more; new entries later, only those.
TEST(Consume, AStreamIsStoredAsItsFileWouldBeAndOnlyOnce) {
  PERSONA_NEED_REDIS(redis);
  Fixture f(std::move(redis));
  const auto lines = event_lines(300);
  auto from_file = ingested_as_a_file(f.dir, f.config, lines);

  f.produce(lines);
  auto from_stream = store::open_store("sqlite:" + f.dir.file("stream.db"));
  auto stream = f.stream("a");
  const auto log = f.dir.file("rejects.jsonl");
  RejectLogWriter rejects(log);
  const auto report = f.consume(*from_stream, *stream, &rejects);
  rejects.close();
  EXPECT_EQ(report.entries, 300);
  EXPECT_EQ(events_of(*from_stream), events_of(*from_file));
  EXPECT_EQ(from_stream->stats().rejects, from_file->stats().rejects);
  EXPECT_GT(from_stream->stats().rejects, 0);
  // The entry that is not JSON is named by its entry id, as a file's row is by its file.
  const auto xrange = redis::Connection(f.redis->url()).command({"XRANGE", "shop:events", "-", "+"});
  const std::string id_101 = xrange.elements.at(101).elements.at(0).text;
  std::ifstream in(log);
  bool named = false;
  for (std::string line; std::getline(in, line);) {
    const auto row = nlohmann::json::parse(line);
    if (row["file"] == stream->name() + " entry " + id_101) named = row["rule"] == "malformed";
  }
  EXPECT_TRUE(named) << "no reject row for entry " << id_101;

  const auto again = f.consume(*from_stream, *stream);
  EXPECT_EQ(again.entries, 0) << "entries acknowledged were delivered again";
  f.produce(event_lines(20, 1000));
  const auto more = f.consume(*from_stream, *stream);
  EXPECT_EQ(more.entries, 20);
  EXPECT_GT(from_stream->stats().events, from_file->stats().events);
}

TEST(Consume, EntriesDeliveredAgainAreStoredOnce) {
  PERSONA_NEED_REDIS(redis);
  Fixture f(std::move(redis));
  f.produce(event_lines(200));
  auto store = store::open_store("sqlite:" + f.dir.file("s.db"));
  {
    auto stream = f.stream("dies");
    ForgetsToAcknowledge dying(*stream);
    f.consume(*store, dying);
  }
  const auto events = store->stats().events;
  ASSERT_GT(events, 0);
  // The same consumer restarted: its pending entries first, found stored.
  auto restarted = f.stream("dies");
  const auto report = f.consume(*store, *restarted);
  EXPECT_EQ(report.already_stored, 200);
  EXPECT_EQ(store->stats().events, events);

  // Another consumer claims what a dead one read and never stored.
  f.produce(event_lines(50, 2000));
  redis::Connection(f.redis->url()).command({"XREADGROUP", "GROUP", "persona", "ghost", "COUNT", "50", "STREAMS", "shop:events", ">"});
  auto claimer = f.stream("claimer", std::chrono::milliseconds(0));
  const auto claimed = f.consume(*store, *claimer);
  EXPECT_EQ(claimed.entries, 50);
  EXPECT_EQ(claimed.already_stored, 0);
  EXPECT_GT(store->stats().events, events);
  const auto pending = redis::Connection(f.redis->url()).command({"XPENDING", "shop:events", "persona"});
  EXPECT_EQ(pending.elements[0].integer, 0) << "entries left unacknowledged";
}

// XAUTOCLAIM takes idle entries from any consumer, the claiming one too: what a consumer holds (a
// batch being written, not yet acknowledged) does not come back to it, however short the idle
// time to claim after.
TEST(Consume, AConsumerDoesNotClaimBackWhatItHolds) {
  PERSONA_NEED_REDIS(redis);
  Fixture f(std::move(redis));
  f.produce(clean_lines(0, 20));
  auto stream = f.stream("a", std::chrono::milliseconds(0));
  EXPECT_EQ(stream->poll(100, std::chrono::milliseconds(50)).size(), 20u);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(stream->poll(100, std::chrono::milliseconds(50)).size(), 0u) << "its own entries came back to it";
  // Another consumer's idle entries are claimed.
  auto other = f.stream("b", std::chrono::milliseconds(0));
  EXPECT_EQ(other->poll(100, std::chrono::milliseconds(50)).size(), 20u);
}

// The stream deleted under a running consumer (and written to again): its group is created again
// and the new entries are stored; nothing fails.
TEST(Consume, ADeletedStreamIsCreatedAgainAndReadingGoesOn) {
  PERSONA_NEED_REDIS(redis);
  Fixture f(std::move(redis));
  f.produce(clean_lines(0, 50));
  auto store = store::open_store("sqlite:" + f.dir.file("s.db"));
  auto stream = f.stream("a");
  EXPECT_EQ(f.consume(*store, *stream).records_kept, 50);
  redis::Connection(f.redis->url()).command({"DEL", "shop:events"});
  EXPECT_EQ(f.consume(*store, *stream).entries, 0);  // nothing there: the group is made again
  f.produce(clean_lines(50, 30));
  EXPECT_EQ(f.consume(*store, *stream).records_kept, 30);
  EXPECT_EQ(store->stats().events, 80);
  EXPECT_NO_THROW(stream->watermarks());
}

// Redis goes away under a running consumer and comes back empty (no persistence): the consumer
// says it is waiting, then reads what is written to the new stream.
TEST(Consume, RedisGoingAwayAndComingBackLosesNothingWritten) {
  PERSONA_NEED_REDIS(redis);
  Fixture f(std::move(redis));
  f.produce(clean_lines(0, 100));
  auto store = store::open_store("sqlite:" + f.dir.file("s.db"));
  auto stream = f.stream("a");
  ConsumerThread consumer([&](const std::atomic<bool>& stop, auto progress) {
    ConsumeOptions options;
    options.batch = 32;
    options.wait = std::chrono::milliseconds(100);
    options.progress_every = std::chrono::milliseconds(50);
    options.stop = &stop;
    pipeline::consume(*store, f.config.sources[0], f.config.rules_for(f.config.sources[0]), *stream, nullptr, options, progress);
  });
  EXPECT_TRUE(consumer.wait_for([](const ConsumeReport& r) { return r.records_kept == 100; }, std::chrono::seconds(30)));
  f.redis->stop();
  EXPECT_TRUE(consumer.wait_for([](const ConsumeReport& r) { return !r.trouble.empty(); }, std::chrono::seconds(30)))
      << "no trouble said while Redis was down";
  ASSERT_TRUE(f.redis->restart());
  f.produce(clean_lines(100, 50));
  EXPECT_TRUE(consumer.wait_for([](const ConsumeReport& r) { return r.records_kept == 150 && r.trouble.empty(); },
                                std::chrono::seconds(30)));
  consumer.stop();
  EXPECT_EQ(store->stats().events, 150);
}

// Outlier rules need the whole data first: refused on a stream, unless told to run the others.
TEST(Consume, OutlierRulesAreRefusedUnlessTheOthersAreToRunWithoutThem) {
  PERSONA_NEED_REDIS(redis);
  Fixture f(std::move(redis));
  test::write_file(f.dir.file("outlier.toml"), std::string(kConfig) + R"(
[[sources.clean]]
rule = "outlier"
fields = ["event.timestamp"]
method = "iqr"
action = "flag"
)");
  const auto config = load_config(f.dir.file("outlier.toml"));
  f.produce(event_lines(40));
  auto store = store::open_store("sqlite:" + f.dir.file("s.db"));
  auto stream = f.stream("a");
  ConsumeOptions options;
  options.wait = std::chrono::milliseconds(50);
  options.until_idle = std::chrono::milliseconds(300);
  try {
    pipeline::consume(*store, config.sources[0], config.rules_for(config.sources[0]), *stream, nullptr, options);
    FAIL() << "an outlier rule ran on a stream";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outlier"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("--without-outlier-rules"), std::string::npos) << e.hint();
  }
  EXPECT_EQ(store->stats().events, 0);
  options.without_outlier_rules = true;
  const auto report = pipeline::consume(*store, config.sources[0], config.rules_for(config.sources[0]), *stream, nullptr, options);
  EXPECT_EQ(report.entries, 40);
  EXPECT_GT(store->stats().events, 30);
}

}  // namespace
}  // namespace persona::pipeline
