// persona faq build|ask|eval: the assistant's FAQ retrieval.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.h"
#include "persona/io/input.h"
#include "persona/assistant/assistant.h"
#include "persona/assistant/faq.h"
#include "persona/assistant/graph_answerer.h"
#include "persona/assistant/knowledge_graph.h"
#include "persona/assistant/orders.h"
#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/core/model.h"
#include "persona/core/time.h"
#include "persona/demand/text_analysis.h"
#include "persona/io/csv_reader.h"
#include "persona/ml/text_classifier.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/labelled_texts.h"
#include "persona/recommend/recommend_model.h"

namespace persona::cli {
namespace {

struct FaqArgs {
  std::string file, models, index, question, questions;
  size_t k = 5;
  assistant::FaqOptions options;
};

void add_index_options(CLI::App* s, FaqArgs& a) {
  s->add_option("--bm25-share", a.options.bm25_share, "Weight of BM25 in the fused score (the rest: TF-IDF cosine)")
      ->check(CLI::Range(0.0, 1.0));
  s->add_option("--question-repeats", a.options.question_repeats, "How many times a pair's question counts against its answer")
      ->check(CLI::Range(1, 10));
  s->add_option("--min-cosine", a.options.min_cosine, "Below this cosine no pair answers well enough")->check(CLI::Range(0.0, 1.0));
}

std::string index_path(const FaqArgs& a) {
  if (!a.index.empty()) return a.index;
  return (std::filesystem::path(demand::models_dir_from(a.models)) / "faq.index").string();
}

// Reworded questions with the id of the pair that answers each: CSV with a header naming
// `question` and `document` (or `id`) columns.
std::vector<std::pair<std::string, std::string>> read_labelled_questions(const std::string& path) {
  io::CsvReader reader(path);
  int question = -1, id = -1;
  for (size_t c = 0; c < reader.columns().size(); ++c) {
    if (reader.columns()[c] == "question") question = static_cast<int>(c);
    if (reader.columns()[c] == "document" || reader.columns()[c] == "id") id = static_cast<int>(c);
  }
  if (question < 0 || id < 0) throw Error("expected columns \"question\" and \"document\" (or \"id\")", {path, 1});
  std::vector<std::pair<std::string, std::string>> out;
  io::Record r;
  while (reader.next(r)) {
    if (!r.problem.empty()) throw Error(r.problem, {path, r.line});
    if (r.fields.size() <= static_cast<size_t>(std::max(question, id))) throw Error("too few fields", {path, r.line});
    out.emplace_back(std::string(r.fields[static_cast<size_t>(question)]), std::string(r.fields[static_cast<size_t>(id)]));
  }
  return out;
}

}  // namespace

Command add_faq(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("faq", "FAQ retrieval: index question/answer pairs, answer questions, evaluate");
  sub->require_subcommand(1);
  auto a = std::make_shared<FaqArgs>();
  auto* build = sub->add_subcommand("build", "Index a FAQ file (JSON or JSON Lines of {question, answer, id})");
  build->fallthrough();  // --json and --quiet belong to `faq`
  build->add_option("file", a->file, "FAQ file")->required();
  build->add_option("--models", a->models, "Model directory (default $PERSONA_MODELS or ./models)");
  build->add_option("-o,--out", a->index, "Index file (default <models>/faq.index)");
  add_index_options(build, *a);
  auto* ask = sub->add_subcommand("ask", "The FAQ pairs that best answer a question");
  ask->fallthrough();
  ask->add_option("question", a->question, "The question")->required();
  ask->add_option("--models", a->models, "Model directory");
  ask->add_option("--index", a->index, "Index file (default <models>/faq.index)");
  ask->add_option("-k,--k", a->k, "How many pairs")->check(CLI::Range(1, 1000));
  auto* eval = sub->add_subcommand("eval", "Recall@1/3 and MRR@5 of a FAQ file on reworded questions with known answers");
  eval->fallthrough();
  eval->add_option("file", a->file, "FAQ file")->required();
  eval->add_option("--questions", a->questions, "CSV of question,document (the id of the answering pair)")->required();
  add_index_options(eval, *a);
  return {sub, [=, &common] {
            if (build->parsed()) {
              const auto t0 = std::chrono::steady_clock::now();
              const auto index = assistant::FaqIndex::build(assistant::read_faq_file(a->file), a->options);
              const auto path = index_path(*a);
              std::filesystem::create_directories(std::filesystem::path(path).parent_path().empty()
                                                      ? std::filesystem::path(".")
                                                      : std::filesystem::path(path).parent_path());
              index.save(path);
              const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              if (common.json) print_json({{"index_file", path}, {"pairs", index.size()}, {"seconds", s}});
              else fmt::print("indexed {} FAQ pairs in {:.2f} s; saved {}\n", index.size(), s, path);
              return 0;
            }
            if (ask->parsed()) {
              const auto index = assistant::FaqIndex::load(index_path(*a));
              const auto matches = index.search(a->question, a->k);
              const bool good = index.answer(a->question).has_value();
              if (common.json) {
                nlohmann::json j = nlohmann::json::array();
                for (const auto& m : matches) {
                  const auto& e = index.entry(m.entry);
                  j.push_back({{"id", e.id}, {"question", e.question}, {"answer", e.answer}, {"score", m.score},
                               {"bm25", m.bm25}, {"cosine", m.cosine}});
                }
                print_json({{"question", a->question}, {"answered", good}, {"matches", j}});
                return 0;
              }
              if (!good) fmt::print("No FAQ answers this well (no shared content word, or cosine below {:.2f}); the closest:\n",
                                    index.options().min_cosine);
              for (size_t i = 0; i < matches.size(); ++i) {
                const auto& e = index.entry(matches[i].entry);
                fmt::print("{}. [{}] {} (score {:.3f}, cosine {:.3f})\n   {}\n", i + 1, e.id, e.question, matches[i].score,
                           matches[i].cosine, e.answer);
              }
              return 0;
            }
            // eval
            const auto index = assistant::FaqIndex::build(assistant::read_faq_file(a->file), a->options);
            const auto questions = read_labelled_questions(a->questions);
            std::map<std::string, size_t> known;
            for (size_t i = 0; i < index.size(); ++i) known[index.entry(i).id] = i;
            double r1 = 0, r3 = 0, mrr = 0;
            size_t unknown = 0;
            const auto t0 = std::chrono::steady_clock::now();
            for (const auto& [q, id] : questions) {
              if (!known.count(id)) {
                ++unknown;
                continue;
              }
              const auto top = index.search(q, 5);
              for (size_t rank = 0; rank < top.size(); ++rank)
                if (index.entry(top[rank].entry).id == id) {
                  r1 += rank < 1, r3 += rank < 3, mrr += 1.0 / static_cast<double>(rank + 1);
                  break;
                }
            }
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const double n = static_cast<double>(questions.size() - unknown);
            if (n == 0) throw Error("no question names a pair of the FAQ file", {a->questions}, "check the ids");
            const nlohmann::json j = {{"questions", questions.size() - unknown}, {"unknown_ids", unknown},
                                      {"recall_at_1", r1 / n}, {"recall_at_3", r3 / n}, {"mrr_at_5", mrr / n},
                                      {"questions_per_s", s > 0 ? n / s : 0.0}};
            if (common.json) print_json(j);
            else fmt::print("{} questions: Recall@1 {:.4f}  Recall@3 {:.4f}  MRR@5 {:.4f}  ({:.0f} questions/s){}\n",
                            j["questions"].get<size_t>(), r1 / n, r3 / n, mrr / n, j["questions_per_s"].get<double>(),
                            unknown ? fmt::format("; {} with ids not in the FAQ left out", unknown) : "");
            return 0;
          }};
}

namespace {

struct KgArgs {
  std::string store, config, crosswoz, question, cases, failures;
  std::vector<std::string> triples;
  bool catalogue = false;
};

nlohmann::json answer_json(const assistant::KnowledgeGraph& g, const assistant::GraphAnswer& a) {
  nlohmann::json values = nlohmann::json::array();
  for (const auto& v : a.values) values.push_back(v.text);
  const char* kinds[] = {"none", "attribute", "lookup"};
  nlohmann::json facts = nlohmann::json::array();
  for (const auto& f : a.facts) {
    nlohmann::json v = nlohmann::json::array();
    for (const auto& x : f.values) v.push_back(x.text);
    facts.push_back({{"relation", f.relation}, {"values", v}});
  }
  return {{"kind", kinds[static_cast<int>(a.kind)]}, {"entity", a.entity >= 0 ? g.entity_at(a.entity).name : ""},
          {"relation", a.relation}, {"values", values}, {"facts", facts}, {"answer", a.text}, {"reason", a.reason}};
}

// One evaluation case: earlier turns (whose entity names become the conversation's last
// entity), a question, and the expected entity, relation and values.
struct Case {
  std::vector<std::string> history;
  std::string question, entity, relation;
  std::vector<std::string> values;
};

std::vector<Case> read_cases(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read", {path});
  std::vector<Case> out;
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto j = parse_json_or_throw(line, {path, line_no});
    try {
      Case c;
      c.history = j.value("history", std::vector<std::string>{});
      c.question = j.at("question");
      c.entity = j.at("entity");
      c.relation = j.at("relation");
      c.values = j.at("values").get<std::vector<std::string>>();
      out.push_back(std::move(c));
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("a case needs question, entity, relation and values: {}", e.what()), {path, line_no});
    }
  }
  return out;
}

}  // namespace

