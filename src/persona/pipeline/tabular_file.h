#pragma once
// A CSV (or TSV, gzip or not) of numeric features and a label column, as training or scoring
// data for the tabular learners (`persona train tabular`, `persona predict tabular`). A row with
// a value that is not a number is left out and reported with file, line, field and value.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/ml/tabular.h"

namespace persona::pipeline {

struct TabularFileOptions {
  std::string label;                  // empty when scoring
  std::vector<std::string> features;  // empty: every column but the label, the time and the id
  std::string time_column;            // optional: for time-based folds (any timestamp format)
  std::string id_column;              // optional: carried through to predictions
  std::vector<std::string> class_names;  // fixed classes (scoring a test file), else from the data
};

struct TabularFile {
  ml::TabularData data;
  std::vector<int64_t> times;   // when time_column is set
  std::vector<std::string> ids; // when id_column is set, else the line numbers
  int64_t rows = 0, skipped = 0;
  std::vector<std::string> problems;  // the first few, "file:line: field "x": value "y" is not a number"
  nlohmann::json report() const;
};

TabularFile read_tabular_file(const std::string& path, const TabularFileOptions& options);

}  // namespace persona::pipeline
