#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "commands.h"
#include "persona/assistant/faq.h"
#include "persona/assistant/knowledge_graph.h"
#include "persona/core/error.h"
#include "persona/demand/forecast.h"
#include "persona/demand/propensity.h"
#include "persona/demand/text_analysis.h"
#include "persona/ml/metrics.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/labelled_texts.h"
#include "persona/pipeline/profiles.h"
#include "persona/privacy/access.h"
#include "persona/recommend/recommend_model.h"
#include "persona/sample/shop_generator.h"

namespace persona::cli {
namespace {

// Step 4 of the demo: the demand models of the shop, trained on what was just ingested, saved
// where `persona analyze --models DIR` finds them.
nlohmann::json train_demand_models(store::Store& store, const std::string& models_dir, bool print) {
  nlohmann::json out;
  ml::TextClassifierOptions options;
  options.candidates = {"tfidf-linear"};  // the sample texts are templated: no need for a long search
  options.time_budget_s = 20;
  for (auto task : {demand::TextTask::Sentiment, demand::TextTask::Intent}) {
    pipeline::LabelledTextReport read;
    const auto data = pipeline::read_store_texts(store, demand::default_label_field(task), &read);
    if (data.size() < 20 || data.label_names.size() < 2) continue;
    ml::TextTrainingReport report;
    const auto classifier = ml::TextClassifier::train(data, options, &report);
    classifier.save(demand::model_path(models_dir, task), demand::text_task_name(task),
                    {{"validation_accuracy", report.validation_accuracy}, {"majority_accuracy", report.majority_accuracy},
                     {"validation_texts", report.validation_rows}});
    out[demand::text_task_name(task)] = {{"texts", data.size()}, {"classes", data.label_names.size()},
                                         {"validation_accuracy", report.validation_accuracy}};
    if (print)
      fmt::print("    {:<10} {} texts, {} classes, validation accuracy {:.3f}\n", demand::text_task_name(task), data.size(),
                 data.label_names.size(), report.validation_accuracy);
  }
  text::KeywordIndex keywords;
  store.for_each_text([&](const Text& t) { keywords.add_document(t.body); });
  demand::save_keyword_index(keywords, demand::keyword_index_path(models_dir));

  const auto events = store.events();
  if (events.size() == 0) return out;
  const int64_t first = events.timestamp.front(), span = events.timestamp.back() - first;
  const int horizon = static_cast<int>(std::min<int64_t>(90, span * 3 / 10 / 86400));
  if (horizon >= 7) {
    const auto train = demand::propensity_set(events, first + span * 4 / 10, horizon);
    const auto test = demand::propensity_set(events, first + span * 65 / 100, horizon, train.home_region);
    if (train.data.rows() >= 20 && test.data.rows() >= 20) {
      auto model = ml::make_tabular_classifier("logistic");
      model->fit(train.data);
      const double auc = ml::roc_auc(test.data.y, model->predict_positive(test.data.x));
      ml::save_tabular_model((std::filesystem::path(models_dir) / "propensity.model").string(), "propensity", *model,
                             demand::propensity_features(), {"no purchase", "purchase"},
                             {{"test_auc", auc}, {"home_region", train.home_region}, {"horizon_days", horizon}});
      out["propensity"] = {{"train_population", train.data.rows()}, {"test_population", test.data.rows()},
                           {"horizon_days", horizon}, {"test_auc", auc}};
      if (print)
        fmt::print("    propensity {} customers, buys within {} days: test AUC {:.3f}\n", train.data.rows(), horizon, auc);
    }
  }
  const auto series = demand::daily_demand(events);
  if (auto it = series.find("all"); it != series.end() && it->second.values.size() >= 35) {
    const auto f = demand::forecast_category("all", it->second, 7);
    double week = 0;
    for (double v : f.forecast) week += v;
    out["forecast"] = {{"next_7_days_units", week}, {"method", f.method}, {"backtest_smape", f.backtest.smape},
                       {"seasonal_naive_smape", f.backtest.naive_smape}};
    if (print)
      fmt::print("    forecast   {:.0f} units in the next 7 days ({}; backtest sMAPE {:.3f}, seasonal naive {:.3f})\n", week,
                 f.method, f.backtest.smape, f.backtest.naive_smape);
  }
  return out;
}

// Step 6 of the demo: the recommender, its method chosen on the last 30 days of events.
// Reranking by segments is validated with segments as of the window's start; the model learns
// the stored profiles' segments, which serving passes in.
nlohmann::json train_recommender(store::Store& store, const pipeline::ProfileConfig& profile_config,
                                 const std::string& models_dir, bool print) {
  const auto events = store.events();
  if (events.size() == 0) return nullptr;
  const int64_t end = *std::max_element(events.timestamp.begin(), events.timestamp.end()) + 1;
  const recommend::Protocol protocol{.split = end};
  const auto plan = recommend::validation_plan(events, {}, protocol, 30);
  recommend::TuneOptions o;
  if (plan.protocol.kind == recommend::Protocol::Kind::Temporal)
    o.segments = pipeline::segments_as_of(events, profile_config, plan.protocol.split);
  const auto tuning = recommend::tune([&](const recommend::InteractionOptions& io) { return recommend::make_holdout(events, io, plan.protocol); },
                                      recommend::default_grid(), o);
  recommend::InteractionOptions options;
  const auto model = recommend::RecommendModel::train(events, options, tuning.chosen, 2, pipeline::stored_segments(store));
  const auto path = (std::filesystem::path(models_dir) / "recommend.model").string();
  const auto& best = tuning.chosen_trial();
  const double popularity = tuning.popularity().validation.ndcg;
  nlohmann::json metrics = {{"method", tuning.chosen.to_json()}, {"validation", best.validation.to_json()},
                            {"popularity_ndcg_at_10", popularity}, {"choice", tuning.reason}};
  model.save(path, metrics);
  if (print) {
    fmt::print("    {} settings compared on {} users; chose {} (nDCG@10 {:.3f}, popularity {:.3f})\n", tuning.trials.size(),
               best.validation.users, best.spec.to_json().dump(), best.validation.ndcg, popularity);
    recommend::RecommendRequest q;
    q.k = 3;
    if (const auto profile = store.profile("U000042")) q.segment = nlohmann::json::parse(*profile).value("segment", -1);
    const auto recs = model.recommend(model.history(store.events_of({"U000042"})), q);
    const auto titles = item_titles(store);
    for (const auto& r : recs) fmt::print("    U000042: {} · {} · {}\n", titled(titles, r.item), r.category, r.reason);
  }
  return {{"model_file", path}, {"method", best.spec.to_json()}, {"validation", best.validation.to_json()}};
}

// Whether 127.0.0.1:port is free to listen on.
bool port_is_free(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return free;
}

// The last step: the shop served on this machine only, with a fresh admin key for the dashboard
// (its link carries the key in the fragment; the key file keeps only its hash).
template <typename Args>
int serve_shop(const Args& args, const std::string& config_path, const std::string& store_path, const std::string& models,
               const Common& common) {
  server::ServerOptions o;
  o.host = "127.0.0.1";
  o.port = args.port != 0 && port_is_free(args.port) ? args.port : 0;
  o.config_path = config_path;
  o.store_path = store_path;
  o.models_dir = models;
  o.api_keys_path = (std::filesystem::path(args.dir) / "persona-api-keys.json").string();
  o.access_log = (std::filesystem::path(args.dir) / "access.log").string();
  o.web_dir = default_web_dir();
  std::filesystem::remove(o.api_keys_path);  // keys of earlier demo runs stop working
  privacy::ApiKeyStore keys(o.api_keys_path);
  const auto key = keys.create("demo dashboard", privacy::Role::Admin);
  if (o.web_dir.empty() && !common.quiet)
    fmt::print(stderr, "(no dashboard in this build: node and npm were missing when it was built)\n");
  return serve_until_stopped(o, common, key.secret);
}

}  // namespace

Command add_demo(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand(
      "demo", "The main job end to end: generate the sample shop, ingest, clean, profile, train, then serve it with its dashboard");
  struct Args {
    std::string dir = "persona-demo", size = "default";
    uint64_t seed = 42;
    bool no_serve = false;
    int port = 8080;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("-d,--dir", args->dir, "Working directory for the shop's files and store");
  sub->add_option("--size", args->size, "small, default or large")->check(CLI::IsMember({"small", "default", "large"}));
  sub->add_option("--seed", args->seed, "Random seed");
  sub->add_flag("--no-serve", args->no_serve, "Stop after the last step instead of serving the shop and its dashboard (scripts)");
  sub->add_option("-p,--port", args->port, "Port to serve on (default 8080, else any free one; 0: any free one)")
      ->check(CLI::Range(0, 65535));
  return {sub, [args, &common] {
            sample::ShopOptions o;
            o.size = sample::ShopSize::named(args->size);
            o.seed = args->seed;
            o.out_dir = args->dir;
            if (!common.json) fmt::print("1/7 generating the sample shop in {} ...\n", args->dir);
            const auto shop = sample::generate_shop(o);
            if (!common.json)
              fmt::print("    {} users, {} items, {} events, {} texts ({:.1f} s)\n", shop.users, shop.items, shop.events,
                         shop.texts, shop.seconds);
            // A fresh store every run, so the demo always shows a whole ingest.
            auto config = pipeline::load_config(shop.config_path);
            const auto store_path = config.resolve(config.store_path);
            for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(store_path + suffix);
            if (!common.json) fmt::print("2/7 ingesting and cleaning into {} ...\n", store_path);
            auto store = open_store(store_path);
            const auto report = pipeline::ingest(config, *store, {.progress = !common.quiet});
            if (!common.json) {
              for (const auto& s : report.sources) print_source_report(s);
              fmt::print("    reject log: {}\n", report.reject_log);
              fmt::print("3/7 summary\n");
            }
            for (const auto& s : report.sources)
              if (s.status == "failed") throw persona::Error(fmt::format("source {} failed: {}", s.source, s.failure), {s.path});
            const auto stats = store->stats(10);
            if (!common.json) print_stats(stats, store_path);
            const std::string models = (std::filesystem::path(args->dir) / "models").string();
            if (!common.json) fmt::print("4/7 training the demand models into {} ...\n", models);
            const auto demand = train_demand_models(*store, models, !common.json);
            if (!common.json) fmt::print("5/7 building the user profiles, tags and segments ...\n");
            const auto profiles = pipeline::build_profiles(*store, config.profile, models);
            if (!common.json) {
              print_profile_report(profiles);
              if (const auto seg = pipeline::load_segments(*store)) print_segments(*seg);
              fmt::print("6/7 training the recommender (method chosen on the last 30 days) ...\n");
            }
            const auto recommender = train_recommender(*store, config.profile, models, !common.json);
            // The assistant answers the shop's customers from its FAQ and its catalogue.
            if (!common.json) fmt::print("7/7 building the assistant's FAQ index and knowledge graph ...\n");
            const auto faq = assistant::FaqIndex::build(
                assistant::read_faq_file((std::filesystem::path(args->dir) / "faq.json").string()), {});
            faq.save((std::filesystem::path(models) / "faq.index").string());
            assistant::KnowledgeGraph graph;
            assistant::add_catalogue(graph, *store);
            store->put_graph(graph.rows());
            const nlohmann::json assistant_built = {{"faq_pairs", faq.size()}, {"graph_entities", graph.entity_count()},
                                                    {"graph_triples", graph.triple_count()}};
            if (!common.json)
              fmt::print("    {} FAQ pairs (English and Chinese); a knowledge graph of {} entities, {} triples\n", faq.size(),
                         graph.entity_count(), graph.triple_count());
            store.reset();  // the server opens its own connections
            if (common.json) {
              print_json({{"shop", shop.to_json()}, {"ingest", report.to_json()}, {"stats", stats_json(stats)},
                          {"models", models}, {"demand", demand}, {"profiles", profiles.to_json()},
                          {"recommender", recommender}, {"assistant", assistant_built}});
              std::fflush(stdout);
              return args->no_serve ? 0 : serve_shop(*args, shop.config_path, store_path, models, common);
            }
            // `persona` may not be on PATH (./run install puts it there): the commands name this binary.
            std::error_code ec;
            auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
            if (!ec) self = std::filesystem::proximate(self, ec);
            const std::string P = ec || self.empty() ? "persona" : self.string();
            fmt::print("\nTry: {} stats --config {}   |   {} rejects --config {} | head\n", P, shop.config_path, P,
                       shop.config_path);
            fmt::print("     {} analyze --models {} \"我的订单到哪里了？\"   |   {} forecast --config {}\n", P, models, P,
                       shop.config_path);
            fmt::print("     {} profile show U000042 --config {}   |   {} segments --config {}\n", P, shop.config_path, P,
                       shop.config_path);
            fmt::print("     {} recommend U000042 --config {} --models {}\n", P, shop.config_path, models);
            fmt::print("     echo \"how long will delivery take?\" | {} chat --config {} --models {} --user U000042\n", P,
                       shop.config_path, models);
            if (args->no_serve) return 0;
            fmt::print("\nServing the shop: its API and dashboard (Ctrl-C stops it) ...\n");
            std::fflush(stdout);
            return serve_shop(*args, shop.config_path, store_path, models, common);
          }};
}

}  // namespace persona::cli