Command add_kg(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("kg", "The assistant's knowledge graph: build it into the store, ask it, evaluate it");
  sub->require_subcommand(1);
  auto a = std::make_shared<KgArgs>();
  auto store_options = [&](CLI::App* s) {
    s->fallthrough();
    s->add_option("-s,--store", a->store, "Store: a file, or a postgresql:// URL");
    s->add_option("-c,--config", a->config, "Config file (for its store path)");
  };
  auto* build = sub->add_subcommand("build", "Build the graph from the catalogue, triples files and CrossWOZ databases");
  store_options(build);
  build->add_flag("--catalogue", a->catalogue, "The store's items: category, brand, price, availability");
  build->add_option("--triples", a->triples, "CSV of subject,subject_type,relation,object[,object_type] (repeatable)");
  build->add_option("--crosswoz", a->crosswoz, "Folder of the CrossWOZ databases (crosswoz_*_db.json)");
  auto* ask = sub->add_subcommand("ask", "Answer a question from the graph");
  store_options(ask);
  ask->add_option("question", a->question, "The question")->required();
  auto* eval = sub->add_subcommand("eval", "Accuracy on cases (JSON Lines: history, question, entity, relation, values)");
  store_options(eval);
  eval->add_option("cases", a->cases, "Cases file")->required();
  eval->add_option("--failures", a->failures, "Write the cases answered wrongly, with the answer given, as JSON Lines");
  return {sub, [=, &common] {
            const auto store_path = store_path_from(a->store, a->config);
            if (build->parsed()) {
              if (!a->catalogue && a->triples.empty() && a->crosswoz.empty())
                throw CLI::RequiredError("--catalogue, --triples or --crosswoz");
              const auto t0 = std::chrono::steady_clock::now();
              auto store = open_store(store_path);
              assistant::KnowledgeGraph g;
              nlohmann::json sources = nlohmann::json::object();
              if (a->catalogue) {
                assistant::add_catalogue(g, *store);
                sources["catalogue_items"] = store->items().size();
              }
              for (const auto& f : a->triples) sources["triples:" + f] = assistant::add_triples_file(g, f);
              if (!a->crosswoz.empty()) sources["crosswoz_records"] = assistant::add_crosswoz(g, a->crosswoz);
              store->put_graph(g.rows());
              const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              const nlohmann::json j = {{"store", store_path}, {"entities", g.entity_count()}, {"triples", g.triple_count()},
                                        {"types", g.types()}, {"sources", sources}, {"seconds", s}};
              if (common.json) print_json(j);
              else fmt::print("knowledge graph: {} entities, {} triples ({}) in {:.2f} s; stored in {}\n", g.entity_count(),
                              g.triple_count(), fmt::join(g.types(), ", "), s, store_path);
              return 0;
            }
            auto store = open_existing_store(store_path);
            const assistant::KnowledgeGraph g(store->graph());
            if (g.entity_count() == 0) throw Error("the store has no knowledge graph", {store_path}, "run `persona kg build` first");
            const assistant::GraphAnswerer answerer(g);
            if (ask->parsed()) {
              const auto answer = answerer.answer(a->question);
              if (common.json) print_json(answer_json(g, answer));
              else fmt::print("{}\n", answer.text);
              return 0;
            }
            // eval: the conversation's last entity carries over from the history's names.
            const auto cases = read_cases(a->cases);
            size_t correct = 0, entity_right = 0, relation_right = 0;
            std::ofstream failures;
            if (!a->failures.empty()) {
              failures.open(a->failures);
              if (!failures) throw Error("cannot write", {a->failures});
            }
            const auto t0 = std::chrono::steady_clock::now();
            for (const auto& c : cases) {
              std::vector<int64_t> recent;  // most recent first
              for (const auto& turn : c.history)
                for (const auto& m : answerer.link(assistant::name_key(turn)))
                  for (auto e : m.entities) {
                    recent.erase(std::remove(recent.begin(), recent.end(), e), recent.end());
                    recent.insert(recent.begin(), e);
                  }
              const auto answer = answerer.answer(c.question, recent);
              // Right when the answer gives the attribute asked with the database's values.
              std::vector<std::string> got;
              bool has_relation = false;
              for (const auto& f : answer.facts)
                if (f.relation == c.relation) {
                  has_relation = true;
                  for (const auto& v : f.values) got.push_back(v.text);
                }
              auto expected = c.values;
              std::sort(got.begin(), got.end());
              std::sort(expected.begin(), expected.end());
              entity_right += answer.entity >= 0 && g.entity_at(answer.entity).name == c.entity;
              relation_right += has_relation;
              const bool right = answer.kind == assistant::GraphAnswer::Kind::Attribute && has_relation && got == expected;
              correct += right;
              if (!right && failures.is_open())
                failures << nlohmann::json{{"question", c.question}, {"entity", c.entity}, {"relation", c.relation},
                                           {"answer", answer_json(g, answer)}}.dump() << '\n';
            }
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const double n = static_cast<double>(std::max<size_t>(cases.size(), 1));
            const nlohmann::json j = {{"cases", cases.size()}, {"accuracy", correct / n}, {"entity_accuracy", entity_right / n},
                                      {"relation_accuracy", relation_right / n}, {"questions_per_s", s > 0 ? cases.size() / s : 0.0}};
            if (common.json) print_json(j);
            else fmt::print("{} cases: answered with the database's value {:.4f}, entity {:.4f}, attribute {:.4f}\n",
                            cases.size(), correct / n, entity_right / n, relation_right / n);
            return 0;
          }};
}

