// persona experiment create | list | report | stop | promote: A/B tests between recommenders
// (docs/recommend.md, "Experiments").
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "commands.h"
#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/pipeline/config.h"
#include "persona/demand/text_analysis.h"
#include "persona/experiment/experiments.h"
#include "persona/experiment/report.h"
#include "persona/privacy/dp.h"
#include "persona/store/pg_shared.h"

namespace persona::cli {
namespace {

struct ExperimentArgs {
  std::string store, config, models, name, variants, split, variant, analyst, ledger, surface = "recommend";
  double alpha = 0.05, dp_epsilon = 0;
  experiment::DpReportOptions dp;
};

void add_common_options(CLI::App* s, ExperimentArgs& a) {
  s->add_option("-s,--store", a.store, "Store: a file, or a postgresql:// URL");
  s->add_option("-c,--config", a.config, "Config file (for its store path)");
  s->add_option("--models", a.models, "Model directory (default $PERSONA_MODELS or ./models)");
}

std::string when(int64_t t) { return t ? format_timestamp(t) : "-"; }

void print_experiment(const experiment::Experiment& e) {
  fmt::print("{} ({}; created {}{}{})\n", e.name, e.status, when(e.created), e.stopped ? ", stopped " + when(e.stopped) : "",
             e.promoted.empty() ? "" : ", promoted " + e.promoted);
  for (const auto& v : e.variants)
    fmt::print("  {:<12} {:>5.1f}%  model {} (version {})\n", v.name, 100 * v.share, v.model, v.version);
}

std::string percent(double x) { return fmt::format("{:.2f}%", 100 * x); }

// An assistant variant's settings: null for "current" (the server's own), a config file's
// [assistant] table, or a JSON file holding that table.
nlohmann::json assistant_settings_of(const experiment::Variant& v) {
  if (v.model == "current") return nullptr;
  if (!std::filesystem::is_regular_file(v.model)) throw Error(fmt::format("variant {}: no such file", v.name), {v.model});
  if (std::filesystem::path(v.model).extension() == ".json") {
    std::ifstream in(v.model);
    return parse_json_or_throw(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()), {v.model},
                               "a JSON object of [assistant] settings (docs/config.md)");
  }
  const auto config = pipeline::load_config(v.model);
  if (config.assistant.is_null())
    throw Error(fmt::format("variant {}: the config has no [assistant] table", v.name), {v.model}, "see docs/config.md, section [assistant]");
  return config.assistant;
}

void print_report(const nlohmann::json& r) {
  if (r.contains("dp")) {
    fmt::print("experiment {} ({}), released with differential privacy (epsilon {})\n\n", r["name"].get<std::string>(),
               r["status"].get<std::string>(), r["dp"]["epsilon"].get<double>());
    fmt::print("{:<10} {:>9} {:>11} {:>9} {:>9} {:>13} {:>12} {:>14}\n", "variant", "users", "impressions", "clicks", "purchases",
               "click-through", "conversion", "revenue/impr.");
    for (const auto& v : r["variants"])
      fmt::print("{:<10} {:>9.0f} {:>11.0f} {:>9.0f} {:>9.0f} {:>13} {:>12} {:>14.4f}\n", v["name"].get<std::string>(),
                 v["users"].get<double>(), v["impressions"].get<double>(), v["clicks"].get<double>(), v["purchases"].get<double>(),
                 percent(v["ctr"]["value"]), percent(v["conversion"]["value"]), v["revenue_per_impression"]["value"].get<double>());
    fmt::print("\n{}\n", r["verdict"].get<std::string>());
    return;
  }
  fmt::print("experiment {} ({}), {} day(s) of feedback\n\n", r["name"].get<std::string>(), r["status"].get<std::string>(),
             r["days"].get<int64_t>());
  fmt::print("{:<10} {:>7} {:>11} {:>8} {:>9} {:>24} {:>12} {:>14}\n", "variant", "users", "impressions", "clicks", "purchases",
             "click-through (95% CI)", "conversion", "revenue/impr.");
  for (const auto& v : r["variants"]) {
    const auto& ctr = v["ctr"];
    fmt::print("{:<10} {:>7} {:>11} {:>8} {:>9} {:>24} {:>12} {:>14.4f}\n", v["name"].get<std::string>(), v["users"].get<int64_t>(),
               v["impressions"].get<double>(), v["clicks"].get<double>(), v["purchases"].get<double>(),
               fmt::format("{} ({}–{})", percent(ctr["value"]), percent(ctr["low"]), percent(ctr["high"])),
               percent(v["conversion"]["value"]), v["revenue_per_impression"]["value"].get<double>());
  }
  if (!r["comparisons"].empty()) {
    fmt::print("\nagainst the control (sequential test, valid at every daily look; alpha {}):\n", r["alpha"].get<double>());
    for (const auto& c : r["comparisons"])
      fmt::print("  {} vs {} {:<24} {:+.3g} ({:+.1f}%)  interval [{:.3g}, {:.3g}]  p {:.3g}{}  detectable now: ±{:.1f}%\n",
                 c["variant"].get<std::string>(), c["against"].get<std::string>(), c["metric"].get<std::string>(),
                 c["effect"].get<double>(), 100 * c["relative"].get<double>(), c["low"].get<double>(), c["high"].get<double>(),
                 c["p"].get<double>(), c["significant"].get<bool>() ? " *" : "", 100 * c["mde_relative"].get<double>());
  }
  const auto& srm = r["sample_ratio"];
  fmt::print("\nsample ratio: chi-square {:.2f}, p {:.3g}{}\n", srm["chi2"].get<double>(), srm["p"].get<double>(),
             srm["mismatch"].get<bool>() ? "  MISMATCH" : " (the split holds)");
  fmt::print("\n{}\n", r["verdict"].get<std::string>());
}

}  // namespace

