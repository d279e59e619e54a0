#include <fmt/format.h>

#include "commands.h"
#include "persona/sample/shop_generator.h"

namespace persona::cli {

Command add_generate(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("generate", "Write the sample shop (users, items, events, texts and a config)");
  struct Args {
    std::string size = "default", out = "persona-demo";
    uint64_t seed = 42;
    int64_t events = 0;
    bool clean = false;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("--size", args->size, "small (tests), default (~10k users, 1M events) or large")
      ->check(CLI::IsMember({"small", "default", "large"}));
  sub->add_option("--seed", args->seed, "Random seed: the same seed gives the same shop");
  sub->add_option("--events", args->events, "About this many events instead of the size's (users and items as the size says)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000000}));
  sub->add_option("-o,--out", args->out, "Directory to write into");
  sub->add_flag("--no-dirt", args->clean, "Leave out the deliberate dirt (duplicates, bad rows)");
  return {sub, [args, &common] {
            sample::ShopOptions o;
            o.size = sample::ShopSize::named(args->size);
            if (args->events) o.size.target_events = args->events;
            o.seed = args->seed;
            o.out_dir = args->out;
            o.dirt = !args->clean;
            const auto report = sample::generate_shop(o);
            if (common.json) print_json(report.to_json());
            else
              fmt::print("Wrote the sample shop to {}: {} users, {} items, {} events, {} texts ({:.1f} s)\n"
                         "Next: persona ingest --config {}\n",
                         report.out_dir, report.users, report.items, report.events, report.texts, report.seconds,
                         report.config_path);
            return 0;
          }};
}

}  // namespace persona::cli