namespace {

struct ChatArgs {
  std::string store, config, models, user, session = "console", order_pattern;
  std::string stories, forms;
  bool no_intents = false;
};

void add_knowledge_options(CLI::App* sub, ChatArgs& a) {
  sub->add_option("-s,--store", a.store, "Store: a file or a postgresql:// URL (orders, knowledge graph)");
  sub->add_option("-c,--config", a.config, "Config file (for its store path)");
  sub->add_option("--models", a.models, "Model directory: faq.index, recommend.model, sentiment (default $PERSONA_MODELS or ./models)");
  sub->add_option("--order-pattern", a.order_pattern,
                  "RE2 pattern of order ids, on lower-case text (default: [assistant] order_id_pattern, else ORD-2025-000123 or "
                  "the sample shop's sessions, S00001234)");
  sub->add_option("--forms", a.forms, "JSON file of forms, replacing built-in ones of the same name and adding others");
  sub->add_flag("--no-intents", a.no_intents, "Leave the intent model (<models>/intent.model) out of the understanding");
}

// The config's [assistant] settings, then --forms, then the responder's environment variables.
assistant::AssistantOptions assistant_options(const ChatArgs& a) {
  assistant::AssistantOptions options;
  if (!a.config.empty()) {
    const auto config = pipeline::load_config(a.config);
    options = assistant::apply_assistant_settings(config.assistant, std::move(options));
  }
  if (!a.order_pattern.empty()) options.entities.order_id_pattern = a.order_pattern;  // over the config's
  if (!a.forms.empty()) options.forms = assistant::load_forms(a.forms, std::move(options.forms));
  options.responder = assistant::responder_from_environment(options.responder, options.responder_key_env);
  return options;
}

// Everything the assistant answers from, loaded from the store and the models folder (each part
// only when present).
struct LoadedKnowledge {
  std::unique_ptr<store::Store> store;
  std::optional<assistant::FaqIndex> faq;
  std::optional<assistant::KnowledgeGraph> graph;
  std::optional<assistant::GraphAnswerer> answerer;
  std::optional<recommend::RecommendModel> recommender;
  std::optional<demand::TextAnalyzer> analyzer;

