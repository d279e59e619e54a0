#include "persona/pipeline/tabular_file.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/core/time.h"
#include "persona/io/csv_reader.h"

namespace persona::pipeline {
namespace {

constexpr size_t kMaxProblems = 20;

bool parse_number(std::string_view s, double& out) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(out);
}

int column_of(const std::vector<std::string>& columns, const std::string& name, const std::string& path,
              const char* what) {
  const auto it = std::find(columns.begin(), columns.end(), name);
  if (it == columns.end())
    throw Error(fmt::format("no {} column {}", what, quote_value(name)), {path, 1},
                fmt::format("the columns are: {}", fmt::join(columns, ", ")));
  return static_cast<int>(it - columns.begin());
}

}  // namespace

nlohmann::json TabularFile::report() const {
  return {{"rows", rows}, {"used", data.rows()}, {"skipped", skipped}, {"features", data.feature_names},
          {"classes", data.class_names}, {"problems", problems}};
}

TabularFile read_tabular_file(const std::string& path, const TabularFileOptions& o) {
  io::CsvOptions csv;
  if (io::format_from_path(path) == io::Format::Tsv) csv.delimiter = "\t";
  io::CsvReader reader(path, csv);
  const auto& columns = reader.columns();
  const int label = o.label.empty() ? -1 : column_of(columns, o.label, path, "label");
  const int time = o.time_column.empty() ? -1 : column_of(columns, o.time_column, path, "time");
  const int id = o.id_column.empty() ? -1 : column_of(columns, o.id_column, path, "id");
  std::vector<int> features;
  std::vector<std::string> names = o.features;
  if (names.empty())
    for (size_t c = 0; c < columns.size(); ++c)
      if (static_cast<int>(c) != label && static_cast<int>(c) != time && static_cast<int>(c) != id)
        names.push_back(columns[c]);
  for (const auto& n : names) features.push_back(column_of(columns, n, path, "feature"));
  if (features.empty()) throw Error("no feature columns", {path, 1}, "give --features or add numeric columns");

  TabularFile out;
  const TimestampParser parse_time("iso8601|unix");
  std::vector<float> values;
  std::vector<std::string> labels;
  auto problem = [&](int64_t line, const std::string& what) {
    ++out.skipped;
    if (out.problems.size() < kMaxProblems) out.problems.push_back(fmt::format("{}:{}: {}", path, line, what));
  };
  io::Record r;
  std::vector<float> row(features.size());
  while (reader.next(r)) {
    ++out.rows;
    if (!r.problem.empty()) {
      problem(r.line, r.problem);
      continue;
    }
    if (r.fields.size() != columns.size()) {
      problem(r.line, fmt::format("{} fields, the header has {}", r.fields.size(), columns.size()));
      continue;
    }
    bool ok = true;
    for (size_t f = 0; f < features.size() && ok; ++f) {
      double v;
      const auto text = r.fields[static_cast<size_t>(features[f])];
      if (!parse_number(text, v)) {
        problem(r.line, fmt::format("field {}: value {} is not a number", quote_value(names[f]), quote_value(text)));
        ok = false;
      }
      row[f] = static_cast<float>(v);
    }
    if (!ok) continue;
    int64_t t = 0;
    if (time >= 0) {
      const auto parsed = parse_time.parse(r.fields[static_cast<size_t>(time)]);
      if (!parsed) {
        problem(r.line, fmt::format("field {}: value {} is not a timestamp", quote_value(o.time_column),
                                    quote_value(r.fields[static_cast<size_t>(time)])));
        continue;
      }
      t = *parsed;
    }
    if (label >= 0) {
      const std::string_view l = r.fields[static_cast<size_t>(label)];
      if (l.empty()) {
        problem(r.line, fmt::format("field {}: no label", quote_value(o.label)));
        continue;
      }
      labels.emplace_back(l);
    }
    values.insert(values.end(), row.begin(), row.end());
    if (time >= 0) out.times.push_back(t);
    out.ids.push_back(id >= 0 ? std::string(r.fields[static_cast<size_t>(id)]) : std::to_string(r.line));
  }
  const auto n = static_cast<Eigen::Index>(values.size() / features.size());
  out.data.x = Eigen::Map<ml::Matrix>(values.data(), n, static_cast<Eigen::Index>(features.size()));
  out.data.feature_names = names;
  // Classes: fixed ones first (a test file is read with the model's), then new ones sorted.
  std::map<std::string, int> index;
  out.data.class_names = o.class_names;
  for (size_t c = 0; c < o.class_names.size(); ++c) index[o.class_names[c]] = static_cast<int>(c);
  if (o.class_names.empty()) {
    std::vector<std::string> sorted(labels);
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    out.data.class_names = sorted;
    for (size_t c = 0; c < sorted.size(); ++c) index[sorted[c]] = static_cast<int>(c);
  }
  for (const auto& l : labels) {
    auto it = index.find(l);
    out.data.y.push_back(it == index.end() ? -1 : it->second);  // -1: a class the model does not know
  }
  if (label < 0 && o.class_names.empty()) out.data.class_names.clear();
  return out;
}

}  // namespace persona::pipeline
