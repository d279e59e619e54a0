#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "commands.h"
#include "persona/core/error.h"
#include "persona/pipeline/config.h"
#include "persona/prep/normaliser.h"
#include "persona/privacy/keys.h"
#include "persona/store/store_copy.h"

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
  sub->add_option("-s,--store", args->store, "Store: a file, or a postgresql:// URL");
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

Command add_store(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("store", "Copy a store to another backend (SQLite <-> PostgreSQL); digest a store");
  sub->require_subcommand(1);
  struct Args {
    std::string from, to, store, config, key_file;
    bool without_times = false;
  };
  auto args = std::make_shared<Args>();
  auto* copy = sub->add_subcommand("copy", "Copy every row into a new, empty store and verify both by their digests");
  copy->add_option("--from", args->from, "The store to copy: a file, sqlite:PATH or postgresql://...")->required();
  copy->add_option("--to", args->to, "The new store: a file (created) or an empty PostgreSQL database")->required();
  copy->fallthrough();  // --json and --quiet belong to `store`
  auto* dig = sub->add_subcommand("digest", "A canonical digest of every row: equal digests, equal stores");
  dig->fallthrough();
  dig->add_option("-s,--store", args->store, "Store: a file, sqlite:PATH or postgresql://...");
  dig->add_option("-c,--config", args->config, "Config file (for its store location)");
  dig->add_flag("--without-times", args->without_times,
                "Leave out when each ingest started and finished, how long it took and the count of write transactions (two ingests of the same files differ only there)");
  return {sub, [args, copy, dig, &common] {
            if (copy->parsed()) {
              auto from = open_existing_store(store::normal_location(args->from));
              const auto to_location = store::normal_location(args->to);
              auto to = store::open_store(to_location);  // sealed values travel sealed: no key needed
              const bool show_progress = !common.quiet && !common.json && ::isatty(2);
              const auto report = store::copy_store(*from, *to, [&](const std::string& table, int64_t rows) {
                if (show_progress) fmt::print(stderr, "\r  {:<12} {:>12} rows", table, rows);
              });
              if (show_progress) fmt::print(stderr, "\r{:40}\r", "");
              nlohmann::json tables = nlohmann::json::object();
              for (const auto& t : report.tables) tables[t.table] = t.rows;
              if (common.json) {
                print_json({{"from", store::printable_location(args->from)}, {"to", store::printable_location(to_location)},
                            {"tables", tables}, {"digest_from", report.digest_from}, {"digest_to", report.digest_to},
                            {"same", report.same()}});
              } else {
                for (const auto& t : report.tables) fmt::print("{:<12} {:>12} rows\n", t.table, t.rows);
                fmt::print("digest of {}: {}\ndigest of {}: {}\n", store::printable_location(args->from), report.digest_from,
                           store::printable_location(to_location), report.digest_to);
                fmt::print("{}\n", report.same() ? "the copy holds every row of the store" : "THE COPY DIFFERS");
              }
              if (!report.same())
                throw Error("the copy's digest differs from the store's", {store::printable_location(to_location)},
                            "was the source written to during the copy? copy from a store nothing writes to");
              return 0;
            }
            const auto location = store_path_from(args->store, args->config);
            auto s = open_existing_store(location);
            std::vector<store::TableCount> counts;
            const auto d = store::digest(*s, !args->without_times, &counts);
            nlohmann::json tables = nlohmann::json::object();
            for (const auto& t : counts) tables[t.table] = {{"rows", t.rows}, {"digest", t.digest}};
            if (common.json) print_json({{"store", store::printable_location(location)}, {"digest", d}, {"tables", tables},
                                         {"with_times", !args->without_times}});
            else fmt::print("{}  {}\n", d, store::printable_location(location));
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
  sub->add_option("-s,--store", args->store, "Store: a file, or a postgresql:// URL");
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
  sub->add_option("-s,--store", args->store, "Store: a file, or a postgresql:// URL");
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
