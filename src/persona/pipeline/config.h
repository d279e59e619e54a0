#pragma once
// The project config (TOML): where the store is, which files to read and how they map onto the
// model, and how to clean them. See docs/config.md for every key.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/io/mapping.h"
#include "persona/prep/rules.h"
#include "persona/profile/builder.h"
#include "persona/profile/segments.h"
#include "persona/profile/tags.h"

namespace persona::pipeline {

struct SourceConfig {
  io::SourceMapping mapping;            // name, path (absolute or relative to the config), format
  std::vector<prep::RuleSpec> rules;    // cleaning rules, in order
  bool has_rules = false;               // false: the config's default [[clean]] rules apply
  std::string preset;                   // the preset it started from, if any
};

struct NormaliserConfig {
  std::string field;   // a numeric model field: event.value, event.quantity, item.price, user.age
  std::string method;  // minmax | zscore | robust | log1p
};

// [profile] and [[tag]]: how profiles are built, segmented and tagged.
struct ProfileConfig {
  profile::ProfileOptions options;
  profile::SegmentOptions segments;
  std::vector<profile::TagRuleSpec> tags = profile::default_tag_rules();  // [[tag]] entries replace these
};

struct Config {
  std::string file;        // where it was read from ("" for built in)
  std::string base_dir;    // relative paths are relative to this
  std::string store_path = "persona.db";
  std::string reject_log;  // "" = <store>.rejects.jsonl
  size_t batch_rows = 50000;
  // [ingest] min_kept_share: a source that keeps a smaller share of the rows it read fails (exit
  // non-zero, not recorded as ingested). At 0, the default, it fails when it read rows and kept none.
  double min_kept_share = 0;
  TimeWindow time_window;  // [ingest] time_window: times outside are rejected (every source, the API)
  std::vector<prep::RuleSpec> default_rules;
  std::vector<SourceConfig> sources;
  std::vector<NormaliserConfig> normalisers;
  ProfileConfig profile;
  // The [assistant] table as JSON (checked when the config is read; the assistant applies it with
  // assistant::apply_assistant_settings). Null when absent.
  nlohmann::json assistant;

  std::string resolve(const std::string& path) const;  // relative to base_dir
  std::string reject_log_path() const;
  // The rules that apply to a source: its own, or the defaults.
  const std::vector<prep::RuleSpec>& rules_for(const SourceConfig& source) const;
};

// Throws persona::Error naming the file, line and key for anything wrong: a TOML syntax error,
// an unknown key (typos are errors, not silently ignored), a bad value, an unknown preset.
Config load_config(const std::string& path);
Config parse_config(const std::string& text, const std::string& name, const std::string& base_dir);

// A source built from a preset for one file (persona ingest --preset NAME FILE).
SourceConfig preset_source(const std::string& preset, const std::string& path);
// A labelled text file: read with `preset`, or without one as any labelled file (the
// labelled_texts preset, in the format the file's name says: .csv, .tsv, .jsonl or a .json
// array). `text_column` and `label_column`, when given, name the columns (JSON keys) that hold the
// text and the label field `label_field` ("label", "category", "sentiment"; not a pair).
SourceConfig labelled_text_source(const std::string& preset, const std::string& path, const std::string& label_field,
                                  const std::string& text_column = {}, const std::string& label_column = {});
struct PresetInfo {
  std::string name, description;
};
const std::vector<PresetInfo>& presets();

// A fingerprint of what decides the content of an ingest: mapping and rules. The same file with
// the same fingerprint is ingested once.
std::string source_fingerprint(const SourceConfig& source, const std::vector<prep::RuleSpec>& rules);

}  // namespace persona::pipeline
