#pragma once
// The persona CLI: one file per subcommand. Each `add_*` registers its subcommand and returns
// the function that runs it.
#include <functional>
#include <string>
#include <unordered_map>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "persona/server/server.h"

#include "persona/pipeline/profiles.h"
#include "persona/pipeline/run.h"
#include "persona/store/store.h"

namespace persona::cli {

struct Common {
  bool json = false;
  bool quiet = false;
};

using Runner = std::function<int()>;
struct Command {
  CLI::App* app;
  Runner run;
};

Command add_generate(CLI::App& app, Common& common);
Command add_ingest(CLI::App& app, Common& common);
Command add_consume(CLI::App& app, Common& common);
Command add_clean(CLI::App& app, Common& common);
Command add_stats(CLI::App& app, Common& common);
Command add_store(CLI::App& app, Common& common);
Command add_demo(CLI::App& app, Common& common);
Command add_presets(CLI::App& app, Common& common);
Command add_rejects(CLI::App& app, Common& common);
Command add_normalise(CLI::App& app, Common& common);
Command add_analyze(CLI::App& app, Common& common);
Command add_keywords(CLI::App& app, Common& common);
Command add_eval(CLI::App& app, Common& common);
Command add_classify(CLI::App& app, Common& common);
Command add_train(CLI::App& app, Common& common);
Command add_predict(CLI::App& app, Common& common);
Command add_forecast(CLI::App& app, Common& common);
Command add_profile(CLI::App& app, Common& common);
Command add_segments(CLI::App& app, Common& common);
Command add_recommend(CLI::App& app, Common& common);
Command add_similar(CLI::App& app, Common& common);
Command add_faq(CLI::App& app, Common& common);
Command add_kg(CLI::App& app, Common& common);
Command add_chat(CLI::App& app, Common& common);
Command add_test_dialogues(CLI::App& app, Common& common);
Command add_test_intents(CLI::App& app, Common& common);
Command add_anonymize(CLI::App& app, Common& common);
Command add_keys(CLI::App& app, Common& common);
Command add_pseudonym(CLI::App& app, Common& common);
Command add_seal(CLI::App& app, Common& common);
Command add_audit(CLI::App& app, Common& common);
Command add_dp(CLI::App& app, Common& common);
Command add_redact(CLI::App& app, Common& common);
Command add_erase(CLI::App& app, Common& common);
Command add_export(CLI::App& app, Common& common);
Command add_serve(CLI::App& app, Common& common);
Command add_experiment(CLI::App& app, Common& common);
Command add_help(CLI::App& app, Common& common);
// `train recommend` and `eval recommend`, registered by train and eval.
void add_train_recommend(CLI::App* train, std::vector<std::function<int()>>& runners, Common& common);
Runner add_eval_recommend(CLI::App* eval, Common& common);

// Shared printing.
void print_profile_report(const pipeline::ProfileRunReport& report);
void print_segments(const profile::SegmentModel& segments);
void print_json(const nlohmann::json& j);
// Item id -> title, for people reading a list (ids stay in --json and in brackets); the title
// ("" when the store has none), and "Title (ID)".
std::unordered_map<std::string, std::string> item_titles(store::Store& store);
std::string title_of(const std::unordered_map<std::string, std::string>& titles, const std::string& id);
std::string titled(const std::unordered_map<std::string, std::string>& titles, const std::string& id);
void print_source_report(const pipeline::SourceReport& report);
void print_stats(const store::DatasetStats& stats, const std::string& store_path);
nlohmann::json stats_json(const store::DatasetStats& stats);
// A date option (YYYY-MM-DD or any ISO 8601 time) as Unix seconds; a clear error otherwise.
int64_t parse_date(const std::string& text, const char* option);
// "persona.db" from --store, else from --config's [store], else ./persona.db.
std::string store_path_from(const std::string& store, const std::string& config);
// An ingest config from --config, or one built from --preset and the files given; with `store`,
// that store instead of the config's (`encoding`: the files' encoding when not UTF-8).
pipeline::Config ingest_config_from(const std::string& config_path, const std::string& preset,
                                    const std::vector<std::string>& files, const std::string& store, const std::string& encoding);
// Opens (creating when absent) a store with the key ring at hand, if any: --key-file when given,
// else $PERSONA_KEY_FILE, PERSONA_MASTER_KEY or ./persona.key. With a key, sensitive columns are
// sealed; a sealed store without one can be counted but not read or written.
std::unique_ptr<store::Store> open_store(const std::string& path, const std::string& key_file = "");
// The same for a store that must exist already (a clear error otherwise).
std::unique_ptr<store::Store> open_existing_store(const std::string& path, const std::string& key_file = "");

// The dashboard to serve when --web is not given: $PERSONA_WEB_DIR, else the one this build made
// (build/<preset>/web), else none.
std::string default_web_dir();
// Runs the server until SIGTERM or SIGINT, printing its address (and the dashboard's; with
// `dashboard_key`, the key travels in the link's fragment, which browsers never send). Port 0 in
// `options` picks a free port. Returns the exit code.
int serve_until_stopped(server::ServerOptions options, const Common& common, const std::string& dashboard_key = "");

}  // namespace persona::cli
