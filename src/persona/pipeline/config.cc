#include "persona/pipeline/config.h"

#include "persona/store/store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>
#include <xxhash.h>

#include "persona/assistant/assistant.h"
#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/io/input.h"
#include "persona/io/text_encoding.h"
#include "persona/prep/normaliser.h"

namespace persona::pipeline {

struct PresetText {
  const char* name;
  const char* description;
  const char* toml;
};
const std::vector<PresetText>& preset_texts();

namespace {

// Reads one TOML document, turning every problem into a persona::Error with file and line.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const toml::node& node, const std::string& message, const std::string& hint = {}) const {
    throw Error(message, {file_, static_cast<int64_t>(node.source().begin.line)}, hint);
  }

  void only_keys(const toml::table& table, const std::set<std::string>& allowed, const std::string& where) const {
    for (const auto& [key, value] : table) {
      if (!allowed.count(std::string(key.str()))) {
        std::string list;
        for (const auto& a : allowed) list += fmt::format("{}{}", list.empty() ? "" : ", ", a);
        fail(value, fmt::format("unknown key \"{}\" in {}", key.str(), where), fmt::format("known keys: {}", list));
      }
    }
  }

  void profile(const toml::node& node, ProfileConfig& p) const {
    const auto& t = table(node, "profile");
    r_only(t);
    auto positive = [&](const char* key, double min, double max) -> std::optional<double> {
      const auto* v = t.get(key);
      if (!v) return std::nullopt;
      const double x = number(*v, key);
      if (!(x >= min && x <= max)) fail(*v, fmt::format("{} must be between {} and {}", key, min, max));
      return x;
    };
    if (auto v = positive("half_life_days", 0.01, 36500)) p.options.half_life_days = *v;
    if (auto v = positive("top_n", 1, 100)) p.options.top_n = static_cast<size_t>(*v);
    if (auto v = positive("keywords", 0, 100)) p.options.keywords = static_cast<size_t>(*v);
    if (auto v = positive("segments", 0, 100)) p.segments.k = static_cast<int>(*v);
    if (auto v = positive("k_min", 2, 100)) p.segments.k_min = static_cast<int>(*v);
    if (auto v = positive("k_max", 2, 100)) p.segments.k_max = static_cast<int>(*v);
    if (auto v = positive("seed", 0, 9e15)) p.segments.seed = static_cast<uint64_t>(*v);
    if (p.segments.k_min > p.segments.k_max) fail(node, "k_min must not exceed k_max");
    if (const auto* w = t.get("weights")) {
      const auto& wt = table(*w, "weights");
      for (const auto& [key, value] : wt) {
        const auto type = parse_event_type(key.str());
        if (!type) fail(value, fmt::format("unknown event type \"{}\" in [profile.weights]", key.str()),
                        "event types: view, click, cart, purchase, return, rate, review, search, favourite");
        const double x = number(value, std::string(key.str()));
        if (!(x >= 0 && x <= 1000)) fail(value, "weights must be between 0 and 1000");
        p.options.weights[static_cast<size_t>(*type)] = x;
      }
    }
  }
  void r_only(const toml::table& t) const {
    only_keys(t, {"half_life_days", "top_n", "keywords", "segments", "k_min", "k_max", "seed", "weights"}, "[profile]");
  }

