#include "persona/prep/rules.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <re2/re2.h>

#include "persona/core/error.h"

namespace persona::prep {

const std::vector<std::string>& rule_kinds() {
  static const std::vector<std::string> kinds = {"exact_duplicate", "duplicate_key", "missing", "type_error", "prefix",
                                                 "range",           "pattern",       "outlier", "text_hygiene"};
  return kinds;
}

void validate_rule(const RuleSpec& r) {
  const auto& kinds = rule_kinds();
  if (std::find(kinds.begin(), kinds.end(), r.kind) == kinds.end())
    throw Error(fmt::format("unknown cleaning rule \"{}\"", r.kind), {}, fmt::format("rules are: {}", fmt::join(kinds, ", ")));
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw Error(fmt::format("cleaning rule \"{}\" ({}) needs {}", r.label(), r.kind, what));
  };
  if (r.kind == "duplicate_key" || r.kind == "missing" || r.kind == "prefix" || r.kind == "range" ||
      r.kind == "pattern" || r.kind == "outlier")
    need(!r.fields.empty(), "fields = [...] (model fields such as \"event.user\", or source columns)");
  if (r.kind == "prefix") need(!r.prefixes.empty(), "prefixes = [...]");
  if (r.kind == "pattern") need(!r.regex.empty(), "regex = \"...\"");
  if (r.kind == "range") need(r.min || r.max, "min and/or max");
  if (r.kind == "range") need(!(r.min && std::isnan(*r.min)) && !(r.max && std::isnan(*r.max)), "numbers for min and max, not nan");
  if (r.kind == "range" && r.min && r.max &&
      (*r.min > *r.max || (*r.min == *r.max && (r.min_exclusive || r.max_exclusive))))
    throw Error(fmt::format("cleaning rule \"{}\" (range): min {} is above max {}, so every row would be removed", r.label(),
                            *r.min, *r.max),
                {}, "swap them");
  if (r.kind == "pattern" && !r.regex.empty()) {
    const re2::RE2 re(r.regex, re2::RE2::Quiet);
    if (!re.ok())
      throw Error(fmt::format("cleaning rule \"{}\" (pattern): bad regular expression {}: {}", r.label(), quote_value(r.regex),
                              re.error()),
                  {}, "RE2 syntax (no look-around or back-references)");
  }
  if (r.kind == "type_error" || r.kind == "range")
    need(r.action == "drop" || r.action == "null", "action = \"drop\" or \"null\"");
  if (r.kind == "outlier") {
    need(r.method == "iqr" || r.method == "zscore", "method = \"iqr\" or \"zscore\"");
    need(r.action == "drop" || r.action == "flag", "action = \"drop\" or \"flag\"");
    need(r.threshold >= 0, "a threshold >= 0");
  }
}

}  // namespace persona::prep
