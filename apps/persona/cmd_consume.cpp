// persona consume: a live stream into the store (pipeline/consume.h).
#include <csignal>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "commands.h"
#include "persona/core/error.h"
#include "persona/io/kafka_stream.h"
#include "persona/io/redis_stream.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/consume.h"

namespace persona::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop = true; }

const pipeline::SourceConfig& source_named(const pipeline::Config& config, const std::string& name) {
  std::string names;
  for (const auto& s : config.sources) {
    if (s.mapping.name == name || (name.empty() && config.sources.size() == 1)) return s;
    names += (names.empty() ? "" : ", ") + s.mapping.name;
  }
  throw Error(name.empty() ? "the config has several sources" : fmt::format("the config has no source {}", name),
              {config.file}, fmt::format("name the one whose mapping the entries follow: --source ({})", names));
}

std::unique_ptr<io::StreamSource> open_stream(const std::string& url, const std::string& group, const std::string& consumer) {
  if (url.rfind("redis-stream://", 0) == 0) {
    auto options = io::parse_redis_stream_url(url);
    options.group = group;
    options.consumer = consumer;
    return std::make_unique<io::RedisStream>(options);
  }
  if (url.rfind("kafka://", 0) == 0) {
    auto options = io::parse_kafka_url(url);
    options.group = group;
    options.consumer = consumer;
    return std::make_unique<io::KafkaStream>(options);
  }
  throw Error("not a stream Persona reads", {url}, "redis-stream://HOST[:PORT][/DB]/KEY or kafka://BROKER[,BROKER]/TOPIC");
}

}  // namespace

Command add_consume(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("consume", "Read a live stream into the store, every entry once: a Redis stream or a Kafka topic");
  struct Args {
    std::string config, from, group, consumer, source, store, rejects;
    size_t batch = 0;  // 0: the config's [ingest] batch_rows
    double until_idle = 0;
    bool without_outlier_rules = false;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("-c,--config", args->config, "Config file (TOML): the mapping and rules of the entries' source")->required();
  sub->add_option("--from", args->from, "The stream: redis-stream://HOST[:PORT][/DB]/KEY or kafka://BROKER[:PORT][,BROKER...]/TOPIC[?librdkafka.setting=value]")->required();
  sub->add_option("--group", args->group, "The consumer group (a new one starts at the stream's beginning)")->required();
  sub->add_option("--consumer", args->consumer, "This consumer's name in the group (default: the host's name; name each of several on one host)");
  sub->add_option("--source", args->source, "The config's source whose mapping the entries follow (default: its only one)");
  sub->add_option("-s,--store", args->store, "Store: a file or a postgresql:// URL (default: the config's [store] path)");
  sub->add_option("--rejects", args->rejects, "Reject log to append to (JSON Lines)");
  sub->add_option("--batch", args->batch, "Entries per transaction, at most (default: the config's [ingest] batch_rows, 50000); fewer when fewer are waiting, so a quiet stream is stored at once")->check(CLI::Range(1, 1000000));
  sub->add_option("--until-idle", args->until_idle, "Stop after this many seconds without entries (default: never)");
  sub->add_flag("--without-outlier-rules", args->without_outlier_rules,
                "Run the source's rules except its outlier rules (they need the whole data first, which a stream never has)");
  return {sub, [args, &common] {
            auto config = pipeline::load_config(args->config);
            if (!args->store.empty()) config.store_path = args->store;
            const auto& source = source_named(config, args->source);
            auto store = open_store(config.resolve(config.store_path));
            auto stream = open_stream(args->from, args->group, args->consumer);
            std::optional<pipeline::RejectLogWriter> rejects;
            if (!args->rejects.empty()) rejects.emplace(std::filesystem::absolute(args->rejects).string(), true);
            std::signal(SIGTERM, on_stop_signal);
            std::signal(SIGINT, on_stop_signal);
            pipeline::ConsumeOptions options;
            options.batch = args->batch > 0 ? args->batch : config.batch_rows;
            options.until_idle = std::chrono::milliseconds(static_cast<int64_t>(args->until_idle * 1000));
            options.stop = &g_stop;
            options.without_outlier_rules = args->without_outlier_rules;
            // The crash tests' hook (tests/e2e/consume_kill_test.cc): die right after a commit.
            if (const char* n = std::getenv("PERSONA_TEST_DIE_AFTER_COMMIT")) options.die_after_commit = std::atoll(n);
            const auto report = pipeline::consume(*store, source, config.rules_for(source), *stream, rejects ? &*rejects : nullptr,
                                                  options, [&](const pipeline::ConsumeReport& r) {
                                                    if (common.json) print_json(r.to_json());
                                                    else if (!common.quiet)
                                                      fmt::print(stderr, "{}: {} entries, {} kept, {} rejected, {} already stored, lag {}{}\n",
                                                                 r.stream, r.entries, r.records_kept, r.rejected, r.already_stored, r.lag,
                                                                 r.trouble.empty() ? "" : "; waiting: " + r.trouble);
                                                  });
            if (rejects) rejects->close();
            (void)report;
            return 0;
          }};
}

}  // namespace persona::cli
