// persona analyze, keywords, predict text, eval text: what texts say, with the trained models.
#include <chrono>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.h"
#include "persona/io/input.h"
#include "persona/assistant/entities.h"
#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/demand/text_analysis.h"
#include "persona/pipeline/labelled_texts.h"
#include "persona/text/keywords.h"

namespace persona::cli {
namespace {

// The text argument, or stdin when it is "-".
std::string text_argument(const std::vector<std::string>& words) {
  if (words.size() == 1 && words[0] == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// One text per line from a file or stdin ("-"), as fastText's `predict MODEL -`: `fn` gets the
// line number and the text, and prints one JSON line for it (a line too long, or empty, gets an
// "error" line, so that output line n answers input line n). Output is flushed per line, so a
// pipe gets its answers as they come.
constexpr size_t kMaxLineBytes = 100000;
void for_each_line(const std::string& source, const std::function<nlohmann::json(const std::string&)>& answer) {
  std::ifstream file;
  if (source != "-") {
    file.open(source, std::ios::binary);
    if (!file) throw Error("cannot read the texts", {source}, "give a readable file, or \"-\" for stdin");
  }
  std::istream& in = source == "-" ? std::cin : file;
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    nlohmann::json j;
    if (line.size() > kMaxLineBytes) j = {{"error", fmt::format("a line of {} bytes: at most {}", line.size(), kMaxLineBytes)}};
    else if (line.find_first_not_of(" \t") == std::string::npos) j = {{"error", "an empty line"}};
    else j = answer(line);
    nlohmann::json out = {{"line", n}};
    out.update(j);
    fmt::print("{}\n", dump_json(out));
    std::fflush(stdout);
  }
}

void print_answer(const char* name, const std::optional<demand::TaskAnswer>& a, bool trained) {
  if (!trained) {
    fmt::print("{:<10} (no model: run `persona train {}`)\n", name, name);
    return;
  }
  if (!a) {
    fmt::print("{:<10} (no words to classify)\n", name);
    return;
  }
  if (a->unknown_reason == "no_words" || a->unknown_reason == "no_known_words" ||
      a->unknown_reason == "low_coverage" || a->unknown_reason == "other_language") {
    const char* why = a->unknown_reason == "no_words"         ? "no words, only numbers or symbols"
                      : a->unknown_reason == "no_known_words" ? "none of its words were in the training texts"
                      : a->unknown_reason == "low_coverage"   ? "too few of its words were in the training texts"
                                                              : "not a language the model was trained on";
    fmt::print("{:<10} unknown ({}; closest: {} {:.2f})\n", name, why, a->best, a->confidence);
    return;
  }
  std::string alternatives;
  for (size_t i = 1; i < a->top.size(); ++i)
    alternatives += fmt::format("{}{} {:.2f}", i == 1 ? "" : ", ", a->top[i].first, a->top[i].second);
  fmt::print("{:<10} {} ({:.2f}){}{}\n", name, a->label, a->confidence,
             a->label != a->best ? fmt::format(", closest: {}", a->best) : "",
             alternatives.empty() ? "" : "; then " + alternatives);
}

}  // namespace

Command add_analyze(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("analyze", "What a text says: language, tokens, sentiment, demand category, intent, keywords");
  struct Args {
    std::vector<std::string> text;
    std::string models, file;
    bool lines = false;
  };
  auto args = std::make_shared<Args>();
  auto* text_opt = sub->add_option("text", args->text, "The text (several words are joined; \"-\" reads stdin)");
  auto* file_opt = sub->add_option("-f,--file", args->file, "Read the text from this file");
  text_opt->excludes(file_opt);
  sub->add_option("--models", args->models, "Model directory (default $PERSONA_MODELS or ./models)");
  sub->add_flag("--lines", args->lines,
                "One text per line (of --file, or stdin): one JSON line per text, {\"line\": N, ...}, in input order");
  return {sub, [args, &common] {
            if (args->lines) {
              if (args->file.empty() && !(args->text.size() == 1 && args->text[0] == "-"))
                throw Error("--lines reads texts from a file or stdin", {}, "give --file FILE, or \"-\" for stdin");
              const auto analyzer = demand::TextAnalyzer::load(demand::models_dir_from(args->models));
              for_each_line(args->file.empty() ? "-" : args->file, [&](const std::string& text) {
                auto j = analyzer.analyze(text).to_json();
                j.erase("tokens");  // a line per text stays short; `analyze TEXT --json` has them
                return j;
              });
              return 0;
            }
            std::string text;
            if (!args->file.empty()) {
              text = io::read_small_input(args->file, "text file", 100u << 20);  // "-": standard input
            } else if (!args->text.empty()) {
              text = text_argument(args->text);
            } else {
              throw Error("no text to analyze", {}, "give the text as an argument, \"-\" for stdin, or --file");
            }
            const auto dir = demand::models_dir_from(args->models);
            const auto analyzer = demand::TextAnalyzer::load(dir);
            const auto a = analyzer.analyze(text);
            // The assistant's entities: ids, contacts, money, quantities, dates (relative to now).
            nlohmann::json entities = nlohmann::json::array();
            for (const auto& e : assistant::extract_entities(text))
              entities.push_back({{"kind", e.kind}, {"text", e.text}, {"value", e.value}});
            if (common.json) {
              auto j = a.to_json();
              j["entities"] = entities;
              j["models"] = dir;
              j["missing_models"] = analyzer.missing_tasks();
              print_json(j);
              return 0;
            }
            auto j = a.to_json(40);
            fmt::print("{:<10} {} ({:.2f})\n", "language", j["language"].get<std::string>(),
                       j["language_confidence"].get<double>());
            fmt::print("{:<10} {}{}\n", "tokens", fmt::join(j["tokens"].get<std::vector<std::string>>(), " | "),
                       a.token_count > 40 ? fmt::format(" ... ({} in all)", a.token_count) : "");
            print_answer("sentiment", a.sentiment, analyzer.model(demand::TextTask::Sentiment).has_value());
            print_answer("category", a.category, analyzer.model(demand::TextTask::Category).has_value());
            print_answer("intent", a.intent, analyzer.model(demand::TextTask::Intent).has_value());
            std::string kws;
            for (const auto& k : a.keywords) kws += fmt::format("{}{} {:.2f}", kws.empty() ? "" : ", ", k.word, k.score);
            fmt::print("{:<10} {}\n", "keywords", kws.empty() ? "(none)" : kws);
            std::string tr;
            for (const auto& k : a.textrank) tr += fmt::format("{}{} {:.2f}", tr.empty() ? "" : ", ", k.word, k.score);
            fmt::print("{:<10} {}\n", "textrank", tr.empty() ? "(none)" : tr);
            std::string es;
            for (const auto& e : entities)
              es += fmt::format("{}{} {} = {}", es.empty() ? "" : ", ", e["kind"].get<std::string>(), e["text"].get<std::string>(),
                                e["value"].get<std::string>());
            fmt::print("{:<10} {}\n", "entities", es.empty() ? "(none)" : es);
            return 0;
          }};
}

Command add_keywords(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("keywords", "Keywords of a text, or of a user's, an item's or a category's texts in the store");
  struct Args {
    std::vector<std::string> text;
    std::string store, config, user, item, category, method = "tfidf", models;
    size_t top = 10;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("text", args->text, "A text (omit to read texts from the store)");
  sub->add_option("-s,--store", args->store, "Store: a file, or a postgresql:// URL");
  sub->add_option("-c,--config", args->config, "Config file (for its store path)");
  sub->add_option("--user", args->user, "Texts written by this user");
  sub->add_option("--item", args->item, "Texts about this item");
  sub->add_option("--category", args->category, "Texts whose category is this");
  sub->add_option("--method", args->method, "tfidf or textrank")->check(CLI::IsMember({"tfidf", "textrank"}));
  sub->add_option("--top", args->top, "How many keywords")->check(CLI::Range(1, 1000));
  sub->add_option("--models", args->models, "Model directory with keywords.model (IDF weights)");
  return {sub, [args, &common] {
            std::vector<std::string> texts;
            if (!args->text.empty()) {
              texts.push_back(text_argument(args->text));
            } else {
              auto store = open_existing_store(store_path_from(args->store, args->config));
              store->for_each_text([&](const Text& t) {
                if (!args->user.empty() && t.user != args->user) return;
                if (!args->item.empty() && t.item != args->item) return;
                if (!args->category.empty() && t.category != args->category) return;
                texts.push_back(t.body);
              });
              if (texts.empty()) throw Error("no texts match", {}, "check --user / --item / --category");
            }
            std::vector<std::string_view> views(texts.begin(), texts.end());
            std::optional<text::KeywordIndex> index;
            const auto path = demand::keyword_index_path(demand::models_dir_from(args->models));
            if (std::filesystem::exists(path)) index = demand::load_keyword_index(path);
            const auto keywords = args->method == "textrank"
                                      ? text::textrank_keywords(views, args->top)
                                      : text::tfidf_keywords(views, args->top, index ? &*index : nullptr);
            if (common.json) {
              nlohmann::json j = nlohmann::json::array();
              for (const auto& k : keywords) j.push_back({{"word", k.word}, {"score", k.score}});
              print_json({{"method", args->method}, {"texts", texts.size()}, {"keywords", j}});
              return 0;
            }
            for (const auto& k : keywords) fmt::print("{:<20} {:.3f}\n", k.word, k.score);
            return 0;
          }};
}

Command add_eval(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("eval", "Evaluate a trained text model on a labelled file (classification report)");
  struct Args {
    std::string task, model, preset, file, label, models, predictions, text_column, label_column;
    bool unknown = false;
    int threads = 2;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("--task", args->task, "sentiment, category or intent (its model in --models)");
  sub->add_option("file", args->file, "Labelled file");
  sub->add_option("--model", args->model, "A model file (instead of the task's)");
  sub->add_option("-p,--preset", args->preset,
                  "How to read the file (see `persona presets`); without one: any .csv/.tsv/.jsonl/.json file with "
                  "the columns text and label");
  sub->add_option("--text-column", args->text_column, "The column (JSON key) that holds the text");
  sub->add_option("--label-column", args->label_column, "The column (JSON key) that holds the label");
  sub->add_option("--label", args->label, "label, category, sentiment or category/label (default: the task's)");
  sub->add_option("--models", args->models, "Model directory");
  sub->add_flag("--count-unknown", args->unknown, "Answers below the unknown threshold count as wrong");
  sub->add_option("--predictions", args->predictions, "Write every text's truth and prediction here (JSON Lines)");
  sub->add_option("--threads", args->threads, "Threads")->check(CLI::Range(1, 256));
  const auto recommend = add_eval_recommend(sub, common);
  return {sub, [args, recommend, &common] {
            if (const int rc = recommend(); rc >= 0) return rc;
            if (args->file.empty())
              throw CLI::RequiredError("a labelled FILE (or the subcommand: persona eval recommend)");
            std::string path = args->model;
            std::string field = args->label;
            if (path.empty()) {
              const auto task = demand::parse_text_task(args->task);
              if (!task) throw Error(fmt::format("unknown task \"{}\"", args->task), {}, "use --task sentiment, category or intent, or --model");
              path = demand::model_path(demand::models_dir_from(args->models), *task);
              if (field.empty()) field = demand::default_label_field(*task);
            }
            if (field.empty()) field = "label";
            const auto classifier = ml::TextClassifier::load(path);
            const auto source =
                pipeline::labelled_text_source(args->preset, args->file, field, args->text_column, args->label_column);
            pipeline::LabelledTextReport read;
            const auto data = pipeline::read_labelled_texts(source, source.rules, field, &read);
            if (data.size() == 0) throw Error("no labelled texts in the file", {args->file}, "check --preset and --label");
            const auto t0 = std::chrono::steady_clock::now();
            const auto report = classifier.evaluate(data, args->threads, args->unknown);
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (!args->predictions.empty()) {
              std::ofstream out(args->predictions);
              const auto predictions = classifier.predict_all(data.texts, args->threads);
              for (size_t i = 0; i < data.size(); ++i)
                out << nlohmann::json{{"truth", data.label_names[static_cast<size_t>(data.labels[i])]},
                                      {"predicted", classifier.label_name(predictions[i].label)},
                                      {"best", classifier.label_name(predictions[i].best)},
                                      {"confidence", predictions[i].confidence}}
                           .dump()
                    << '\n';
              if (!out) throw Error("cannot write", {args->predictions});
            }
            if (common.json) {
              auto j = report.to_json(true);
              j["read"] = read.to_json();
              j["pred_per_s"] = static_cast<double>(data.size()) / seconds;
              print_json(j);
              return 0;
            }
            if (read.rejected || read.without_label)
              fmt::print(stderr, "{} rows left out ({} rejected, {} without a label){}\n", read.rejected + read.without_label,
                         read.rejected, read.without_label, read.problems.empty() ? "" : "; first: " + read.problems[0]);
            fmt::print("{}", report.to_text());
            return 0;
          }};
}

Command add_classify(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("classify", "Class probabilities of a text under one model file");
  struct Args {
    std::string model;
    std::vector<std::string> words;
  };
  auto args = std::make_shared<Args>();
  sub->add_option("--model", args->model, "Model file (or give it first: classify MODEL TEXT)");
  sub->add_option("words", args->words,
                  "[MODEL] TEXT: the text, or \"-\" to read one text per line from stdin and write one JSON line "
                  "per text, as fastText's predict");
  return {sub, [args, &common] {
            std::vector<std::string> words = args->words;
            std::string model = args->model;
            if (model.empty()) {
              if (words.empty()) throw Error("no model to classify with", {}, "persona classify MODEL TEXT (or --model MODEL)");
              model = words.front();
              words.erase(words.begin());
            }
            if (words.empty()) throw Error("no text to classify", {}, "give the text, or \"-\" for one text per line on stdin");
            std::string task;
            const auto classifier = ml::TextClassifier::load(model, &task);
            auto answer = [&](const std::string& text) {
              const auto p = classifier.predict(text);
              nlohmann::json probs = nlohmann::json::object();
              for (size_t i = 0; i < p.probabilities.size(); ++i) probs[classifier.labels()[i]] = p.probabilities[i];
              nlohmann::json j{{"task", task},
                               {"label", classifier.label_name(p.label)},
                               {"best", classifier.label_name(p.best)},
                               {"confidence", p.confidence},
                               {"unknown_threshold", classifier.unknown_threshold()},
                               {"language", p.language},
                               {"coverage", p.coverage},
                               {"probabilities", probs}};
              if (p.unknown != ml::Unknown::No) j["unknown_reason"] = ml::unknown_reason_name(p.unknown);
              return j;
            };
            if (words.size() == 1 && words[0] == "-") {
              for_each_line("-", answer);
              return 0;
            }
            const std::string text = text_argument(words);
            if (common.json) {
              print_json(answer(text));
              return 0;
            }
            const auto p = classifier.predict(text);
            const std::string why =
                p.unknown == ml::Unknown::BelowThreshold ? fmt::format("below the threshold {:.3f}", classifier.unknown_threshold())
                : p.unknown == ml::Unknown::OtherLanguage
                    ? fmt::format("language {}; the model was trained on {}", p.language, fmt::join(classifier.languages(), ", "))
                : p.unknown == ml::Unknown::LowCoverage
                    ? fmt::format("{:.0f}% of its words known, below {:.0f}%", 100 * p.coverage, 100 * classifier.min_coverage())
                    : ml::unknown_reason_name(p.unknown);
            fmt::print("{} ({:.3f}){}\n", classifier.label_name(p.label), p.confidence,
                       p.label < 0 ? fmt::format(", {}; closest: {}", why, classifier.label_name(p.best)) : "");
            return 0;
          }};
}

}  // namespace persona::cli