  bool use_intents = true;

  explicit LoadedKnowledge(const ChatArgs& a) : use_intents(!a.no_intents) {
    namespace fs = std::filesystem;
    const auto dir = demand::models_dir_from(a.models);
    const auto store_path = store_path_from(a.store, a.config);
    if (store::store_exists(store_path)) store = open_existing_store(store_path);
    if (fs::exists(fs::path(dir) / "faq.index")) faq = assistant::FaqIndex::load((fs::path(dir) / "faq.index").string());
    if (store) {
      graph.emplace(store->graph());
      if (graph->entity_count() > 0) answerer.emplace(*graph);
    }
    if (fs::exists(fs::path(dir) / "recommend.model"))
      recommender = recommend::RecommendModel::load((fs::path(dir) / "recommend.model").string());
    analyzer = demand::TextAnalyzer::load(dir);
  }
  assistant::Knowledge knowledge() const {
    assistant::Knowledge k;
    k.store = store.get();
    k.faq = faq ? &*faq : nullptr;
    k.graph = answerer ? &*answerer : nullptr;
    k.recommender = recommender ? &*recommender : nullptr;
    k.analyzer = analyzer ? &*analyzer : nullptr;
    if (use_intents && analyzer && analyzer->model(demand::TextTask::Intent)) k.intents = &*analyzer->model(demand::TextTask::Intent);
    return k;
  }
  std::string description() const {
    return fmt::format("{}{}{}{}{}", store ? "orders" : "no store", answerer ? ", knowledge graph" : "", faq ? ", FAQ" : "",
                       recommender ? ", recommender" : "", knowledge().intents ? ", intent model" : "");
  }
};

}  // namespace

