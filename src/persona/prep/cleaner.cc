#include "persona/prep/cleaner.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <re2/re2.h>
#include <xxhash.h>

#include "persona/core/error.h"
#include "persona/core/unicode.h"

namespace persona::prep {

struct Cleaner::Bound {
  double low = -INFINITY, high = INFINITY;
};

void append_key(std::string& key, std::string_view value, bool present) {
  const uint32_t n = present ? static_cast<uint32_t>(value.size()) : 0xFFFFFFFFu;
  key.append(reinterpret_cast<const char*>(&n), sizeof n);
  key.append(value);
}

bool SeenHashes::insert_seen(Hash128 h) {
  if (previous_.contains(h)) return true;
  if (!current_.insert(h).second) return true;
  if (limit_ > 0 && current_.size() >= limit_) {
    previous_ = std::move(current_);
    current_ = {};
  }
  return false;
}

void SeenHashes::clear() {
  current_.clear();
  previous_.clear();
}

bool ExactDuplicates::seen_before(const io::Record& record) {
  key_.clear();
  for (size_t c = 0; c < record.fields.size(); ++c) append_key(key_, record.fields[c], record.present[c]);
  const XXH128_hash_t h = XXH3_128bits(key_.data(), key_.size());
  return seen_.insert_seen({h.low64, h.high64});
}

uint64_t CleanSummary::removed_by(const std::string& rule) const {
  for (const auto& r : rules)
    if (r.rule == rule) return r.removed;
  return 0;
}

namespace {
bool declared(const std::vector<RuleSpec>& rules, const std::string& kind) {
  return std::any_of(rules.begin(), rules.end(), [&](const RuleSpec& r) { return r.kind == kind; });
}

double quantile(std::vector<double>& v, double q) {  // linear interpolation, as numpy / pandas
  if (v.empty()) return NAN;
  const double pos = q * (v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  std::nth_element(v.begin(), v.begin() + lo, v.end());
  const double a = v[lo];
  if (lo + 1 >= v.size()) return a;
  const double b = *std::min_element(v.begin() + lo + 1, v.end());
  return a + (b - a) * (pos - lo);
}
}  // namespace

Cleaner::Cleaner(std::vector<RuleSpec> rules, io::Mapper& mapper, std::string file)
    : rules_(std::move(rules)), mapper_(mapper), file_(std::move(file)) {
  if (!declared(rules_, "type_error")) rules_.push_back({.kind = "type_error"});
  if (!std::any_of(rules_.begin(), rules_.end(), [](const RuleSpec& r) { return r.label() == "missing_required"; })) {
    RuleSpec required{.kind = "missing", .name = "missing_required"};
    for (const auto& slot : mapper_.slots())
      if (slot.field->required) required.fields.push_back(fmt::format("{}.{}", entity_name(slot.entity), slot.name));
    if (!required.fields.empty()) rules_.push_back(required);
  }
  summary_.rules.push_back({"malformed"});
  for (const auto& rule : rules_) {
    validate_rule(rule);
    kinds_.push_back(kind_of(rule.kind));
    null_action_.push_back(rule.action == "null");
    std::vector<Ref> refs;
    for (const auto& f : rule.fields) refs.push_back(resolve(f, rule));
    if (rule.kind == "text_hygiene" && refs.empty()) {
      for (size_t s = 0; s < mapper_.slots().size(); ++s)
        if (mapper_.slots()[s].field->type == FieldType::Text && !mapper_.slots()[s].spec->constant)
          refs.push_back({static_cast<int>(s), -1, ""});
    }
    refs_.push_back(std::move(refs));
    std::unique_ptr<re2::RE2> re;
    if (rule.kind == "pattern") {
      re = std::make_unique<re2::RE2>(rule.regex, re2::RE2::Quiet);
      if (!re->ok())
        throw Error(fmt::format("cleaning rule \"{}\": bad regex: {}", rule.label(), re->error()), {}, "RE2 syntax");
    }
    patterns_.push_back(std::move(re));
    summary_.rules.push_back({rule.label()});
  }
  pattern_memo_.resize(rules_.size());
  observed_.resize(rules_.size());
  bounds_.resize(rules_.size());
  exact_.resize(rules_.size());
  keys_.resize(rules_.size());
  cleaned_.resize(mapper_.slots().size());
}

Cleaner::~Cleaner() = default;

Cleaner::Kind Cleaner::kind_of(const std::string& name) {
  static const std::pair<const char*, Kind> kinds[] = {
      {"exact_duplicate", Kind::ExactDuplicate}, {"duplicate_key", Kind::DuplicateKey}, {"missing", Kind::Missing},
      {"type_error", Kind::TypeError},           {"prefix", Kind::Prefix},              {"range", Kind::Range},
      {"pattern", Kind::Pattern},                {"outlier", Kind::Outlier},            {"text_hygiene", Kind::TextHygiene}};
  for (const auto& [n, k] : kinds)
    if (name == n) return k;
  throw Error(fmt::format("unknown cleaning rule \"{}\"", name));
}

Cleaner::Ref Cleaner::resolve(const std::string& name, const RuleSpec& rule) const {
  Ref ref{-1, -1, name};
  const auto dot = name.find('.');
  if (dot != std::string::npos) {
    if (auto entity = parse_entity(name.substr(0, dot))) {
      ref.slot = mapper_.slot(*entity, name.substr(dot + 1));
      if (ref.slot >= 0) return ref;
      if (!find_model_field(*entity, name.substr(dot + 1)))
        throw Error(fmt::format("cleaning rule \"{}\" names \"{}\", which is not a model field", rule.label(), name), {file_});
      // A model field this source does not map: fall through to a column of that name.
    }
  }
  ref.column = mapper_.column(name);
  if (ref.column < 0)
    throw Error(fmt::format("cleaning rule \"{}\" names \"{}\": neither a field this source maps nor one of its columns",
                            rule.label(), name),
                {file_}, "use entity.field (event.user, item.price, ...) or a column name from the file's header");
  return ref;
}

std::string_view Cleaner::text_of(const Ref& ref, const io::Record& record,
                                  const std::vector<io::FieldValue>& values) const {
  if (ref.slot >= 0) return values[ref.slot].text;
  const auto c = static_cast<size_t>(ref.column);
  return c < record.fields.size() ? record.fields[c] : std::string_view();
}

bool Cleaner::missing(const Ref& ref, const io::Record& record, const std::vector<io::FieldValue>& values) const {
  if (ref.slot >= 0) return !values[ref.slot].present;
  const auto c = static_cast<size_t>(ref.column);
  return c >= record.fields.size() || !record.present[c] || record.fields[c].empty();
}

bool Cleaner::needs_first_pass() const { return declared(rules_, "outlier"); }

void Cleaner::remember_at_most(size_t rows) {
  for (auto& s : exact_) s.limit_to(rows);
  for (auto& s : keys_) s.limit_to(rows);
}

void Cleaner::reset_duplicates() {
  for (auto& s : exact_) s.clear();
  for (auto& s : keys_) s.clear();
}

void Cleaner::observe(const io::Record& record, std::vector<io::FieldValue>& values) {
  if (!record.problem.empty()) return;
  RowVerdict verdict;
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (rules_[i].kind == "outlier") {
      const auto& ref = refs_[i][0];
      if (ref.slot >= 0 && values[ref.slot].present && !values[ref.slot].error)
        observed_[i].push_back(values[ref.slot].number);
      continue;
    }
    if (!run_rule(i, record, values, verdict, false)) return;
  }
}

void Cleaner::end_first_pass() {
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (rules_[i].kind != "outlier") continue;
    auto& v = observed_[i];
    Bound b;
    if (rules_[i].method == "iqr") {
      const double k = rules_[i].threshold > 0 ? rules_[i].threshold : 1.5;
      const double q1 = quantile(v, 0.25), q3 = quantile(v, 0.75);
      b = {q1 - k * (q3 - q1), q3 + k * (q3 - q1)};
    } else if (!v.empty()) {
      const double z = rules_[i].threshold > 0 ? rules_[i].threshold : 3.0;
      double mean = 0, sq = 0;
      for (double x : v) mean += x;
      mean /= v.size();
      for (double x : v) sq += (x - mean) * (x - mean);
      const double sd = v.size() > 1 ? std::sqrt(sq / (v.size() - 1)) : 0;
      b = {mean - z * sd, mean + z * sd};
    }
    bounds_[i] = b;
    std::vector<double>().swap(v);
  }
  reset_duplicates();
}

