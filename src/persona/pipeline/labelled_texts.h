#pragma once
// Labelled texts for training and evaluating text classifiers, read from a file through a source
// mapping (a preset or a config's [[sources]]) and its cleaning rules, or from the store. Rows
// without a text or a label are counted and reported with file and line, never fatal.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/ml/text_model.h"
#include "persona/pipeline/config.h"
#include "persona/store/store.h"

namespace persona::pipeline {

// Which field of a text is the class:
//   "label" (intents), "category" (demand category), "sentiment" (positive / negative: 0/1
//   labels, or ratings 1-5 where 4-5 are positive, 1-2 negative and 3 is left out),
//   "category/label" (both, joined by '/': SMP2019's domain and intent).
struct LabelledTextReport {
  std::string source, path;
  int64_t rows = 0, used = 0, rejected = 0, without_label = 0, neutral_ratings = 0;
  std::vector<std::string> problems;  // the first few, "file:line: reason"
  nlohmann::json to_json() const;
};

ml::LabelledTexts read_labelled_texts(const SourceConfig& source, const std::vector<prep::RuleSpec>& rules,
                                      const std::string& label_field, LabelledTextReport* report);
ml::LabelledTexts read_store_texts(store::Store& store, const std::string& label_field, LabelledTextReport* report);

// Checks the label field name; throws std::invalid_argument listing the valid ones.
void check_label_field(const std::string& label_field);

}  // namespace persona::pipeline