Command add_chat(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("chat", "Talk to the customer-service assistant (one message per line on stdin)");
  auto a = std::make_shared<ChatArgs>();
  add_knowledge_options(sub, *a);
  sub->add_option("--user", a->user, "Act as this signed-in user (their orders and recommendations)");
  sub->add_option("--session", a->session, "Session id");
  return {sub, [a, &common] {
            const LoadedKnowledge loaded(*a);
            assistant::Assistant bot(loaded.knowledge(), assistant_options(*a));
            if (!common.json && !common.quiet)
              fmt::print(stderr, "assistant ready ({}); one message per line, Ctrl-D to end\n", loaded.description());
            for (std::string line; std::getline(std::cin, line);) {
              const auto r = bot.reply(a->session, a->user, line);
              if (common.json) {
                fmt::print("{}\n", dump_json(r.to_json()));
              } else {
                fmt::print("{}\n", r.text);
                if (r.handoff) fmt::print("[hand-off] {}\n", r.summary);
              }
              std::fflush(stdout);
            }
            return 0;
          }};
}

namespace {

// A story: a user (optional), a time ("now", optional) and turns, each a message with what the
// reply must show: its intent, fragments it contains (any of a list when given as a list), ones
// it must not contain, and whether it hands off.
struct StoryResult {
  std::string file, name;
  bool passed = true;
  std::string failure;
};

std::vector<std::string> as_strings(const nlohmann::json& j) {
  if (j.is_string()) return {j.get<std::string>()};
  return j.get<std::vector<std::string>>();
}

// Facts of the shop under test, which stories name as ${name} instead of one generated shop's
// ids, titles and prices: the sample stories pass on a shop of any seed. Per story user:
//   order, order_item, order_date   their newest order, the title of its first line, its day
//   month_after_order          the 10th of the month after that order (a "now" for "last month")
//   other_user, other_order, other_order_item, other_order_total
//                              the first other user with an order, and that order
// and of the catalogue: item, item_id, item_price, item_brand, item_zh (the first item with a
// brand in its title, a price and a Chinese alias); unavailable_item (the first out of stock).
class StoryFacts {
 public:
  explicit StoryFacts(store::Store* store) : store_(store) {
    if (!store_) return;
    titles_ = item_titles(*store_);
    for (const auto& item : store_->items()) {
      if (!facts_.count("unavailable_item") && item.available == false) facts_["unavailable_item"] = item.id;
      if (facts_.count("item") || item.brand.empty() || !item.price || item.title.find(item.brand) == std::string::npos) continue;
      for (const auto& alias : split_aliases(item.aliases))
        if (std::any_of(alias.begin(), alias.end(), [](char c) { return static_cast<unsigned char>(c) >= 0xE0; })) {
          facts_["item"] = item.title;
          facts_["item_id"] = item.id;
          facts_["item_price"] = fmt::format("{:.2f}", *item.price);
          facts_["item_brand"] = item.brand;
          facts_["item_zh"] = alias;
          break;
        }
    }
  }

