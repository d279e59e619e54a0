#include "persona/pipeline/labelled_texts.h"

#include <algorithm>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "persona/pipeline/run.h"

namespace persona::pipeline {
namespace {

constexpr size_t kMaxProblems = 20;

struct Row {
  std::string text, label;
  std::optional<double> sentiment;
};

// Sentiment as 0/1 labels or as ratings: decided on the whole set, since "1" means positive in
// one and very negative in the other.
ml::LabelledTexts finish(std::vector<Row>& rows, const std::string& field, LabelledTextReport& report) {
  if (field == "sentiment") {
    double top = 0;
    for (const auto& r : rows)
      if (r.sentiment) top = std::max(top, *r.sentiment);
    const bool ratings = top > 1;
    for (auto& r : rows) {
      if (!r.sentiment) continue;
      const double v = *r.sentiment;
      if (ratings) r.label = v >= 4 ? "positive" : v <= 2 ? "negative" : "";
      else r.label = v >= 0.5 ? "positive" : "negative";
      if (ratings && r.label.empty()) ++report.neutral_ratings;
    }
  }
  std::map<std::string, int> classes;
  for (const auto& r : rows)
    if (!r.label.empty()) classes.emplace(r.label, 0);
  ml::LabelledTexts out;
  for (auto& [name, index] : classes) {
    index = static_cast<int>(out.label_names.size());
    out.label_names.push_back(name);
  }
  for (auto& r : rows) {
    if (r.label.empty()) {
      if (field != "sentiment" || !r.sentiment) ++report.without_label;
      continue;
    }
    out.texts.push_back(std::move(r.text));
    out.labels.push_back(classes[r.label]);
  }
  report.used = static_cast<int64_t>(out.size());
  return out;
}

std::string label_of(const Text& t, const std::string& field) {
  if (field == "label") return t.label;
  if (field == "category") return t.category;
  if (field == "category/label") return t.category.empty() || t.label.empty() ? "" : t.category + "/" + t.label;
  return "";
}

}  // namespace

void check_label_field(const std::string& f) {
  if (f != "label" && f != "category" && f != "sentiment" && f != "category/label")
    throw std::invalid_argument(
        fmt::format("unknown label field '{}' (use label, category, sentiment or category/label)", f));
}

nlohmann::json LabelledTextReport::to_json() const {
  return {{"source", source},   {"path", path},       {"rows", rows},
          {"used", used},       {"rejected", rejected}, {"without_label", without_label},
          {"neutral_ratings_left_out", neutral_ratings}, {"problems", problems}};
}

ml::LabelledTexts read_labelled_texts(const SourceConfig& source, const std::vector<prep::RuleSpec>& rules,
                                      const std::string& field, LabelledTextReport* report_out) {
  check_label_field(field);
  LabelledTextReport report;
  report.source = source.mapping.name;
  report.path = source.mapping.path;
  std::vector<Row> rows;
  auto on_row = [&](const io::Record& record, std::vector<io::FieldValue>& values, const prep::RowVerdict& verdict,
                    io::Mapper& mapper) {
    ++report.rows;
    if (!verdict.kept) {
      ++report.rejected;
      if (report.problems.size() < kMaxProblems)
        report.problems.push_back(fmt::format("{}:{}: {} ({}{})", source.mapping.path, record.line, verdict.reason,
                                              verdict.rule, verdict.field.empty() ? "" : ", field " + verdict.field));
      return;
    }
    auto mapped = mapper.build(values);
    if (!mapped.text || mapped.text->body.empty()) {
      ++report.rejected;
      if (report.problems.size() < kMaxProblems)
        report.problems.push_back(fmt::format("{}:{}: no text", source.mapping.path, record.line));
      return;
    }
    Row r;
    r.text = std::move(mapped.text->body);
    r.label = label_of(*mapped.text, field);
    r.sentiment = mapped.text->sentiment;
    if (field == "sentiment" && !r.sentiment && report.problems.size() < kMaxProblems)
      report.problems.push_back(fmt::format("{}:{}: no sentiment label", source.mapping.path, record.line));
    else if (field != "sentiment" && r.label.empty() && report.problems.size() < kMaxProblems)
      report.problems.push_back(fmt::format("{}:{}: no {}", source.mapping.path, record.line, field));
    rows.push_back(std::move(r));
  };
  RunOptions options;
  options.progress = false;
  run_source(source, rules, on_row, options);
  auto out = finish(rows, field, report);
  if (report_out) *report_out = std::move(report);
  return out;
}

ml::LabelledTexts read_store_texts(store::Store& store, const std::string& field, LabelledTextReport* report_out) {
  check_label_field(field);
  LabelledTextReport report;
  report.source = "store";
  std::vector<Row> rows;
  store.for_each_text([&](const Text& t) {
    ++report.rows;
    rows.push_back({t.body, label_of(t, field), t.sentiment});
  });
  auto out = finish(rows, field, report);
  if (report_out) *report_out = std::move(report);
  return out;
}

}  // namespace persona::pipeline
