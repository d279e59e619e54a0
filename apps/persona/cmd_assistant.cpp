// persona faq build|ask|eval: the assistant's FAQ retrieval.
#include <chrono>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "commands.h"
#include "persona/assistant/faq.h"
#include "persona/core/error.h"
#include "persona/demand/text_analysis.h"
#include "persona/io/csv_reader.h"

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

}  // namespace persona::cli