  std::string string(const toml::node& node, const std::string& key) const {
    if (auto v = node.value<std::string>()) return *v;
    // Numbers and booleans given where text is expected are taken as their text ("1" for 1).
    if (auto i = node.value<int64_t>(); i && node.is_integer()) return std::to_string(*i);
    if (auto b = node.value<bool>()) return *b ? "true" : "false";
    fail(node, fmt::format("\"{}\" must be a string", key));
  }
  double number(const toml::node& node, const std::string& key) const {
    if (node.is_number()) return *node.value<double>();
    fail(node, fmt::format("\"{}\" must be a number", key));
  }
  bool boolean(const toml::node& node, const std::string& key) const {
    if (auto b = node.value<bool>()) return *b;
    fail(node, fmt::format("\"{}\" must be true or false", key));
  }
  std::vector<std::string> strings(const toml::node& node, const std::string& key) const {
    std::vector<std::string> out;
    if (node.is_string()) return {*node.value<std::string>()};
    const auto* arr = node.as_array();
    if (!arr) fail(node, fmt::format("\"{}\" must be a list of strings", key));
    for (const auto& el : *arr) out.push_back(string(el, key));
    return out;
  }
  // time_window = ["1970-01-01", "2100-01-01"]: ISO 8601 dates or times, the first included,
  // the second not.
  TimeWindow time_window(const toml::node& node) const {
    const auto* arr = node.as_array();
    if (!arr || arr->size() != 2) fail(node, "time_window must be two times: [\"1970-01-01\", \"2100-01-01\"]");
    const TimestampParser iso("iso8601");
    TimeWindow w;
    int64_t* ends[] = {&w.min, &w.max};
    for (size_t i = 0; i < 2; ++i) {
      const auto text = string(*arr->get(i), "time_window");
      const auto t = iso.parse(text);
      if (!t) fail(*arr->get(i), fmt::format("time_window: {} is not an ISO 8601 date or time", quote_value(text)));
      *ends[i] = *t;
    }
    if (w.min >= w.max) fail(node, "time_window: the first time must come before the second");
    return w;
  }
  const toml::table& table(const toml::node& node, const std::string& key) const {
    if (const auto* t = node.as_table()) return *t;
    fail(node, fmt::format("\"{}\" must be a table", key));
  }

  prep::RuleSpec rule(const toml::node& node) const {
    const auto& t = table(node, "clean");
    only_keys(t, {"rule", "name", "fields", "prefixes", "regex", "keep_matching", "min", "max", "min_exclusive",
                  "max_exclusive", "method", "threshold", "action"},
              "a [[clean]] rule");
    prep::RuleSpec r;
    if (!t.contains("rule")) fail(node, "a cleaning rule needs rule = \"...\"");
    r.kind = string(*t.get("rule"), "rule");
    if (auto* n = t.get("name")) r.name = string(*n, "name");
    if (auto* n = t.get("fields")) r.fields = strings(*n, "fields");
    if (auto* n = t.get("prefixes")) r.prefixes = strings(*n, "prefixes");
    if (auto* n = t.get("regex")) r.regex = string(*n, "regex");
    if (auto* n = t.get("keep_matching")) r.keep_matching = boolean(*n, "keep_matching");
    if (auto* n = t.get("min")) r.min = number(*n, "min");
    if (auto* n = t.get("max")) r.max = number(*n, "max");
    if (auto* n = t.get("min_exclusive")) r.min_exclusive = boolean(*n, "min_exclusive");
    if (auto* n = t.get("max_exclusive")) r.max_exclusive = boolean(*n, "max_exclusive");
    if (auto* n = t.get("method")) r.method = string(*n, "method");
    if (auto* n = t.get("threshold")) r.threshold = number(*n, "threshold");
    if (auto* n = t.get("action")) r.action = string(*n, "action");
    try {
      prep::validate_rule(r);
    } catch (const Error& e) {
      fail(node, e.reason(), e.hint());
    }
    return r;
  }

  std::vector<prep::RuleSpec> rules(const toml::node& node) const {
    std::vector<prep::RuleSpec> out;
    const auto* arr = node.as_array();
    if (!arr) fail(node, "clean must be a list of rules: [[clean]] tables");
    for (const auto& el : *arr) out.push_back(rule(el));
    return out;
  }

