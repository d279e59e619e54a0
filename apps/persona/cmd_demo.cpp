#include <filesystem>

#include <fmt/format.h>

#include "commands.h"
#include "persona/pipeline/config.h"
#include "persona/sample/shop_generator.h"

namespace persona::cli {

Command add_demo(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("demo", "The main job end to end: generate the sample shop, ingest, clean, summarise");
  struct Args {
    std::string dir = "persona-demo", size = "default";
    uint64_t seed = 42;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("-d,--dir", args->dir, "Working directory for the shop's files and store");
  sub->add_option("--size", args->size, "small, default or large")->check(CLI::IsMember({"small", "default", "large"}));
  sub->add_option("--seed", args->seed, "Random seed");
  return {sub, [args, &common] {
            sample::ShopOptions o;
            o.size = sample::ShopSize::named(args->size);
            o.seed = args->seed;
            o.out_dir = args->dir;
            if (!common.json) fmt::print("1/3 generating the sample shop in {} ...\n", args->dir);
            const auto shop = sample::generate_shop(o);
            if (!common.json)
              fmt::print("    {} users, {} items, {} events, {} texts ({:.1f} s)\n", shop.users, shop.items, shop.events,
                         shop.texts, shop.seconds);
            // A fresh store every run, so the demo always shows a whole ingest.
            auto config = pipeline::load_config(shop.config_path);
            const auto store_path = config.resolve(config.store_path);
            for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(store_path + suffix);
            if (!common.json) fmt::print("2/3 ingesting and cleaning into {} ...\n", store_path);
            auto store = store::open_sqlite_store(store_path);
            const auto report = pipeline::ingest(config, *store, {.progress = !common.quiet});
            if (!common.json) {
              for (const auto& s : report.sources) print_source_report(s);
              fmt::print("    reject log: {}\n", report.reject_log);
              fmt::print("3/3 summary\n");
            }
            const auto stats = store->stats(10);
            if (common.json) {
              print_json({{"shop", shop.to_json()}, {"ingest", report.to_json()}, {"stats", stats_json(stats)}});
              return 0;
            }
            print_stats(stats, store_path);
            fmt::print("\nTry: persona stats --config {}   |   persona rejects --config {} | head\n", shop.config_path,
                       shop.config_path);
            return 0;
          }};
}

}  // namespace persona::cli