std::vector<std::pair<std::string, std::pair<double, double>>> Cleaner::outlier_bounds() const {
  std::vector<std::pair<std::string, std::pair<double, double>>> out;
  for (size_t i = 0; i < rules_.size(); ++i)
    if (rules_[i].kind == "outlier") out.push_back({rules_[i].label(), {bounds_[i].low, bounds_[i].high}});
  return out;
}

RowVerdict Cleaner::apply(const io::Record& record, std::vector<io::FieldValue>& values) {
  ++summary_.rows_read;
  RowVerdict verdict;
  if (!record.problem.empty()) {
    verdict = {false, false, "malformed", "", "", record.problem};
    ++summary_.rules[0].removed;
    ++summary_.rows_removed;
    return verdict;
  }
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (!run_rule(i, record, values, verdict, true)) {
      ++summary_.rules[i + 1].removed;
      ++summary_.rows_removed;
      verdict.kept = false;
      verdict.rule = rules_[i].label();
      return verdict;
    }
  }
  ++summary_.rows_kept;
  return verdict;
}

bool Cleaner::run_rule(size_t index, const io::Record& record, std::vector<io::FieldValue>& values,
                       RowVerdict& verdict, bool counting) {
  const RuleSpec& rule = rules_[index];
  const Kind kind = kinds_[index];
  const auto& refs = refs_[index];
  auto reject = [&](const Ref* ref, std::string reason) {
    verdict.field = ref ? ref->name : "";
    if (ref) verdict.value = std::string(text_of(*ref, record, values));
    verdict.reason = std::move(reason);
    return false;
  };

  if (kind == Kind::ExactDuplicate) {
    // The reader may have checked this already, on its own thread, over every record in file
    // order. That gives the same answer as checking here: an identical record meets the same
    // verdicts from the rules before this one, so it reaches this rule exactly when the first
    // copy did.
    const bool duplicate = record.duplicate >= 0 ? record.duplicate == 1 : exact_[index].seen_before(record);
    if (duplicate) return reject(nullptr, "an identical row came earlier in the file");
    return true;
  }
  if (kind == Kind::DuplicateKey) {
    key_buffer_.clear();
    for (const auto& ref : refs) append_key(key_buffer_, text_of(ref, record, values), !missing(ref, record, values));
    const XXH128_hash_t h = XXH3_128bits(key_buffer_.data(), key_buffer_.size());
    if (keys_[index].insert_seen({h.low64, h.high64}))
      return reject(nullptr, fmt::format("a row with the same {} came earlier", fmt::join(rule.fields, ", ")));
    return true;
  }
  if (kind == Kind::Missing) {
    for (const auto& ref : refs)
      if (missing(ref, record, values)) return reject(&ref, "required value is missing");
    return true;
  }
  const bool null_bad_values = null_action_[index];
  bool cleared = false;  // action "null" cleared a value of this row
  auto clear = [&](io::FieldValue& v) {
    v.present = false;
    v.error = nullptr;
    v.text = {};
    if (!cleared && counting) ++summary_.rules[index + 1].changed;
    cleared = true;
  };
  if (kind == Kind::TypeError) {
    for (size_t s = 0; s < values.size(); ++s) {
      auto& v = values[s];
      if (!v.present || !v.error) continue;
      const auto& slot = mapper_.slots()[s];
      if (!refs.empty() && std::none_of(refs.begin(), refs.end(), [&](const Ref& r) { return r.slot == int(s); }))
        continue;
      if (null_bad_values) {
        clear(v);
        continue;
      }
      Ref ref{static_cast<int>(s), -1,
              slot.spec->constant ? fmt::format("{}.{}", entity_name(slot.entity), slot.name) : slot.spec->column};
      return reject(&ref, fmt::format("{}.{} {}", entity_name(slot.entity), slot.name, v.error));
    }
    return true;
  }
  if (kind == Kind::Prefix) {
    for (const auto& ref : refs) {
      const auto text = text_of(ref, record, values);
      for (const auto& p : rule.prefixes)
        if (text.substr(0, p.size()) == p) return reject(&ref, fmt::format("starts with \"{}\"", p));
    }
    return true;
  }
  if (kind == Kind::Pattern) {
    for (const auto& ref : refs) {
      const auto text = text_of(ref, record, values);
      auto& memo = pattern_memo_[index];
      bool match;
      if (auto it = memo.find(absl::string_view(text.data(), text.size())); it != memo.end()) {
        match = it->second;
      } else {
        match = re2::RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *patterns_[index]);
        if (memo.size() < 65536) memo.emplace(std::string(text), match);
      }
      if (match != rule.keep_matching)
        return reject(&ref, fmt::format("{} /{}/", rule.keep_matching ? "does not match" : "matches", rule.regex));
    }
    return true;
  }
  if (kind == Kind::Range || kind == Kind::Outlier) {
    for (const auto& ref : refs) {
      if (ref.slot < 0 || !values[ref.slot].present || values[ref.slot].error) continue;
      const double x = values[ref.slot].number;
      if (kind == Kind::Range) {
        const bool below = rule.min && (x < *rule.min || (rule.min_exclusive && x == *rule.min));
        const bool above = rule.max && (x > *rule.max || (rule.max_exclusive && x == *rule.max));
        if ((below || above) && null_bad_values) {
          clear(values[ref.slot]);
          continue;
        }
        if (below)
          return reject(&ref, fmt::format("below the minimum {}{}", rule.min_exclusive ? "(exclusive) " : "", *rule.min));
        if (above)
          return reject(&ref, fmt::format("above the maximum {}{}", rule.max_exclusive ? "(exclusive) " : "", *rule.max));
      } else {
        const Bound& b = bounds_[index];
        if (x < b.low || x > b.high) {
          std::string reason = fmt::format("outside [{:.6g}, {:.6g}] ({})", b.low, b.high, rule.method);
          if (rule.action == "drop") return reject(&ref, std::move(reason));
          if (counting && !verdict.flagged) {
            ++summary_.rules[index + 1].flagged;
            verdict.flagged = true;
            verdict.rule = rule.label();
            verdict.field = ref.name;
            verdict.value = std::string(values[ref.slot].text);
            verdict.reason = std::move(reason);
          }
        }
      }
    }
    return true;
  }
  if (kind == Kind::TextHygiene) {
    bool changed = false;
    for (const auto& ref : refs) {
      if (ref.slot < 0) continue;
      auto& v = values[ref.slot];
      if (!v.present || v.error) continue;
      std::string& text = cleaned_[ref.slot];
      text.assign(v.text);
      if (clean_text(text)) {
        changed = true;
        v.text = text;
        if (text.empty()) v.present = false;
      }
    }
    if (changed && counting) ++summary_.rules[index + 1].changed;
    return true;
  }
  return true;
}

}  // namespace persona::prep