  io::FieldSpec field(const toml::node& node, const std::string& name) const {
    io::FieldSpec spec;
    if (!node.is_table()) {
      spec.column = string(node, name);
      return spec;
    }
    const auto& t = *node.as_table();
    only_keys(t, {"column", "const", "format", "map", "prefix_map", "default", "abs"}, fmt::format("field \"{}\"", name));
    if (auto* n = t.get("column")) {
      // One name, or a list of names the column goes by in different files of the same kind.
      auto names = strings(*n, "column");
      if (names.empty()) fail(*n, "column needs at least one name");
      spec.column = names[0];
      spec.alternatives.assign(names.begin() + 1, names.end());
    }
    if (auto* n = t.get("const")) spec.constant = string(*n, "const");
    if (auto* n = t.get("format")) spec.format = string(*n, "format");
    if (auto* n = t.get("default")) spec.default_value = string(*n, "default");
    if (auto* n = t.get("abs")) spec.absolute = boolean(*n, "abs");
    if (auto* n = t.get("map"))
      for (const auto& [k, v] : table(*n, "map")) spec.value_map.emplace_back(std::string(k.str()), string(v, "map"));
    if (auto* n = t.get("prefix_map"))
      for (const auto& [k, v] : table(*n, "prefix_map"))
        spec.prefix_map.emplace_back(std::string(k.str()), string(v, "prefix_map"));
    if (spec.column.empty() && !spec.constant)
      fail(node, fmt::format("field \"{}\" needs column = \"...\" or const = \"...\"", name));
    return spec;
  }

  // Applies the keys of a [[sources]] table (or a preset) on top of `source`.
  void source(const toml::table& t, SourceConfig& source, bool is_preset) const {
    std::set<std::string> keys = {"format", "encoding", "delimiter", "quote", "header", "max_record_bytes", "na_values", "clean",
                                  "user", "users", "item", "items", "event", "events", "text", "texts", "feedback"};
    if (!is_preset) keys.insert({"name", "path", "preset"});
    only_keys(t, keys, is_preset ? "a preset" : "a [[sources]] table");
    auto& m = source.mapping;
    if (auto* n = t.get("name")) m.name = string(*n, "name");
    if (auto* n = t.get("path")) m.path = string(*n, "path");
    if (auto* n = t.get("format")) {
      try {
        m.format = io::parse_format(string(*n, "format"));
      } catch (const Error& e) {
        fail(*n, e.reason(), e.hint());
      }
      if (m.format == io::Format::Tsv) m.csv.delimiter = "\t";
    }
    if (auto* n = t.get("encoding")) {
      m.encoding = string(*n, "encoding");
      try {
        io::check_encoding(m.encoding);
      } catch (const Error& e) {
        fail(*n, e.reason(), e.hint());
      }
    }
    if (auto* n = t.get("delimiter")) {
      m.csv.delimiter = string(*n, "delimiter");
      if (m.csv.delimiter.empty()) fail(*n, "delimiter must not be empty");
    }
    if (auto* n = t.get("quote")) {
      const auto q = string(*n, "quote");
      if (q.size() > 1) fail(*n, "quote must be one character, or \"\" for no quoting");
      m.csv.quote = q.empty() ? 0 : q[0];
    }
    if (auto* n = t.get("header")) m.csv.header = boolean(*n, "header");
    if (auto* n = t.get("max_record_bytes")) {
      const double v = number(*n, "max_record_bytes");
      if (v < 64) fail(*n, "max_record_bytes must be at least 64");
      m.csv.max_record_bytes = static_cast<size_t>(v);
    }
    if (auto* n = t.get("na_values")) m.na_values = strings(*n, "na_values");
    if (auto* n = t.get("clean")) {
      source.rules = rules(*n);
      source.has_rules = true;
    }
    for (const auto& [key, value] : t) {
      auto entity = parse_entity(key.str());
      if (!entity) continue;
      const auto& fields = table(value, std::string(key.str()));
      auto it = std::find_if(m.outputs.begin(), m.outputs.end(), [&](const auto& o) { return o.entity == *entity; });
      if (it == m.outputs.end()) {
        m.outputs.push_back({*entity, {}});
        it = m.outputs.end() - 1;
      }
      // Attributes: attr.NAME = "column" (a TOML dotted key, so a table named attr).
      std::vector<std::pair<std::string, const toml::node*>> entries;
      for (const auto& [fname, fnode] : fields) {
        if (*entity == Entity::User && fname.str() == "attr" && fnode.is_table()) {
          for (const auto& [aname, anode] : *fnode.as_table())
            entries.emplace_back(std::string(kAttributePrefix) + std::string(aname.str()), &anode);
        } else {
          entries.emplace_back(std::string(fname.str()), &fnode);
        }
      }
      for (const auto& entry : entries) {
        const std::string& name = entry.first;  // (clang 14 cannot capture structured bindings)
        const toml::node& fnode = *entry.second;
        if (!find_model_field(*entity, name)) {
          std::string known;
          for (const auto& f : model_fields())
            if (f.entity == *entity) known += fmt::format("{}{}", known.empty() ? "" : ", ", f.name);
          if (*entity == Entity::User) known += ", attr.NAME (any attribute)";
          fail(fnode, fmt::format("{} has no field \"{}\"", entity_name(*entity), name),
               fmt::format("{} fields are: {}", entity_name(*entity), known));
        }
        auto spec = field(fnode, name);
        auto existing = std::find_if(it->fields.begin(), it->fields.end(), [&](const auto& p) { return p.first == name; });
        if (existing != it->fields.end()) existing->second = std::move(spec);
        else it->fields.emplace_back(name, std::move(spec));
      }
    }
  }