  // Every ${name} in the story's strings replaced; an error names a fact this shop lacks.
  nlohmann::json resolve(const nlohmann::json& story) {
    auto facts = facts_;
    if (store_ && story.contains("user") && story["user"].is_string()) add_user_facts(story["user"].get<std::string>(), facts);
    return substitute(story, facts, story.value("name", "(unnamed)"));
  }

 private:
  void add_user_facts(const std::string& user, std::map<std::string, std::string>& facts) {
    const auto mine = assistant::orders_from_events(store_->events_of({user}), titles_);
    if (!mine.empty() && !mine.front().lines.empty()) {
      facts["order"] = mine.front().id;
      facts["order_item"] = mine.front().lines.front().title;
      facts["order_date"] = format_date(mine.front().time);
      int year;
      unsigned month, day;
      civil_from_days(mine.front().time / 86400, year, month, day);
      facts["month_after_order"] = fmt::format("{:04}-{:02}-10", month == 12 ? year + 1 : year, month == 12 ? 1 : month + 1);
    }
    if (!other_) {
      other_.emplace();
      for (const auto& u : store_->users(store::Use::Any)) {
        if (u.id == user) continue;
        const auto theirs = assistant::orders_from_events(store_->events_of({u.id}), titles_);
        if (theirs.empty() || theirs.front().lines.empty()) continue;
        (*other_)["other_user"] = u.id;
        (*other_)["other_order"] = theirs.front().id;
        (*other_)["other_order_item"] = theirs.front().lines.front().title;
        (*other_)["other_order_total"] = fmt::format("{:.2f}", theirs.front().total());
        break;
      }
    }
    for (const auto& [k, v] : *other_) facts.emplace(k, v);
  }

  static nlohmann::json substitute(const nlohmann::json& j, const std::map<std::string, std::string>& facts,
                                   const std::string& story) {
    if (j.is_array() || j.is_object()) {
      nlohmann::json out = j;
      for (auto& [key, value] : out.items()) value = substitute(value, facts, story);
      return out;
    }
    if (!j.is_string()) return j;
    std::string text = j.get<std::string>(), out;
    for (size_t i = 0; i < text.size();) {
      const size_t open = text.find("${", i);
      const size_t close = open == std::string::npos ? open : text.find('}', open);
      if (close == std::string::npos) {
        out += text.substr(i);
        break;
      }
      const std::string name = text.substr(open + 2, close - open - 2);
      const auto it = facts.find(name);
      if (it == facts.end())
        throw Error(fmt::format("story \"{}\" names ${{{}}}, which this shop does not have", story, name), {},
                    "the facts are order, order_item, order_date, month_after_order, other_user, other_order, other_order_item, "
                    "other_order_total (of users with orders), item, item_id, item_price, item_brand, item_zh, "
                    "unavailable_item (of the catalogue): see docs/assistant.md");
      out += text.substr(i, open - i) + it->second;
      i = close + 1;
    }
    return out;
  }

