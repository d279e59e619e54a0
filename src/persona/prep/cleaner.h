#pragma once
// Applies the cleaning rules to mapped rows, in the declared order, and accounts for every row:
// rows read = rows kept + rows removed, per rule. After the declared rules two implicit ones
// run, so that nothing malformed reaches the store: type_error (a value that is not of its
// field's type) and missing_required (a required model field is empty), unless declared.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include "persona/io/mapping.h"
#include "persona/prep/rules.h"

namespace re2 {
class RE2;
}

namespace persona::prep {

// The 128-bit hashes of rows seen (collisions ~1e-20 per pair), for the duplicate rules. A file
// remembers every row. A stream never ends, so it remembers at least the last `limit` rows and at
// most twice that: when the current generation is full, it becomes the previous one and the one
// before is forgotten.
class SeenHashes {
 public:
  using Hash128 = std::pair<uint64_t, uint64_t>;
  // True when the hash was seen before (within the window); remembers it either way.
  bool insert_seen(Hash128 h);
  void clear();
  void limit_to(size_t limit) { limit_ = limit; }  // 0: remember everything

 private:
  absl::flat_hash_set<Hash128> current_, previous_;
  size_t limit_ = 0;
};

// Says whether an identical record came before (a hash of all its fields). The exact_duplicate
// rule's memory.
class ExactDuplicates {
 public:
  bool seen_before(const io::Record& record);
  void clear() { seen_.clear(); }
  void limit_to(size_t limit) { seen_.limit_to(limit); }

 private:
  SeenHashes seen_;
  std::string key_;
};

// A row's key for duplicate detection: each value with its length (missing values marked), so
// that ("ab","c") and ("a","bc") differ.
void append_key(std::string& key, std::string_view value, bool present);

struct RuleCount {
  std::string rule;
  uint64_t removed = 0, changed = 0, flagged = 0;
};

struct CleanSummary {
  uint64_t rows_read = 0, rows_kept = 0, rows_removed = 0;
  std::vector<RuleCount> rules;  // "malformed" first, then the rules in order
  uint64_t removed_by(const std::string& rule) const;
};

// Why a row was removed (or flagged).
struct RowVerdict {
  bool kept = true;
  bool flagged = false;
  std::string rule, field, value, reason;
};

class Cleaner {
 public:
  Cleaner(std::vector<RuleSpec> rules, io::Mapper& mapper, std::string file);
  ~Cleaner();

  // Outlier rules need the distribution first: feed every row to observe(), then call
  // end_first_pass(), then apply() to every row again.
  bool needs_first_pass() const;
  void observe(const io::Record& record, std::vector<io::FieldValue>& values);
  void end_first_pass();

  // Runs the rules on one row. Values may be changed in place (text hygiene).
  RowVerdict apply(const io::Record& record, std::vector<io::FieldValue>& values);
  const CleanSummary& summary() const { return summary_; }
  // The duplicate rules remember at least the last `rows` rows, at most twice that (a stream:
  // memory stays bounded). By default they remember every row (a file).
  void remember_at_most(size_t rows);
  // The outlier bounds found by the first pass, for the summary: rule -> [low, high].
  std::vector<std::pair<std::string, std::pair<double, double>>> outlier_bounds() const;

 private:
  struct Ref {
    int slot = -1;    // a mapped model field
    int column = -1;  // or a raw source column
    std::string name;
  };
  struct Bound;
  Ref resolve(const std::string& name, const RuleSpec& rule) const;
  std::string_view text_of(const Ref& ref, const io::Record& record, const std::vector<io::FieldValue>& values) const;
  bool missing(const Ref& ref, const io::Record& record, const std::vector<io::FieldValue>& values) const;
  // Returns false when the row is removed; fills the verdict.
  bool run_rule(size_t index, const io::Record& record, std::vector<io::FieldValue>& values, RowVerdict& verdict,
                bool counting);
  void reset_duplicates();

  std::vector<RuleSpec> rules_;
  std::vector<std::vector<Ref>> refs_;
  std::vector<std::unique_ptr<re2::RE2>> patterns_;
  // Pattern results per distinct value: codes, ids and categories repeat on almost every row,
  // and a hash lookup is several times cheaper than a regex match. Bounded in size.
  std::vector<absl::flat_hash_map<std::string, bool>> pattern_memo_;
  std::vector<std::vector<double>> observed_;
  std::vector<Bound> bounds_;
  enum class Kind { ExactDuplicate, DuplicateKey, Missing, TypeError, Prefix, Range, Pattern, Outlier, TextHygiene };
  static Kind kind_of(const std::string& name);
  std::vector<Kind> kinds_;
  std::vector<bool> null_action_;
  std::vector<ExactDuplicates> exact_;                   // exact_duplicate rules
  std::vector<SeenHashes> keys_;                         // duplicate_key rules
  std::string key_buffer_;
  std::vector<std::string> cleaned_;  // storage for text changed by hygiene, per slot
  io::Mapper& mapper_;
  std::string file_;
  CleanSummary summary_;
};

}  // namespace persona::prep