 private:
  std::string file_;
};

toml::table parse_toml(const std::string& text, const std::string& name) {
  try {
    return toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    throw Error(fmt::format("TOML syntax error: {}", e.description()),
                {name, static_cast<int64_t>(e.source().begin.line)}, "fix the config file");
  }
}

void apply_preset(const std::string& preset, SourceConfig& source) {
  for (const auto& p : preset_texts()) {
    if (preset != p.name) continue;
    const std::string name = fmt::format("<preset {}>", p.name);
    Reader(name).source(parse_toml(p.toml, name), source, true);
    source.preset = preset;
    return;
  }
  std::string names;
  for (const auto& p : preset_texts()) names += fmt::format("{}{}", names.empty() ? "" : ", ", p.name);
  throw Error(fmt::format("unknown preset \"{}\"", preset), {}, fmt::format("presets: {}", names));
}

}  // namespace

std::string Config::resolve(const std::string& path) const {
  if (store::is_postgres_location(path)) return path;  // a database, not a file
  if (path.rfind("sqlite:", 0) == 0) return resolve(store::sqlite_path(path));
  if (path.empty() || path == "-" || path.front() == '/' || base_dir.empty()) return path;  // "-": standard input
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

std::string Config::reject_log_path() const {
  return reject_log.empty() ? resolve(store::local_base(store_path)) + ".rejects.jsonl" : resolve(reject_log);
}

const std::vector<prep::RuleSpec>& Config::rules_for(const SourceConfig& source) const {
  return source.has_rules ? source.rules : default_rules;
}

Config parse_config(const std::string& text, const std::string& name, const std::string& base_dir) {
  const toml::table root = parse_toml(text, name);
  Reader r(name);
  r.only_keys(root, {"store", "ingest", "clean", "sources", "normalise", "profile", "tag", "assistant"}, "the config");
  Config c;
  c.file = name;
  c.base_dir = base_dir;
  if (auto* n = root.get("store")) {
    const auto& t = r.table(*n, "store");
    r.only_keys(t, {"path"}, "[store]");
    if (auto* p = t.get("path")) c.store_path = r.string(*p, "path");
  }
  if (auto* n = root.get("ingest")) {
    const auto& t = r.table(*n, "ingest");
    r.only_keys(t, {"batch_rows", "reject_log", "time_window", "min_kept_share"}, "[ingest]");
    if (auto* p = t.get("min_kept_share")) {
      const double v = r.number(*p, "min_kept_share");
      if (!(v >= 0 && v <= 1)) r.fail(*p, "min_kept_share must be between 0 and 1 (a share of the rows read)");
      c.min_kept_share = v;
    }
    if (auto* p = t.get("batch_rows")) {
      const double v = r.number(*p, "batch_rows");
      if (v < 1 || v > 10'000'000) r.fail(*p, "batch_rows must be between 1 and 10,000,000");
      c.batch_rows = static_cast<size_t>(v);
    }
    if (auto* p = t.get("reject_log")) c.reject_log = r.string(*p, "reject_log");
    if (auto* p = t.get("time_window")) c.time_window = r.time_window(*p);
  }
  if (auto* n = root.get("clean")) c.default_rules = r.rules(*n);
  if (auto* n = root.get("sources")) {
    const auto* arr = n->as_array();
    if (!arr) r.fail(*n, "sources must be [[sources]] tables");
    for (const auto& el : *arr) {
      const auto& t = r.table(el, "sources");
      SourceConfig source;
      if (auto* p = t.get("preset")) {
        try {
          apply_preset(r.string(*p, "preset"), source);
        } catch (const Error& e) {
          r.fail(*p, e.reason(), e.hint());
        }
      }
      r.source(t, source, false);
      auto& m = source.mapping;
      if (m.path.empty()) r.fail(el, "a source needs path = \"...\"");
      if (m.name.empty()) m.name = std::filesystem::path(m.path).filename().string();
      if (!t.contains("format") && source.preset.empty()) {
        try {
          m.format = io::format_from_path(m.path);
        } catch (const Error& e) {
          r.fail(el, e.reason(), e.hint());
        }
        if (m.format == io::Format::Tsv) m.csv.delimiter = "\t";
      }
      m.path = c.resolve(m.path);
      m.time_window = c.time_window;
      try {
        m.validate();
      } catch (const Error& e) {
        r.fail(el, e.reason(), e.hint());
      }
      c.sources.push_back(std::move(source));
    }
  }
  if (auto* n = root.get("normalise")) {
    const auto* arr = n->as_array();
    if (!arr) r.fail(*n, "normalise must be [[normalise]] tables");
    for (const auto& el : *arr) {
      const auto& t = r.table(el, "normalise");
      r.only_keys(t, {"field", "method"}, "[[normalise]]");
      if (!t.contains("field") || !t.contains("method")) r.fail(el, "[[normalise]] needs field and method");
      NormaliserConfig n{r.string(*t.get("field"), "field"), r.string(*t.get("method"), "method")};
      // Checked now, not after the ingest they follow.
      static const std::set<std::string> fields = {"event.quantity", "event.value", "item.price", "user.age", "text.sentiment"};
      if (!fields.count(n.field))
        r.fail(*t.get("field"), fmt::format("\"{}\" is not a numeric field of the store", n.field),
               "event.quantity, event.value, item.price, user.age or text.sentiment");
      try {
        prep::Normaliser::parse_method(n.method);
      } catch (const Error& e) {
        r.fail(*t.get("method"), e.reason(), e.hint());
      }
      c.normalisers.push_back(std::move(n));
    }
  }
  if (auto* n = root.get("profile")) r.profile(*n, c.profile);
  if (auto* n = root.get("tag")) {
    const auto* arr = n->as_array();
    if (!arr) r.fail(*n, "tags must be [[tag]] tables");
    c.profile.tags.clear();
    for (const auto& el : *arr) {
      const auto& t = r.table(el, "tag");
      r.only_keys(t, {"name", "rule"}, "[[tag]]");
      if (!t.contains("name") || !t.contains("rule")) r.fail(el, "[[tag]] needs name and rule");
      profile::TagRuleSpec spec{r.string(*t.get("name"), "name"), r.string(*t.get("rule"), "rule")};
      try {
        profile::TagRule::compile(spec);  // an unknown feature or a syntax error is found now
      } catch (const Error& e) {
        r.fail(*t.get("rule"), e.reason(), e.hint());
      }
      c.profile.tags.push_back(std::move(spec));
    }
  }
  if (auto* n = root.get("assistant")) {
    // The assistant reads its own settings; checked here so that a mistake names the file and line.
    if (!n->is_table()) r.fail(*n, "assistant must be an [assistant] table");
    std::ostringstream json;
    json << toml::json_formatter{*n->as_table()};
    c.assistant = parse_json_or_throw(json.str(), {name, static_cast<int64_t>(n->source().begin.line)});
    try {
      assistant::apply_assistant_settings(c.assistant, {});
    } catch (const std::exception& e) {
      r.fail(*n, e.what(), "see docs/config.md, section [assistant]");
    }
  }
  return c;
}

Config load_config(const std::string& path) {
  if (!std::filesystem::exists(path))
    throw Error("cannot read the config file", {path}, "check the path, or run `persona generate` for an example");
  const std::string text = io::read_small_input(path, "config file", 16u << 20);
  const auto dir = std::filesystem::absolute(path).parent_path().string();
  return parse_config(text, path, dir);
}

SourceConfig labelled_text_source(const std::string& preset, const std::string& path, const std::string& label_field,
                                  const std::string& text_column, const std::string& label_column) {
  SourceConfig source;
  apply_preset(preset.empty() ? "labelled_texts" : preset, source);
  auto& m = source.mapping;
  if (preset.empty()) {
    m.format = io::format_from_path(path);
    if (m.format == io::Format::Tsv) m.csv.delimiter = "\t";
  }
  for (auto& output : m.outputs) {
    if (output.entity != Entity::Text) continue;
    auto set_column = [&](const std::string& field, const std::string& column) {
      if (column.empty()) return;
      auto it = std::find_if(output.fields.begin(), output.fields.end(), [&](const auto& f) { return f.first == field; });
      if (it == output.fields.end()) it = output.fields.insert(output.fields.end(), {field, io::FieldSpec{}});
      it->second = io::FieldSpec{};
      it->second.column = column;
    };
    if (!label_column.empty() && label_field.find('/') != std::string::npos)
      throw Error(fmt::format("--label-column names one column, and the label \"{}\" is a pair", label_field), {path},
                  "map a pair of columns with a preset or a config's [text] table");
    set_column("body", text_column);
    // Without a preset the label is in the column "label" whatever field it fills.
    set_column(label_field, label_column.empty() && preset.empty() && label_field != "label" ? "label" : label_column);
  }
  m.name = std::filesystem::path(path).filename().string();
  m.path = path;
  m.validate();
  return source;
}

SourceConfig preset_source(const std::string& preset, const std::string& path) {
  SourceConfig source;
  apply_preset(preset, source);
  source.mapping.name = std::filesystem::path(path).filename().string();
  source.mapping.path = path;
  source.mapping.validate();
  return source;
}

std::string source_fingerprint(const SourceConfig& source, const std::vector<prep::RuleSpec>& rules) {
  nlohmann::json j;
  const auto& m = source.mapping;
  j["format"] = io::format_name(m.format);
  j["csv"] = {m.csv.delimiter, std::string(1, m.csv.quote), m.csv.header, m.csv.max_record_bytes};
  j["na"] = m.na_values;
  if (!(m.time_window == TimeWindow{})) j["time_window"] = {m.time_window.min, m.time_window.max};
  if (!m.encoding.empty()) j["encoding"] = m.encoding;
  for (const auto& o : m.outputs) {
    nlohmann::json fields;
    for (const auto& [name, f] : o.fields)
      fields[name] = {f.column, f.alternatives, f.constant.value_or("\x01"), f.format, f.value_map, f.prefix_map,
                      f.default_value.value_or("\x01"), f.absolute};
    j["outputs"][entity_name(o.entity)] = fields;
  }
  for (const auto& r : rules)
    j["rules"].push_back({r.kind, r.label(), r.fields, r.prefixes, r.regex, r.keep_matching,
                          r.min.value_or(NAN), r.max.value_or(NAN), r.min_exclusive, r.max_exclusive, r.method,
                          r.threshold, r.action});
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const auto h = XXH3_128bits(text.data(), text.size());
  return fmt::format("{:016x}{:016x}", h.high64, h.low64);
}

}  // namespace persona::pipeline