  store::Store* store_;
  std::unordered_map<std::string, std::string> titles_;
  std::map<std::string, std::string> facts_;
  std::optional<std::map<std::string, std::string>> other_;  // the same for every story user but one
};

StoryResult run_story(const assistant::Knowledge& knowledge, const ChatArgs& a, const nlohmann::json& story,
                      const std::string& file) {
  StoryResult result{file, story.value("name", "(unnamed)")};
  assistant::Assistant bot(knowledge, assistant_options(a));
  const int64_t now = story.contains("now") ? parse_date(story["now"].get<std::string>(), "now") + 12 * 3600 : 0;
  const std::string user = story.value("user", "");
  size_t n = 0;
  for (const auto& turn : story.at("turns")) {
    ++n;
    const auto say = turn.value("say", "");
    const auto r = bot.reply(result.name, user, say, now);
    auto fail = [&](const std::string& why) {
      result.passed = false;
      result.failure = fmt::format("turn {} \"{}\": {} (reply: \"{}\", intent {})", n, say, why, r.text, r.intent);
    };
    if (turn.contains("intent") && !turn["intent"].is_null()) {
      const auto allowed = as_strings(turn["intent"]);
      if (std::find(allowed.begin(), allowed.end(), r.intent) == allowed.end())
        fail(fmt::format("intent {} expected", fmt::join(allowed, " or ")));
    }
    if (result.passed && turn.contains("contains")) {
      // Every entry must appear; an entry that is a list needs any one of its fragments.
      for (const auto& entry : turn["contains"]) {
        const auto any = as_strings(entry);
        if (std::none_of(any.begin(), any.end(), [&](const std::string& f) { return r.text.find(f) != std::string::npos; })) {
          fail(fmt::format("\"{}\" expected in the reply", fmt::join(any, "\" or \"")));
          break;
        }
      }
    }
    if (result.passed && turn.contains("not_contains"))
      for (const auto& f : as_strings(turn["not_contains"]))
        if (r.text.find(f) != std::string::npos || r.summary.find(f) != std::string::npos) {
          fail(fmt::format("\"{}\" must not appear", f));
          break;
        }
    if (result.passed && turn.contains("handoff") && turn["handoff"].get<bool>() != r.handoff)
      fail(turn["handoff"].get<bool>() ? "a hand-off expected" : "no hand-off expected");
    if (!result.passed) break;
  }
  return result;
}

}  // namespace

Command add_test_dialogues(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("test-dialogues", "Run dialogue stories (JSON files) against the assistant; exit 1 if any fails");
  auto a = std::make_shared<ChatArgs>();
  sub->add_option("stories", a->stories, "A story file or a folder of them (*.json: an array of stories)")->required();
  add_knowledge_options(sub, *a);
  return {sub, [a, &common] {
            namespace fs = std::filesystem;
            std::vector<std::string> files;
            if (fs::is_directory(a->stories)) {
              for (const auto& e : fs::directory_iterator(a->stories))
                if (e.path().extension() == ".json") files.push_back(e.path().string());
              std::sort(files.begin(), files.end());
            } else {
              files.push_back(a->stories);
            }
            if (files.empty()) throw Error("no story files (*.json)", {a->stories});
            const LoadedKnowledge loaded(*a);
            const auto knowledge = loaded.knowledge();
            StoryFacts facts(loaded.store.get());
            std::vector<StoryResult> results;
            for (const auto& f : files) {
              const std::string text = io::read_small_input(f, "story file");
              nlohmann::json stories = parse_json_or_throw(text, {f});
              if (!stories.is_array()) throw Error("expected a JSON array of stories", {f});
              for (const auto& story : stories) {
                if (!story.is_object() || !story.contains("turns") || !story["turns"].is_array())
                  throw Error("a story needs \"turns\": an array of {\"say\", ...}", {f});
                try {
                  results.push_back(run_story(knowledge, *a, facts.resolve(story), f));
                } catch (const nlohmann::json::exception& e) {
                  throw Error(fmt::format("story \"{}\": {}", story.value("name", "?"), e.what()), {f});
                }
              }
            }
            const auto passed = static_cast<size_t>(std::count_if(results.begin(), results.end(), [](const auto& r) { return r.passed; }));
            if (common.json) {
              nlohmann::json j = nlohmann::json::array();
              for (const auto& r : results) j.push_back({{"file", r.file}, {"story", r.name}, {"passed", r.passed}, {"failure", r.failure}});
              print_json({{"stories", results.size()}, {"passed", passed}, {"results", j}});
            } else {
              for (const auto& r : results)
                if (!r.passed) fmt::print("FAIL {}: {}\n", r.name, r.failure);
              fmt::print("{} of {} stories passed ({})\n", passed, results.size(), loaded.description());
            }
            return passed == results.size() ? 0 : 1;
          }};
}

}  // namespace persona::cli

