#pragma once
// Cleaning rules as declared in the config, in the order they run. Every rule either keeps a
// row, removes it (with a reason for the reject log), changes it (text hygiene) or flags it
// (outliers with action "flag").
#include <optional>
#include <string>
#include <vector>

namespace persona::prep {

struct RuleSpec {
  // exact_duplicate | duplicate_key | missing | type_error | prefix | range | pattern | outlier
  // | text_hygiene
  std::string kind;
  std::string name;                 // the name counts and the reject log use; defaults to kind
  std::vector<std::string> fields;  // "event.user" (model field) or a source column name
  std::vector<std::string> prefixes;           // prefix: reject when the value starts with one
  std::string regex;                           // pattern
  bool keep_matching = true;                   // pattern: keep rows that match (else reject them)
  std::optional<double> min, max;              // range: keep min <= value <= max
  bool min_exclusive = false, max_exclusive = false;
  std::string method = "iqr";                  // outlier: iqr | zscore
  double threshold = 0;                        // outlier: IQR multiplier (1.5) or z limit (3)
  std::string action = "drop";                 // outlier: drop | flag; type_error, range: drop | null
                                               // (null: clear the bad value, keep the row)

  const std::string& label() const { return name.empty() ? kind : name; }
};

// The rule kinds, for help texts and validation.
const std::vector<std::string>& rule_kinds();

// Checks the spec's parameters (throws persona::Error naming the rule).
void validate_rule(const RuleSpec& rule);

}  // namespace persona::prep
