// persona consume against a real redis-server (tests/support/redis_server.h): a stream's entries
// are stored as the same records in a file would be, each once, whatever is delivered again.
// Work in progress (branch wip/issue-22): not built yet; see WIP-issue-22.md.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "persona/io/redis_client.h"
#include "persona/io/redis_stream.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/consume.h"
#include "persona/pipeline/run.h"
#include "persona/store/store.h"
#include "support/redis_server.h"
#include "support/test_support.h"

namespace persona::pipeline {
namespace {

const char* kConfig = R"(
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
std::vector<std::string> event_lines(int n, int first = 0) {
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
  ConsumeReport consume(store::Store& store, io::StreamSource& s) {
    ConsumeOptions options;
    options.batch = 64;
    options.wait = std::chrono::milliseconds(50);
    options.until_idle = std::chrono::milliseconds(300);
    return pipeline::consume(store, config.sources[0], config.rules_for(config.sources[0]), s, nullptr, options);
  }
};

std::vector<std::tuple<std::string, std::string, int, int64_t>> events_of(store::Store& s) {
  const auto e = s.events();
  std::vector<std::tuple<std::string, std::string, int, int64_t>> out;
  for (size_t i = 0; i < e.size(); ++i) out.emplace_back(e.user_ids[e.user[i]], e.item_ids[e.item[i]], e.type[i], e.timestamp[i]);
  std::sort(out.begin(), out.end());
  return out;
}

// The same records as a file and as a stream: the same events and the same rejects; consumed
// again, nothing more; new entries later, only those.
TEST(Consume, AStreamIsStoredAsItsFileWouldBeAndOnlyOnce) {
  PERSONA_NEED_REDIS(redis);
  Fixture f(std::move(redis));
  const auto lines = event_lines(300);
  std::string file;
  for (const auto& l : lines) file += l + "\n";
  test::write_file(f.dir.file("events.jsonl"), file);
  auto from_file = store::open_store("sqlite:" + f.dir.file("file.db"));
  ingest(f.config, *from_file, {.progress = false});

  f.produce(lines);
  auto from_stream = store::open_store("sqlite:" + f.dir.file("stream.db"));
  auto stream = f.stream("a");
  const auto report = f.consume(*from_stream, *stream);
  EXPECT_EQ(report.entries, 300);
  EXPECT_EQ(events_of(*from_stream), events_of(*from_file));
  EXPECT_EQ(from_stream->stats().rejects, from_file->stats().rejects);
  EXPECT_GT(from_stream->stats().rejects, 0);

  const auto again = f.consume(*from_stream, *stream);
  EXPECT_EQ(again.entries, 0) << "entries acknowledged were delivered again";
  f.produce(event_lines(20, 1000));
  const auto more = f.consume(*from_stream, *stream);
  EXPECT_EQ(more.entries, 20);
  EXPECT_GT(from_stream->stats().events, from_file->stats().events);
}

// A consumer that stored its batches but died before acknowledging them: its entries come again
// (to itself after a restart, or to another that claims them) and are not stored twice.
class ForgetsToAcknowledge final : public io::StreamSource {
 public:
  explicit ForgetsToAcknowledge(io::StreamSource& inner) : inner_(inner) {}
  const std::string& name() const override { return inner_.name(); }
  const std::string& consumer() const override { return inner_.consumer(); }
  std::vector<io::StreamEntry> poll(size_t max, std::chrono::milliseconds wait) override { return inner_.poll(max, wait); }
  void acknowledge(const std::vector<store::StreamEntryKey>&) override {}
  std::vector<store::StreamEntryKey> watermarks() override { return inner_.watermarks(); }
  int64_t lag() override { return inner_.lag(); }

 private:
  io::StreamSource& inner_;
};

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

}  // namespace
}  // namespace persona::pipeline