namespace persona::cli {

// T1 as the assistant sees it: each labelled message goes through Assistant::reply in a session
// of its own, and what the assistant understood (the intent model behind its out-of-scope
// threshold) is compared with the label; texts labelled out_of_scope are right when understood as
// "unknown". Also reports how the assistant then replied to the out-of-scope ones.
Command add_test_intents(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("test-intents",
                                 "Intent accuracy as the assistant sees it, out-of-scope texts included (labelled out_of_scope)");
  auto a = std::make_shared<ChatArgs>();
  auto preset = std::make_shared<std::string>("labelled_texts");
  sub->add_option("file", a->stories, "Labelled messages (read with --preset)")->required();
  sub->add_option("-p,--preset", *preset, "How to read the file (see `persona presets`)");
  add_knowledge_options(sub, *a);
  return {sub, [a, preset, &common] {
            const auto source = pipeline::preset_source(*preset, a->stories);
            pipeline::LabelledTextReport read;
            const auto data = pipeline::read_labelled_texts(source, source.rules, "label", &read);
            if (data.size() == 0) throw Error("no labelled messages", {a->stories});
            const LoadedKnowledge loaded(*a);
            const auto knowledge = loaded.knowledge();
            if (!knowledge.intents)
              throw Error("no intent model", {demand::model_path(demand::models_dir_from(a->models), demand::TextTask::Intent)},
                          "train one: persona train text FILE --preset ... --task intent");
            assistant::Assistant bot(knowledge, assistant_options(*a));
            std::vector<std::string> names = data.label_names;
            auto index_of = [&](const std::string& name) {
              auto it = std::find(names.begin(), names.end(), name);
              if (it == names.end()) it = names.insert(names.end(), name);
              return static_cast<int>(it - names.begin());
            };
            const int oos = index_of(ml::kOutOfScope);
            std::vector<int> truth, predicted;
            size_t oos_rows = 0, oos_clarified = 0, in_rows = 0, in_unknown = 0;
            std::map<std::string, size_t> oos_replies;
            const auto t0 = std::chrono::steady_clock::now();
            for (size_t i = 0; i < data.size(); ++i) {
              const auto r = bot.reply(fmt::format("test-intents-{}", i), "", data.texts[i], 1'700'000'000);
              const int t = data.labels[i];
              const int p = r.understood == "unknown" ? oos : index_of(r.understood);
              truth.push_back(t);
              predicted.push_back(p);
              if (t == oos) {
                ++oos_rows;
                ++oos_replies[r.intent];
                oos_clarified += r.intent == "unknown" || r.intent == "handoff";
              } else {
                ++in_rows;
                in_unknown += p == oos;
              }
            }
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const auto report = ml::classification_report(truth, predicted, names);
            size_t in_right = 0, oos_right = 0, oos_predicted = 0;
            for (size_t i = 0; i < truth.size(); ++i) {
              oos_predicted += predicted[i] == oos;
              if (truth[i] == oos) oos_right += predicted[i] == oos;
              else in_right += predicted[i] == truth[i];
            }
            auto ratio = [](size_t x, size_t n) { return n ? static_cast<double>(x) / static_cast<double>(n) : 0.0; };
            const nlohmann::json j = {{"messages", data.size()},
                                      {"accuracy", report.accuracy},
                                      {"macro_f1", report.macro.f1},
                                      {"in_scope", in_rows},
                                      {"in_scope_accuracy", ratio(in_right, in_rows)},
                                      {"in_scope_unknown_rate", ratio(in_unknown, in_rows)},
                                      {"out_of_scope", oos_rows},
                                      {"out_of_scope_recall", ratio(oos_right, oos_rows)},
                                      {"out_of_scope_precision", ratio(oos_right, oos_predicted)},
                                      {"out_of_scope_clarified_or_handed_off", ratio(oos_clarified, oos_rows)},
                                      {"out_of_scope_replies", oos_replies},
                                      {"threshold", bot.options().out_of_scope_threshold.value_or(knowledge.intents->unknown_threshold())},
                                      {"messages_per_s", s > 0 ? static_cast<double>(data.size()) / s : 0.0},
                                      {"read", read.to_json()}};
            if (common.json) {
              print_json(j);
            } else {
              fmt::print("{} messages: understood right {:.4f} (macro-F1 {:.4f}); in scope {:.4f} ({} messages, {:.4f} unknown)\n",
                         data.size(), report.accuracy, report.macro.f1, ratio(in_right, in_rows), in_rows,
                         ratio(in_unknown, in_rows));
              if (oos_rows)
                fmt::print("out of scope: recall {:.4f}, precision {:.4f}; asked to rephrase or handed off {:.4f}\n",
                           ratio(oos_right, oos_rows), ratio(oos_right, oos_predicted), ratio(oos_clarified, oos_rows));
            }
            return 0;
          }};
}

}  // namespace persona::cli