Command add_experiment(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("experiment", "A/B tests between recommenders: create, list, report, stop, promote");
  sub->require_subcommand(1);
  auto a = std::make_shared<ExperimentArgs>();
  auto* create = sub->add_subcommand("create", "Start an experiment: each user is served by one variant's model");
  create->add_option("name", a->name, "Its name")->required();
  create->add_option("--variants", a->variants, "NAME=MODEL,... (MODEL: a recommender file, or current); the first is the control")
      ->required();
  create->add_option("--split", a->split, "Shares of the users, e.g. 50/50 or 90/10 (default: equal)");
  create->add_option("--surface", a->surface,
                     "recommend (variants are recommender files) or assistant (variants are config files whose [assistant] "
                     "settings answer the chat, or .json files of those settings)")
      ->check(CLI::IsMember({"recommend", "assistant"}));
  auto* list = sub->add_subcommand("list", "Experiments, running and stopped");
  auto* report = sub->add_subcommand("report", "Click-through, conversion and revenue per variant, with a sequential test");
  report->add_option("name", a->name, "The experiment")->required();
  report->add_option("--alpha", a->alpha, "False-positive rate of the test")->check(CLI::Range(0.0001, 0.5));
  report->add_option("--dp-epsilon", a->dp_epsilon,
                     "Release it through differential privacy instead, charging this epsilon to --analyst's budget (persona dp budget)")
      ->check(CLI::Range(0.000001, 100.0));
  report->add_option("--analyst", a->analyst, "With --dp-epsilon: whose budget pays");
  report->add_option("--ledger", a->ledger, "With --dp-epsilon: the budget ledger (as persona dp)");
  report->add_option("--max-impressions", a->dp.max_impressions, "With --dp-epsilon: impressions (and clicks, purchases) counted per user")
      ->check(CLI::Range(1.0, 1e6));
  report->add_option("--max-revenue", a->dp.max_revenue, "With --dp-epsilon: revenue counted per user")->check(CLI::Range(0.01, 1e9));
  auto* stop = sub->add_subcommand("stop", "Stop it: everyone gets the recommender again (feedback stays for the report)");
  stop->add_option("name", a->name, "The experiment")->required();
  auto* promote = sub->add_subcommand("promote", "Stop it and make a variant's model the recommender");
  promote->add_option("name", a->name, "The experiment")->required();
  promote->add_option("variant", a->variant, "The variant whose model wins")->required();
  for (auto* s : {create, list, report, stop, promote}) {
    s->fallthrough();  // --json and --quiet belong to `experiment`
    add_common_options(s, *a);
  }
  return {sub, [=, &common]() -> int {
            auto store = open_existing_store(store_path_from(a->store, a->config));
            const std::string models = demand::models_dir_from(a->models);
            if (create->parsed()) {
              auto variants = experiment::parse_variants(a->variants, a->split);
              if (a->surface == "assistant")
                for (auto& v : variants) v.settings = assistant_settings_of(v);
              const auto e = experiment::create_experiment(*store, a->name, std::move(variants), models, a->surface);
              if (common.json) print_json(e.to_json());
              else {
                print_experiment(e);
                fmt::print("running: a server of this store serves each user their variant within 2 s\n");
              }
              return 0;
            } else if (list->parsed()) {
              const auto all = experiment::load_experiments(*store);
              if (common.json) {
                nlohmann::json j = nlohmann::json::array();
                for (const auto& e : all) j.push_back(e.to_json());
                print_json({{"experiments", j}});
              } else if (all.empty()) {
                fmt::print("no experiments yet (persona experiment create NAME --variants a=current,b=FILE)\n");
              } else {
                for (const auto& e : all) print_experiment(e);
              }
            } else if (report->parsed()) {
              const auto e = experiment::find_experiment(*store, a->name);
              if (!e) throw Error(fmt::format("no experiment \"{}\"", a->name), {}, "persona experiment list shows them");
              if (a->dp_epsilon > 0) {
                if (a->analyst.empty()) throw Error("--dp-epsilon needs --analyst: whose privacy budget pays for it");
                const std::string store_path = store_path_from(a->store, a->config);
                const std::string dataset = store::store_identity(store_path);
                std::vector<store::FeedbackTally> tallies;
                store->for_each_feedback_tally(e->name, [&](const store::FeedbackTally& t) { tallies.push_back(t); });
                a->dp.epsilon = a->dp_epsilon;
                auto rng = privacy::secure_random();
                // Parameters checked by a dry run on no data before anything is charged.
                (void)experiment::experiment_report_dp(*e, {}, a->dp, *rng);
                try {
                  store::open_budget_ledger(store_path, a->ledger)
                      ->spend(dataset, a->analyst, a->dp_epsilon, "experiment report " + e->name);
                } catch (const privacy::BudgetExhausted& x) {
                  throw Error(x.what(), {}, "ask for a larger budget (persona dp budget --set) or use less epsilon");
                }
                const auto r = experiment::experiment_report_dp(*e, tallies, a->dp, *rng);
                if (common.json) print_json(r);
                else print_report(r);
                return 0;
              }
              experiment::ReportOptions o;
              o.alpha = a->alpha;
              const auto r = experiment::experiment_report(*e, *store, o);
              if (common.json) print_json(r);
              else print_report(r);
            } else {
              const auto e = stop->parsed() ? experiment::stop_experiment(*store, a->name)
                                            : experiment::promote_variant(*store, a->name, a->variant, models);
              if (common.json) print_json(e.to_json());
              else if (stop->parsed()) fmt::print("stopped {}: everyone gets the recommender again\n", e.name);
              else if (e.surface == "assistant")
                fmt::print("promoted {} of {}: servers of this store answer chats with its settings from now on\n", a->variant, e.name);
              else fmt::print("promoted {} of {}: its model is now the recommender ({}/recommend.model)\n", a->variant, e.name, models);
            }
            return 0;
          }};
}

}  // namespace persona::cli
