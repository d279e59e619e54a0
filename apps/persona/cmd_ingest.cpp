#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.h"
#include "persona/core/error.h"
#include "persona/core/progress.h"
#include "persona/io/text_encoding.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/run.h"

namespace persona::cli {

// The config from --config, or one built from --preset and the files given.
pipeline::Config ingest_config_from(const std::string& config_path, const std::string& preset,
                             const std::vector<std::string>& files, const std::string& store, const std::string& encoding) {
  pipeline::Config config;
  if (!config_path.empty()) {
    config = pipeline::load_config(config_path);
    if (!preset.empty() || !files.empty())
      throw Error("give either --config, or --preset with files, not both");
  } else {
    if (preset.empty() || files.empty())
      throw Error("nothing to read", {}, "use --config FILE, or --preset NAME FILE... (see `persona presets`)");
    for (const auto& f : files) config.sources.push_back(pipeline::preset_source(preset, f));
  }
  if (!encoding.empty()) {
    io::check_encoding(encoding);
    for (auto& s : config.sources) s.mapping.encoding = encoding;
  }
  if (!store.empty()) {
    // The store given here is relative to where we are; the config's own reject log stays
    // relative to the config (it used to land in the current directory).
    if (!config.reject_log.empty()) config.reject_log = config.reject_log_path();
    config.store_path = store;
    config.base_dir.clear();
  }
  return config;
}

Command add_ingest(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("ingest", "Read, map and clean files into the store (idempotent, resumable)");
  struct Args {
    std::string config, preset, store, rejects, encoding;
    std::vector<std::string> files;
    size_t batch_rows = 0;
    std::optional<double> min_kept;
    bool bulk = false;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("-c,--config", args->config, "Config file (TOML) naming the sources and their mappings");
  sub->add_option("-p,--preset", args->preset, "A built-in mapping for the files given (see `persona presets`)");
  sub->add_option("files", args->files, "Files to read with --preset (\"-\": standard input)");
  sub->add_option("--encoding", args->encoding, "The files' text encoding when not UTF-8 (gb18030, big5, utf-16le, ...)");
  sub->add_option("-s,--store", args->store, "Store: a file or a postgresql:// URL (default: the config's [store] path, or persona.db)");
  sub->add_option("--rejects", args->rejects, "Reject log to write (JSON Lines; default <store>.rejects.jsonl)");
  sub->add_option("--batch-rows", args->batch_rows, "Rows per transaction");
  sub->add_flag("--bulk", args->bulk,
                "A backfill: on PostgreSQL the events' and texts' indexes are built once at the end (fast for a large "
                "load, slow for readers meanwhile); on SQLite the same as without");
  sub->add_option("--min-kept", args->min_kept,
                  "Fail a source that keeps a smaller share of its rows (0-1; default [ingest] min_kept_share, "
                  "0: fail only when none is kept)")
      ->check(CLI::Range(0.0, 1.0));
  return {sub, [args, &common] {
            auto config = ingest_config_from(args->config, args->preset, args->files, args->store, args->encoding);
            // Relative to where we are (the config's own reject_log is relative to the config).
            if (!args->rejects.empty()) config.reject_log = std::filesystem::absolute(args->rejects).string();
            if (args->batch_rows) config.batch_rows = args->batch_rows;
            if (args->min_kept) config.min_kept_share = *args->min_kept;
            const std::string store_path = config.resolve(config.store_path);
            const pipeline::IngestLock lock(store_path);
            auto store = open_store(store_path);
            const auto report = pipeline::ingest(config, *store, {.progress = !common.quiet, .bulk = args->bulk});
            if (common.json) {
              print_json(report.to_json());
            } else {
              for (const auto& s : report.sources) print_source_report(s);
              fmt::print("store: {}\nreject log: {}\n", report.store_path, report.reject_log);
            }
            // Loud: a source that kept too little is an error (main prints it, exit 1), and is read
            // again by the next run.
            std::vector<std::string> failures;
            for (const auto& s : report.sources)
              if (s.status == "failed") failures.push_back(fmt::format("source {} ({}) failed: {}", s.source, s.path, s.failure));
            if (!failures.empty())
              throw Error(fmt::format("{}", fmt::join(failures, "; ")), {},
                          "not recorded as ingested: fix the mapping (or lower [ingest] min_kept_share) and run again; "
                          "every removed row is in the reject log");
            return 0;
          }};
}

Command add_clean(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("clean", "Apply the cleaning rules to a file without a store; report every rule");
  struct Args {
    std::string config, preset, source, out, rejects, encoding;
    std::vector<std::string> files;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("-c,--config", args->config, "Config file whose sources (and rules) to use");
  sub->add_option("--source", args->source, "Only this source of the config");
  sub->add_option("-p,--preset", args->preset, "A built-in mapping for the files given");
  sub->add_option("files", args->files, "Files to clean with --preset (\"-\": standard input)");
  sub->add_option("--encoding", args->encoding, "The files' text encoding when not UTF-8 (gb18030, big5, utf-16le, ...)");
  sub->add_option("-o,--out", args->out, "Write the kept rows here (CSV with the source's columns)");
  sub->add_option("--rejects", args->rejects, "Write the reject log here (JSON Lines)");
  return {sub, [args, &common] {
            auto config = ingest_config_from(args->config, args->preset, args->files, "", args->encoding);
            std::unique_ptr<pipeline::RejectLogWriter> writer;
            if (!args->rejects.empty()) writer = std::make_unique<pipeline::RejectLogWriter>(args->rejects);
            std::vector<pipeline::SourceReport> reports;
            bool found = args->source.empty();
            for (const auto& source : config.sources) {
              if (!args->source.empty() && source.mapping.name != args->source) continue;
              found = true;
              if (!args->out.empty() && config.sources.size() > 1 && args->source.empty())
                throw Error("--out needs one source", {}, "add --source NAME");
              reports.push_back(pipeline::clean_source(source, config.rules_for(source), args->out, writer.get(),
                                                       {.progress = !common.quiet}));
            }
            if (!found) throw Error(fmt::format("the config has no source named \"{}\"", args->source));
            if (writer) writer->close();
            if (common.json) {
              nlohmann::json j = nlohmann::json::array();
              for (const auto& r : reports) j.push_back(r.to_json());
              print_json(reports.size() == 1 ? j[0] : j);
              return 0;
            }
            for (const auto& r : reports) print_source_report(r);
            if (writer) fmt::print("reject log: {} ({} lines)\n", args->rejects, writer->lines());
            return 0;
          }};
}

Command add_presets(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("presets", "List the built-in source mappings");
  return {sub, [&common] {
            if (common.json) {
              nlohmann::json j = nlohmann::json::array();
              for (const auto& p : pipeline::presets()) j.push_back({{"name", p.name}, {"description", p.description}});
              print_json(j);
              return 0;
            }
            for (const auto& p : pipeline::presets()) fmt::print("{:<20} {}\n", p.name, p.description);
            return 0;
          }};
}

}  // namespace persona::cli
