// persona train recommend, persona eval recommend, persona recommend USER, persona similar ITEM.
#include <chrono>
#include <filesystem>
#include <fstream>

#include <iostream>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "commands.h"
#include "persona/pipeline/erasure.h"
#include "persona/core/error.h"
#include "persona/core/parallel.h"
#include "persona/io/csv_reader.h"
#include "persona/demand/text_analysis.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/profiles.h"
#include "persona/recommend/recommend_model.h"

namespace persona::cli {
namespace {

struct RecommendArgs {
  std::string store, config, models, out, model, before, since, split, end, method = "auto", base = "ease", category, user,
              weighting = "cosine";
  int validation_days = 30, neighbours = 100, threads = 2;
  double lambda = 100, own_weight = 1, alpha = 0.8, half_life = 0, diversity = 0, bm25_k1 = 1.2, bm25_b = 0.75;
  int users = 300, factors = 64, iterations = 15;
  double regularization = 0.05, confidence = 2, learning_rate = 0.05, ratio = 0.2;
  std::string protocol = "temporal", lists;
  std::string train_file, test_file, preset, work;  // eval on a split the user supplies
  size_t last = 1;
  uint64_t seed = 42;
  int epochs = 30;
  size_t k = 10;
  bool exclude = false, include_unavailable = false, all = false;
  std::string users_file;  // recommend --users
  std::optional<double> min_price, max_price;
};

void add_store_options(CLI::App* s, RecommendArgs& a) {
  s->add_option("-s,--store", a.store, "Store: a file, or a postgresql:// URL");
  s->add_option("-c,--config", a.config, "Config file (for its store path)");
}

void add_method_options(CLI::App* s, RecommendArgs& a) {
  s->add_option("--method", a.method, "auto (chosen on a validation split carved from training by the same protocol), popularity, trending, repurchase, item-knn, user-knn, ease, als, bpr, content, hybrid")
      ->check(CLI::IsMember({"auto", "popularity", "trending", "repurchase", "item-knn", "user-knn", "ease", "als", "bpr", "content", "hybrid"}));
  s->add_option("--validation-days", a.validation_days,
                 "Temporal protocol: days before the training end that --method auto validates on (too few users there: "
                 "a random per-user split)")
      ->check(CLI::Range(1, 3650));
  s->add_option("--lambda", a.lambda, "ease: L2 regularisation")->check(CLI::Range(0.0, 1e9));
  s->add_option("--neighbours", a.neighbours, "item-knn: neighbours kept per item")->check(CLI::Range(1, 100000));
  s->add_option("--weighting", a.weighting, "item-knn: cosine, tfidf or bm25")->check(CLI::IsMember({"cosine", "tfidf", "bm25"}));
  s->add_option("--bm25-k1", a.bm25_k1, "item-knn bm25: weight saturation, in units of the mean interaction weight (implicit's 1.2)")->check(CLI::Range(0.0, 1e9));
  s->add_option("--bm25-b", a.bm25_b, "item-knn bm25: length normalisation (0-1; implicit's 0.75)")->check(CLI::Range(0.0, 1.0));
  s->add_option("--base", a.base, "hybrid: the model blended with the user's own history")
      ->check(CLI::IsMember({"popularity", "trending", "item-knn", "user-knn", "ease", "als", "bpr", "content"}));
  s->add_option("--own-weight", a.own_weight, "hybrid: weight of the user's own history")->check(CLI::Range(0.0, 1000.0));
  s->add_option("--users", a.users, "user-knn: neighbouring users blended in")->check(CLI::Range(1, 100000));
  s->add_option("--alpha", a.alpha, "user-knn: weight of the user's own history (0-1)")->check(CLI::Range(0.0, 1.0));
  s->add_option("--half-life", a.half_life, "history weights halve every this many days (0: none)")->check(CLI::Range(0.0, 36500.0));
  s->add_option("--factors", a.factors, "als: latent factors")->check(CLI::Range(1, 4096));
  s->add_option("--iterations", a.iterations, "als: alternating passes")->check(CLI::Range(1, 1000));
  s->add_option("--regularization", a.regularization, "als: L2 on the factors")->check(CLI::Range(0.0, 1e6));
  s->add_option("--confidence", a.confidence, "als: confidence per unit of interaction weight")->check(CLI::Range(0.0, 1e6));
  s->add_option("--epochs", a.epochs, "bpr: passes over the interactions")->check(CLI::Range(1, 10000));
  s->add_option("--learning-rate", a.learning_rate, "bpr: SGD step")->check(CLI::Range(0.0, 10.0));
  s->add_option("--k", a.k, "Recommendations per user that the metrics look at")->check(CLI::Range(1, 1000));
  s->add_option("--threads", a.threads, "Threads")->check(CLI::Range(1, 256));
}

recommend::MethodSpec spec_from(const RecommendArgs& a) {
  recommend::MethodSpec s;
  s.method = a.method;
  s.lambda = a.lambda;
  s.neighbours = a.neighbours;
  s.weighting = a.weighting;
  s.bm25_k1 = a.bm25_k1;
  s.bm25_b = a.bm25_b;
  s.base = a.base;
  s.own_weight = a.own_weight;
  s.users = a.users;
  s.alpha = a.alpha;
  s.half_life_days = a.half_life;
  s.factors = a.factors;
  s.iterations = a.iterations;
  s.regularization = a.regularization;
  s.confidence = a.confidence;
  s.epochs = a.epochs;
  s.learning_rate = a.learning_rate;
  return s;
}

std::string model_path_from(const RecommendArgs& a) {
  if (!a.model.empty()) return a.model;
  return (std::filesystem::path(demand::models_dir_from(a.models)) / "recommend.model").string();
}

pipeline::ProfileConfig profile_config_of(const RecommendArgs& a) {
  return a.config.empty() ? pipeline::ProfileConfig{} : pipeline::load_config(a.config).profile;
}

// The protocol named by --protocol (--holdout's older names too) with its settings.
recommend::Protocol protocol_from(const RecommendArgs& a) {
  recommend::Protocol p;
  const std::string name = a.protocol == "last-k" ? "leave-last-out" : a.protocol == "random" ? "random-per-user" : a.protocol;
  p.kind = recommend::Protocol::kind_of(name);
  p.last = a.last;
  p.ratio = a.ratio;
  p.seed = a.seed;
  return p;
}

void add_protocol_options(CLI::App* s, RecommendArgs& a) {
  s->add_option("--protocol,--holdout", a.protocol,
                "temporal (train before --split, test after), leave-last-out (each user's last --last items) or "
                "random-per-user (a seeded --ratio of each user's items)")
      ->check(CLI::IsMember({"temporal", "leave-last-out", "random-per-user", "last-k", "random"}));
  s->add_option("--last", a.last, "leave-last-out: items held out per user")->check(CLI::Range(1, 1000));
  s->add_option("--ratio,--fraction", a.ratio, "random-per-user: share of each user's items held out")->check(CLI::Range(0.01, 0.99));
  s->add_option("--seed", a.seed, "random-per-user: seed");
  s->add_flag("--exclude-seen", a.exclude, "Never recommend what the user chose in training (validation follows the same rule)");
}

struct Choice {
  recommend::MethodSpec spec;
  std::optional<recommend::Tuning> tuning;  // with --method auto
  nlohmann::json validation;                // the validation protocol, the choice and every trial (auto)
};

// The method to train: the given one, or with --method auto the one tuning chooses on a
// validation split carved from `train` (the training events) by the evaluation's protocol,
// with the same seen-item rule; reranking by segments as of a temporal window's start.
Choice choose(const store::EventColumns& train, const RecommendArgs& a, const recommend::Protocol& evaluation, bool print) {
  Choice c;
  if (a.method != "auto") {
    c.spec = spec_from(a);
    return c;
  }
  const recommend::InteractionOptions options;
  const auto plan = recommend::validation_plan(train, options, evaluation, a.validation_days);
  const bool temporal = plan.protocol.kind == recommend::Protocol::Kind::Temporal;
  recommend::TuneOptions o;
  o.k = a.k;
  o.exclude_seen = a.exclude;
  o.threads = a.threads;
  if (temporal) o.segments = pipeline::segments_as_of(train, profile_config_of(a), plan.protocol.split);
  c.tuning = recommend::tune([&](const recommend::InteractionOptions& io) { return recommend::make_holdout(train, io, plan.protocol); },
                             recommend::default_grid(), o);
  c.spec = c.tuning->chosen;
  c.validation = c.tuning->to_json();
  c.validation["protocol"] = plan.to_json();
  c.validation["exclude_seen"] = a.exclude;
  if (print) {
    if (!plan.fallback.empty()) fmt::print("note: {}\n", plan.fallback);
    fmt::print("validation ({}{}, {} users): nDCG@{}\n", plan.protocol.name(),
               temporal ? fmt::format(" window {} to {}", format_date(plan.protocol.split), format_date(plan.protocol.end)) : "",
               c.tuning->users, a.k);
    for (const auto& t : c.tuning->trials)
      fmt::print("  {:<60} {:.4f}  ({:.2f} s)\n", t.spec.to_json().dump(), t.validation.ndcg, t.train_s);
    fmt::print("chosen {}: {}\n", c.spec.to_json().dump(), c.tuning->reason);
  }
  return c;
}

// The chosen setting's validation metrics and popularity's nDCG beside them, for the model file.
void add_validation_metrics(const Choice& c, nlohmann::json& metrics) {
  if (!c.tuning) return;
  metrics["validation"] = c.tuning->chosen_trial().validation.to_json();
  metrics["popularity_ndcg_at_10"] = c.tuning->popularity().validation.to_json()["ndcg_at_10"];
  metrics["choice"] = c.tuning->reason;
}

void print_metrics(const std::string& what, const recommend::RankingMetrics& m) {
  fmt::print("{:<44} users {:>6}  P@{} {:.4f}  R {:.4f}  nDCG {:.4f}  MAP {:.4f}  hit {:.3f}  coverage {:.3f}  {:.0f} recs/s\n",
             what, m.users, m.k, m.precision, m.recall, m.ndcg, m.map, m.hit_rate, m.coverage, m.recs_per_s);
}

}  // namespace

void add_train_recommend(CLI::App* train, std::vector<std::function<int()>>& runners, Common& common) {
  auto a = std::make_shared<RecommendArgs>();
  auto* s = train->add_subcommand("recommend", "A recommender from the store's events (method chosen on validation)");
  s->fallthrough();
  add_store_options(s, *a);
  add_method_options(s, *a);
  add_protocol_options(s, *a);
  s->add_option("--before", a->before, "Train on events before this date (default: all)");
  s->add_option("--since", a->since,
                "Train on events from this date on (default: all): only the window is read, so memory follows the window");
  s->add_option("--models", a->models, "Model directory (default $PERSONA_MODELS or ./models)");
  s->add_option("-o,--out", a->model, "Model file (default <models>/recommend.model)");
  runners.push_back([s, a, &common]() -> int {
    if (!s->parsed()) return -1;
    auto store = open_existing_store(store_path_from(a->store, a->config));
    const int64_t erasures = store->erasure_count();  // before the events are read (see publish below)
    const auto events = a->since.empty() ? store->events()
                                         : store->events_since(store::Use::Analytics, parse_date(a->since, "--since"));
    if (events.size() == 0 && !a->since.empty())
      throw Error(fmt::format("the store has no events on or after {} to learn from", a->since), {}, "give an earlier --since");
    if (events.size() == 0) throw Error("the store has no events to learn from", {}, "run `persona ingest` first");
    const int64_t split = a->before.empty() ? time_after(events.timestamp.back()) : parse_date(a->before, "--before");
    auto protocol = protocol_from(*a);
    protocol.split = split;
    recommend::InteractionOptions options;
    options.before = split;
    const auto c = choose(recommend::training_events(events, options, recommend::Protocol{.split = split}), *a, protocol,
                          !common.json && !common.quiet);
    const auto t0 = std::chrono::steady_clock::now();
    // Serving passes each user's stored profile segment, so the model learns those segments.
    const auto model = recommend::RecommendModel::train(events, options, c.spec, a->threads, pipeline::stored_segments(*store));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto path = model_path_from(*a);
    nlohmann::json metrics = {{"method", c.spec.to_json()}, {"train_s", seconds}};
    add_validation_metrics(c, metrics);
    model.save(path, metrics);
    // On a PostgreSQL store every server swaps it in (a model saved elsewhere is an experiment).
    if (pipeline::model_name(path) == "recommend" && !pipeline::publish_model(*store, path, erasures)) {
      std::filesystem::remove(path);  // it may have learned from the person erased meanwhile
      throw Error("a user was erased while the model trained: it was neither published nor kept", {path},
                  "run `persona train recommend` again");
    }
    if (common.json) print_json({{"model_file", path}, {"method", c.spec.to_json()}, {"train_s", seconds}, {"items", model.items()},
                                 {"segments", model.segments()}, {"validation", c.validation}});
    else fmt::print("trained {} on {} items in {:.2f} s; saved {}\n", c.spec.to_json().dump(), model.items(), seconds, path);
    return 0;
  });
}

namespace {

// The events of one file of a split the user supplies, ingested with the mapping of --preset or
// --config into a store of its own in `work` (its reject log beside it).
store::EventColumns events_of_file(const RecommendArgs& a, const std::string& file, const std::string& name,
                                   const std::filesystem::path& work, nlohmann::json& report) {
  // With --config, its first source's mapping (the config names no files of ours); with --preset, the preset's.
  auto config = ingest_config_from(a.config, a.preset, a.config.empty() ? std::vector<std::string>{file} : std::vector<std::string>{},
                                   (work / (name + ".db")).string(), "");
  if (!a.config.empty()) {
    // The config's mapping, applied to this file.
    if (config.sources.empty()) throw Error("the config names no source whose mapping to use", {a.config});
    auto source = config.sources.front();
    source.mapping.path = std::filesystem::absolute(file).string();
    config.sources = {source};
  }
  config.reject_log = (work / (name + ".rejects.jsonl")).string();
  auto store = open_store(config.store_path);
  const auto r = pipeline::ingest(config, *store, {.progress = false});
  report[name] = {{"file", file}, {"sources", nlohmann::json::array()}};
  if (!a.work.empty()) report[name]["reject_log"] = config.reject_log;  // kept: the user named the directory
  for (const auto& src : r.sources) {
    if (src.status == "failed") throw Error(fmt::format("{} file: {}", name, src.failure), {file});
    report[name]["sources"].push_back(src.to_json());
  }
  auto events = store->events();
  if (events.size() == 0)
    throw Error(fmt::format("the {} file has no usable events", name), {file},
                a.work.empty() ? "give --work DIR to keep the reject log and read why" : "see the reject log: " + config.reject_log);
  return events;
}

// A temporary directory removed when it goes out of scope (unless the user named it).
struct WorkDir {
  std::filesystem::path path;
  bool remove = false;
  explicit WorkDir(const std::string& given) {
    if (!given.empty()) {
      path = given;
      std::filesystem::create_directories(path);
      return;
    }
    std::string templ = (std::filesystem::temp_directory_path() / "persona-eval-XXXXXX").string();
    if (!mkdtemp(templ.data())) throw Error("cannot create a temporary directory", {templ});
    path = templ;
    remove = true;
  }
  ~WorkDir() {
    std::error_code ec;
    if (remove) std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

Runner add_eval_recommend(CLI::App* eval, Common& common) {
  auto a = std::make_shared<RecommendArgs>();
  auto* s = eval->add_subcommand("recommend", "Evaluate recommendation methods on a split of the store's events "
                                              "(temporal, leave-last-out, random per user) or on your own train and test files");
  s->fallthrough();
  add_store_options(s, *a);
  add_method_options(s, *a);
  add_protocol_options(s, *a);
  s->add_option("--split", a->split, "Temporal split: test on events from this date on; train before it");
  s->add_option("--end", a->end, "Test on events before this date (default: all after the split)");
  s->add_option("--train", a->train_file, "Your own split: train on this file's events (with --preset or --config's mapping)");
  s->add_option("--test", a->test_file, "Your own split: test on this file's events");
  s->add_option("-p,--preset", a->preset, "--train/--test: a built-in mapping for both files (see `persona presets`)");
  s->add_option("--work", a->work, "--train/--test: where the two files are ingested (default: a temporary directory, "
                                   "removed afterwards; name one to keep the reject logs)");
  s->add_option("--lists", a->lists, "Write each evaluated user's top k, per method, as JSON Lines to this file");
  return [s, a, &common]() -> int {
    if (!s->parsed()) return -1;
    const bool given = !a->train_file.empty() || !a->test_file.empty();
    if (given && (a->train_file.empty() || a->test_file.empty()))
      throw Error("your own split needs both --train FILE and --test FILE");
    if (given && a->preset.empty() && a->config.empty())
      throw Error("--train/--test need a mapping", {}, "give --preset NAME (see `persona presets`) or --config FILE");
    if (given && !a->store.empty()) throw Error("give either --store or --train/--test, not both");
    auto protocol = protocol_from(*a);
    if (!given && protocol.kind == recommend::Protocol::Kind::Temporal && a->split.empty())
      throw Error("a temporal protocol needs --split DATE", {}, "or use --protocol leave-last-out / random-per-user, or --train/--test");
    // The events: the store's, or the two files'.
    std::optional<WorkDir> work;
    nlohmann::json files;
    std::unique_ptr<store::Store> store;
    store::EventColumns events, test_events;
    if (given) {
      work.emplace(a->work);
      events = events_of_file(*a, a->train_file, "train", work->path, files);
      test_events = events_of_file(*a, a->test_file, "test", work->path, files);
      // Validation mirrors the split: temporal when the test part follows training, else random per user.
      const int64_t train_end = *std::max_element(events.timestamp.begin(), events.timestamp.end()) + 1;
      const int64_t test_start = *std::min_element(test_events.timestamp.begin(), test_events.timestamp.end());
      protocol = recommend::Protocol{};
      if (test_start >= train_end) protocol.split = train_end;
      else protocol.kind = recommend::Protocol::Kind::RandomPerUser, protocol.ratio = a->ratio, protocol.seed = a->seed;
    } else {
      store = open_existing_store(store_path_from(a->store, a->config));
      events = store->events();
      if (events.size() == 0) throw Error("the store has no events to evaluate on", {}, "run `persona ingest` first");
      if (protocol.kind == recommend::Protocol::Kind::Temporal) {
        protocol.split = parse_date(a->split, "--split");
        if (!a->end.empty()) protocol.end = parse_date(a->end, "--end");
      }
    }
    const recommend::InteractionOptions options;
    const auto c = choose(given ? events : recommend::training_events(events, options, protocol), *a, protocol,
                          !common.json && !common.quiet);
    // Segments only as of a temporal split: profiles of the whole period would know the test.
    const bool temporal = !given && protocol.kind == recommend::Protocol::Kind::Temporal;
    const auto split_segments = temporal && c.spec.rerank.segment > 0
                                    ? pipeline::segments_as_of(events, profile_config_of(*a), protocol.split)
                                    : pipeline::SegmentsByUser{};
    auto holdout_for = [&](double half_life) {
      recommend::InteractionOptions o;
      o.half_life_days = half_life;
      auto h = given ? recommend::given_holdout(events, test_events, o) : recommend::make_holdout(events, o, protocol);
      if (temporal) h.assign_segments(split_segments);
      if (h.evaluated_users() == 0)
        throw Error(given ? "no user of the test file has events in the train file"
                    : temporal ? "no user has events on both sides of the split"
                               : "no user has enough items to hold some out",
                    {}, given ? "the two files must share user ids" : "choose a --split inside the data's time range, or a smaller --last");
      return h;
    };
    const auto plain = holdout_for(0);
    std::ofstream lists;
    if (!a->lists.empty()) {
      lists.open(a->lists);
      if (!lists) throw Error("cannot write", {a->lists});
      if (store) pipeline::register_export(*store, a->lists, {{"what", "evaluation lists"}, {"ids", "real"}});
    }
    nlohmann::json results = nlohmann::json::array();
    auto run = [&](const recommend::MethodSpec& m, const std::string& role) {
      const auto decayed = m.half_life_days > 0 ? std::optional(holdout_for(m.half_life_days)) : std::nullopt;
      const auto& holdout = decayed ? *decayed : plain;
      const auto t0 = std::chrono::steady_clock::now();
      const auto r = recommend::fit_recommender(holdout.train, m, a->threads);
      const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::vector<std::vector<int32_t>> top;
      const auto metrics = recommend::evaluate(*r, holdout, {.k = a->k, .exclude_seen = a->exclude, .threads = a->threads,
                                                             .rerank = m.rerank, .lists = lists.is_open() ? &top : nullptr});
      for (size_t u = 0; u < top.size(); ++u) {
        if (top[u].empty()) continue;
        nlohmann::json items = nlohmann::json::array();
        for (auto i : top[u]) items.push_back(holdout.train.items.name(static_cast<IdMap::Id>(i)));
        lists << nlohmann::json{{"role", role}, {"method", m.to_json()}, {"user", holdout.train.users.name(static_cast<IdMap::Id>(u))},
                                {"items", items}}.dump() << '\n';
      }
      auto j = metrics.to_json();
      j["train_s"] = train_s;
      results.push_back({{"role", role}, {"method", m.to_json()}, {"test", j}});
      if (!common.json) print_metrics(role + " " + m.to_json().dump(), metrics);
    };
    run(c.spec, "chosen");
    for (const char* baseline : {"popularity", "repurchase"}) {
      if (c.spec.method == baseline && !c.spec.rerank.active()) continue;
      recommend::MethodSpec b;
      b.method = baseline;
      run(b, "baseline");
    }
    if (lists.is_open()) {
      lists.close();
      if (lists.fail()) throw Error("cannot write (disk full?)", {a->lists});
    }
    auto protocol_json = given ? nlohmann::json{{"protocol", "given"}, {"train", a->train_file}, {"test", a->test_file}} : protocol.to_json();
    protocol_json["exclude_seen"] = a->exclude;
    if (common.json) {
      nlohmann::json out = {{"protocol", protocol_json}, {"train_items", plain.train.item_count()}, {"results", results}, {"validation", c.validation}};
      if (given) out["files"] = files;
      print_json(out);
    }
    return 0;
  };
}

namespace {

// The request for one user: the command's filters, the user's segment, the store's unavailable items.
recommend::RecommendRequest request_from(const RecommendArgs& a, int32_t segment, const std::vector<std::string>& unavailable) {
  recommend::RecommendRequest q;
  q.segment = segment;
  q.k = a.k;
  q.exclude_seen = a.exclude;
  q.category = a.category;
  q.min_price = a.min_price;
  q.max_price = a.max_price;
  q.diversity = a.diversity;
  q.exclude_items = unavailable;
  return q;
}

nlohmann::json recommendation_json(const recommend::Recommendation& r) {
  return {{"item", r.item}, {"category", r.category}, {"score", r.score}, {"reason", r.reason}, {"because", r.because}};
}

// The users a batch is for: every user of the store, or the ids of a file (one per line).
std::vector<std::string> batch_users(store::Store& store, const RecommendArgs& a) {
  std::vector<std::string> users;
  if (a.users_file.empty()) {
    for (auto& u : store.users(store::Use::Any)) users.push_back(std::move(u.id));
    return users;
  }
  std::ifstream in(a.users_file);
  if (!in) throw Error("cannot read the users file", {a.users_file});
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    const auto start = line.find_first_not_of(" \t");
    if (start != std::string::npos) users.push_back(line.substr(start));
  }
  return users;
}

// Top-k lists for many users from one model load, as `persona recommend USER` gives each one:
// the same consent rule, history, segment and filters. Threads split the users; the file is
// written in the users' order.
int recommend_batch(const RecommendArgs& a, const Common& common) {
  const auto model = recommend::RecommendModel::load(model_path_from(a));
  auto store = open_existing_store(store_path_from(a.store, a.config));
  const auto users = batch_users(*store, a);
  const auto refusing_list = store->users_refusing(store::Use::Personalisation);
  const std::unordered_set<std::string> refusing(refusing_list.begin(), refusing_list.end());
  const auto events = store->events(store::Use::Personalisation);
  const auto rows = model.histories(events);
  std::unordered_map<std::string_view, size_t> row_of;
  for (size_t u = 0; u < events.user_ids.size(); ++u) row_of.emplace(events.user_ids[u], u);
  const auto segments = pipeline::stored_segments(*store);
  const auto unavailable = a.include_unavailable ? std::vector<std::string>{} : store->unavailable_items();
  const recommend::Row none;
  std::vector<std::vector<recommend::Recommendation>> lists(users.size());
  parallel_chunks(users.size(), a.threads, 16, [&](size_t lo, size_t hi) {
    auto q = request_from(a, -1, unavailable);  // once per thread: only the segment differs by user
    for (size_t n = lo; n < hi; ++n) {
      const bool personal = !refusing.count(users[n]);
      const auto row = personal ? row_of.find(users[n]) : row_of.end();
      const auto segment = personal ? segments.find(users[n]) : segments.end();
      q.segment = segment != segments.end() ? segment->second : -1;
      lists[n] = model.recommend(row != row_of.end() ? rows[row->second] : none, q);
    }
  });
  const bool csv = a.out.size() >= 4 && a.out.compare(a.out.size() - 4, 4, ".csv") == 0;
  std::ofstream file;
  if (!a.out.empty()) {
    file.open(a.out, std::ios::binary);
    if (!file) throw Error("cannot write", {a.out});
    pipeline::register_export(*store, a.out, {{"what", "recommendation lists"}, {"ids", "real"}});
  }
  std::ostream& out = a.out.empty() ? std::cout : file;
  if (csv) out << "user,rank,item,score,category,reason,because\n";
  for (size_t n = 0; n < users.size(); ++n) {
    if (csv) {
      for (size_t r = 0; r < lists[n].size(); ++r) {
        const auto& x = lists[n][r];
        out << io::csv_field(users[n]) << ',' << r + 1 << ',' << io::csv_field(x.item) << ',' << fmt::format("{:.6g}", x.score) << ','
            << io::csv_field(x.category) << ',' << io::csv_field(x.reason) << ',' << io::csv_field(x.because) << '\n';
      }
      continue;
    }
    nlohmann::json items = nlohmann::json::array();
    for (const auto& x : lists[n]) items.push_back(recommendation_json(x));
    out << nlohmann::json{{"user", users[n]}, {"recommendations", items}}.dump() << '\n';
  }
  out.flush();
  if (!out) throw Error("cannot write (disk full?)", {a.out.empty() ? "stdout" : a.out});
  if (!a.out.empty() && !common.quiet)
    fmt::print(stderr, "wrote the top {} of {} users to {}\n", a.k, users.size(), a.out);
  return 0;
}

}  // namespace

Command add_recommend(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("recommend", "Top-k items for a user, with a reason for each (from a trained model); "
                                              "--all or --users FILE: lists for many users from one model load");
  auto a = std::make_shared<RecommendArgs>();
  sub->add_option("user", a->user, "User id (an unknown user gets what is popular)");
  sub->add_flag("--all", a->all, "Lists for every user of the store (JSON Lines, or CSV when --out ends in .csv)");
  sub->add_option("--users", a->users_file, "Lists for the users of this file (one id per line)");
  sub->add_option("--out", a->out, "With --all or --users: write the lists here (default: standard output)");
  sub->add_option("--threads", a->threads, "With --all or --users: threads")->check(CLI::Range(1, 256));
  add_store_options(sub, *a);
  sub->add_option("--model", a->model, "Model file (default <models>/recommend.model)");
  sub->add_option("--models", a->models, "Model directory");
  sub->add_option("-k,--k", a->k, "How many")->check(CLI::Range(0, 10000));
  sub->add_flag("--exclude-bought", a->exclude, "Leave out what the user chose before");
  sub->add_option("--category", a->category, "Only this category (or its subcategories)");
  sub->add_option("--min-price", a->min_price, "Lowest price");
  sub->add_option("--max-price", a->max_price, "Highest price");
  sub->add_option("--diversity", a->diversity, "0 (by score) to 1 (many categories): maximal marginal relevance")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_flag("--include-unavailable", a->include_unavailable, "Also items the store marks unavailable");
  return {sub, [a, &common] {
            const bool batch = a->all || !a->users_file.empty();
            if (batch == !a->user.empty() || (a->all && !a->users_file.empty()))
              throw Error("name one user, or give --all or --users FILE", {}, "e.g. `persona recommend u42` or `persona recommend --all --out lists.jsonl`");
            if (!batch && !a->out.empty()) throw Error("--out is for lists of many users (--all or --users FILE)");
            if (batch) return recommend_batch(*a, common);
            const auto model = recommend::RecommendModel::load(model_path_from(*a));
            auto store = open_existing_store(store_path_from(a->store, a->config));
            // Without consent to personalisation the user is served as a stranger: what is popular.
            const bool personal = store->consent(a->user).personalisation;
            const auto history = personal ? model.history(store->events_of({a->user})) : recommend::Row{};
            int32_t segment = -1;
            if (const auto profile = personal ? store->profile(a->user) : std::nullopt)
              segment = nlohmann::json::parse(*profile).value("segment", -1);
            const auto q = request_from(*a, segment, a->include_unavailable ? std::vector<std::string>{} : store->unavailable_items());
            const auto recs = model.recommend(history, q);
            const auto titles = item_titles(*store);
            if (common.json) {
              nlohmann::json j = nlohmann::json::array();
              for (const auto& r : recs) {
                auto one = recommendation_json(r);
                one["title"] = title_of(titles, r.item);
                j.push_back(std::move(one));
              }
              print_json({{"user", a->user}, {"personalised", personal}, {"history_items", history.size()}, {"segment", q.segment},
                          {"method", model.recommender().params()},
                          {"recommendations", j}});
              return 0;
            }
            fmt::print("{} for user {} ({} items in their history, {})\n", recs.size(), a->user, history.size(),
                       model.recommender().params().dump());
            for (size_t i = 0; i < recs.size(); ++i) {
              std::string reason = recs[i].reason;
              if (!recs[i].because.empty()) reason = "similar to " + titled(titles, recs[i].because) + ", which you chose";
              fmt::print("{:>3}. {}\n     {} · {:.4f} · {}\n", i + 1, titled(titles, recs[i].item), recs[i].category,
                         recs[i].score, reason);
            }
            return 0;
          }};
}

Command add_similar(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("similar", "Items most like an item (item-item methods)");
  auto a = std::make_shared<RecommendArgs>();
  sub->add_option("item", a->user, "Item id")->required();
  sub->add_option("--model", a->model, "Model file (default <models>/recommend.model)");
  sub->add_option("--models", a->models, "Model directory");
  sub->add_option("-k,--k", a->k, "How many")->check(CLI::Range(0, 10000));
  add_store_options(sub, *a);
  sub->add_flag("--include-unavailable", a->include_unavailable, "Also items the store marks unavailable");
  return {sub, [a, &common] {
            const auto model = recommend::RecommendModel::load(model_path_from(*a));
            // With a store, its unavailable items are left out.
            std::vector<std::string> unavailable;
            std::unordered_map<std::string, std::string> titles;  // with a store: names, not only ids
            if (!a->store.empty() || !a->config.empty()) {
              auto store = open_existing_store(store_path_from(a->store, a->config));
              if (!a->include_unavailable) unavailable = store->unavailable_items();
              titles = item_titles(*store);
            }
            const auto recs = model.similar(a->user, a->k, unavailable);
            if (common.json) {
              nlohmann::json j = nlohmann::json::array();
              for (const auto& r : recs) {
                j.push_back({{"item", r.item}, {"category", r.category}, {"score", r.score}});
                if (const auto title = title_of(titles, r.item); !title.empty()) j.back()["title"] = title;
              }
              print_json({{"item", a->user}, {"similar", j}});
              return 0;
            }
            if (recs.empty()) fmt::print("no similar items: nobody who chose {} chose anything else\n", a->user);
            for (size_t i = 0; i < recs.size(); ++i)
              fmt::print("{:>3}. {}\n     {} · {:.4f}\n", i + 1, titled(titles, recs[i].item), recs[i].category, recs[i].score);
            return 0;
          }};
}

}  // namespace persona::cli
