#include <filesystem>

#include <fmt/format.h>

#include "commands.h"
#include "persona/core/error.h"
#include "persona/pipeline/config.h"
#include "persona/prep/normaliser.h"
#include "persona/privacy/keys.h"

namespace persona::cli {

std::unique_ptr<store::Store> open_store(const std::string& path, const std::string& key_file) {
  store::StoreOptions options;
  if (auto keys = privacy::KeyRing::discover(key_file)) options.keys = std::make_shared<privacy::KeyRing>(std::move(*keys));
  return store::open_store(path, options);
}

std::unique_ptr<store::Store> open_existing_store(const std::string& path, const std::string& key_file) {
  if (!store::store_exists(path))
    throw Error("no store here", {path}, "run `persona ingest` first, or give --store / --config");
  return open_store(path, key_file);
}

Command add_stats(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("stats", "Dataset summary: counts, date range, event types, top items, missing values");
  struct Args {
    std::string store, config;
    int top = 10;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("-s,--store", args->store, "Store file");
  sub->add_option("-c,--config", args->config, "Config file (for its store path)");
  sub->add_option("--top", args->top, "How many top items and categories")->check(CLI::Range(1, 1000));
  return {sub, [args, &common] {
            const auto path = store_path_from(args->store, args->config);
            auto store = open_existing_store(path);
            const auto stats = store->stats(args->top);
            if (common.json) {
              auto j = stats_json(stats);
              j["sealed"] = store->sealed();
              print_json(j);
            } else {
              print_stats(stats, path);
              fmt::print("  sealed: {}\n", store->sealed() ? "yes (texts, attributes and reject rows; docs/privacy.md)"
                                                           : "no (`persona keys init --store` or `keys reseal --store` seals it)");
            }
            return 0;
          }};
}

Command add_rejects(CLI::App& app, Common&) {  // always JSON Lines: --json changes nothing
  auto* sub = app.add_subcommand("rejects", "Print the reject log of the store's ingests (JSON Lines)");
  struct Args {
    std::string store, config;
    int64_t ingest = 0;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("-s,--store", args->store, "Store file");
  sub->add_option("-c,--config", args->config, "Config file (for its store path)");
  sub->add_option("--ingest", args->ingest, "Only this ingest id (see `persona stats`)");
  return {sub, [args] {
            auto store = open_existing_store(store_path_from(args->store, args->config));
            pipeline::RejectLogWriter out("/dev/stdout", true);
            for (const auto& i : store->ingests()) {
              if (args->ingest && i.id != args->ingest) continue;
              store->for_each_reject(i.id, [&](const store::RejectRow& row) { out.write(i.source, i.path, row); });
            }
            return 0;
          }};
}

Command add_normalise(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("normalise", "Fit a normaliser on a numeric field and save it with the dataset");
  struct Args {
    std::string store, config, field, method = "zscore";
    std::vector<double> apply;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("-s,--store", args->store, "Store file");
  sub->add_option("-c,--config", args->config, "Config file (for its store path)");
  sub->add_option("--field", args->field, "event.value, event.quantity, item.price, user.age or text.sentiment");
  sub->add_option("--method", args->method, "minmax, zscore, robust or log1p");
  sub->add_option("--apply", args->apply, "Print the saved normaliser of --field applied to these values");
  return {sub, [args, &common] {
            auto store = open_existing_store(store_path_from(args->store, args->config));
            nlohmann::json saved = store->get_meta("normalisers").value_or(nlohmann::json::object());
            if (!args->apply.empty()) {
              if (!saved.contains(args->field))
                throw Error(fmt::format("no saved normaliser for \"{}\"", args->field), {}, "fit one first");
              const auto n = prep::Normaliser::from_json(saved[args->field]);
              const auto out = n.apply(args->apply);
              if (common.json) print_json(out);
              else
                for (size_t i = 0; i < out.size(); ++i) fmt::print("{} -> {:.6g}\n", args->apply[i], out[i]);
              return 0;
            }
            if (!args->field.empty()) {
              prep::Normaliser n(prep::Normaliser::parse_method(args->method));
              n.fit(store->numeric_values(args->field));
              saved[args->field] = n.to_json();
              store->put_meta("normalisers", saved);
            }
            if (common.json) print_json(saved);
            else
              for (const auto& [field, j] : saved.items()) fmt::print("{:<16} {}\n", field, j.dump());
            return 0;
          }};
}

}  // namespace persona::cli
