// persona anonymize: a k-anonymous (optionally l-diverse) release of a CSV file.
#include <array>
#include <chrono>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.h"
#include "persona/core/error.h"
#include "persona/demand/text_analysis.h"
#include "persona/io/csv_reader.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/erasure.h"
#include "persona/pipeline/statistics.h"
#include "persona/store/pg_shared.h"
#include "persona/privacy/access.h"
#include "persona/privacy/audit.h"
#include "persona/privacy/crypto.h"
#include "persona/privacy/dp.h"
#include "persona/core/model.h"
#include "persona/core/time.h"
#include "persona/privacy/kanonymity.h"
#include "persona/privacy/pii.h"
#include "persona/text/normalize.h"

namespace persona::cli {
namespace {

struct AnonymizeArgs {
  std::string file, out, sensitive, delimiter = ",";
  std::string shown_as;  // how errors name the input ("" = file)
  std::vector<std::string> columns, qi, numeric, drop;  // comma-separated on the command line
  std::vector<std::string> hierarchies;                 // column=FILE
  int k = 5, l = 1;
  size_t suppress = 0;
};

std::string trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
  return std::string(v);
}

}  // namespace

// A k-anonymous release of a CSV file: the work of `persona anonymize` and `persona export users`.
int run_anonymize(const AnonymizeArgs* a, Common& common) {
  const std::string& shown = a->shown_as.empty() ? a->file : a->shown_as;
            const auto t0 = std::chrono::steady_clock::now();
            io::CsvOptions csv;
            csv.delimiter = a->delimiter;
            csv.header = a->columns.empty();
            io::CsvReader reader(a->file, csv);
            std::vector<std::string> names = a->columns.empty() ? reader.columns() : a->columns;
            for (auto& n : names) n = trim(n);
            auto column = [&](const std::string& name, const char* what) {
              const auto it = std::find(names.begin(), names.end(), name);
              if (it == names.end())
                throw Error(fmt::format("{} column \"{}\" is not in the file", what, name), {shown},
                            fmt::format("columns: {}", fmt::join(names, ", ")));
              return static_cast<size_t>(it - names.begin());
            };
            std::vector<std::vector<std::string>> table;
            io::Record r;
            int64_t bad_rows = 0;
            while (reader.next(r)) {
              if (!r.problem.empty()) {
                ++bad_rows;
                if (!common.quiet) fmt::print(stderr, "{}:{}: {} (row left out)\n", shown, r.line, r.problem);
                continue;
              }
              std::vector<std::string> row;
              for (const auto& f : r.fields) row.push_back(trim(f));
              if (row.size() == 1 && row[0].empty()) continue;  // a blank line
              if (row.size() != names.size()) {
                ++bad_rows;
                if (!common.quiet)
                  fmt::print(stderr, "{}:{}: {} fields, expected {} (row left out)\n", shown, r.line, row.size(), names.size());
                continue;
              }
              table.push_back(std::move(row));
            }
            const auto& numeric = a->numeric;
            std::map<std::string, std::string> hierarchy_files;
            for (const auto& h : a->hierarchies) {
              const auto eq = h.find('=');
              if (eq == std::string::npos) throw Error(fmt::format("--hierarchy {}: expected COLUMN=FILE", h));
              hierarchy_files[h.substr(0, eq)] = h.substr(eq + 1);
            }
            std::vector<privacy::QuasiIdentifier> qis;
            std::vector<size_t> qi_columns;
            std::vector<std::string> warnings;
            for (const auto& name : a->qi) {
              privacy::QuasiIdentifier q;
              q.column = name;
              q.numeric = std::find(numeric.begin(), numeric.end(), name) != numeric.end();
              qi_columns.push_back(column(name, "quasi-identifier"));
              if (const auto it = hierarchy_files.find(name); it != hierarchy_files.end()) {
                std::vector<std::string> w;
                q.hierarchy = privacy::Hierarchy::load(it->second, &w);
                warnings.insert(warnings.end(), w.begin(), w.end());
                hierarchy_files.erase(it);
              }
              qis.push_back(std::move(q));
            }
            if (!hierarchy_files.empty())
              throw Error(fmt::format("--hierarchy for \"{}\", which is not a quasi-identifier", hierarchy_files.begin()->first));
            privacy::KAnonymityOptions o;
            o.k = a->k;
            o.l = a->l;
            o.max_suppressed = a->suppress;
            if (!a->sensitive.empty()) o.sensitive = column(a->sensitive, "sensitive");
            else if (a->l > 1) throw Error("--l-diversity needs --sensitive COLUMN");
            std::vector<int64_t> leaves_before;
            for (const auto& q : qis) leaves_before.push_back(q.hierarchy.leaf_count());
            privacy::KAnonymityResult result;
            try {
              result = privacy::k_anonymize(table, qis, qi_columns, o);
            } catch (const std::invalid_argument& e) {
              throw Error(e.what(), {shown});
            }
            // Values a hierarchy file lacked ("?" for missing) were placed under its root: say so.
            for (size_t i = 0; i < qis.size(); ++i)
              if (leaves_before[i] > 1 && qis[i].hierarchy.leaf_count() > leaves_before[i])
                warnings.push_back(fmt::format("{}: {} value(s) missing from its hierarchy were placed under \"*\"", qis[i].column,
                                               qis[i].hierarchy.leaf_count() - leaves_before[i]));
            if (!a->out.empty()) {
              std::ofstream out(a->out, std::ios::binary);
              if (!out) throw Error("cannot write the release", {a->out});
              const auto& dropped = a->drop;
              std::vector<size_t> keep;
              for (size_t c = 0; c < names.size(); ++c)
                if (std::find(dropped.begin(), dropped.end(), names[c]) == dropped.end()) keep.push_back(c);
              for (size_t i = 0; i < keep.size(); ++i) out << (i ? "," : "") << io::csv_field(names[keep[i]]);
              out << '\n';
              for (size_t row = 0; row < table.size(); ++row) {
                if (result.suppressed[row]) continue;
                for (size_t i = 0; i < keep.size(); ++i) {
                  const auto q = std::find(qi_columns.begin(), qi_columns.end(), keep[i]);
                  const std::string& v = q == qi_columns.end() ? table[row][keep[i]]
                                                               : result.generalised[row][static_cast<size_t>(q - qi_columns.begin())];
                  out << (i ? "," : "") << io::csv_field(v);
                }
                out << '\n';
              }
              if (!out) throw Error("could not write the whole release", {a->out});
            }
            const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            nlohmann::json ncp_by = nlohmann::json::object();
            for (size_t i = 0; i < qis.size(); ++i) ncp_by[qis[i].column] = result.ncp_by_qi[i];
            nlohmann::json j = {{"k", a->k}, {"rows", table.size()}, {"rows_left_out", bad_rows},
                                {"min_class_size", result.min_class_size}, {"classes", result.classes},
                                {"suppressed", result.suppressed_rows}, {"ncp", result.ncp}, {"ncp_by_qi", ncp_by},
                                {"wall_s", wall}, {"warnings", warnings}};
            if (o.sensitive) j["l"] = a->l, j["min_distinct_sensitive"] = result.min_diversity;
            if (common.json) {
              print_json(j);
            } else {
              for (const auto& w : warnings) fmt::print(stderr, "warning: {}\n", w);
              fmt::print("k={}: {} rows in {} classes (smallest {}), {} suppressed, NCP {:.4f}{}\n", a->k, table.size(),
                         result.classes, result.min_class_size, result.suppressed_rows, result.ncp,
                         a->out.empty() ? "" : "; release in " + a->out);
            }
            return 0;
}

Command add_anonymize(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("anonymize", "A k-anonymous release of a CSV file (Mondrian, hierarchies, l-diversity)");
  auto a = std::make_shared<AnonymizeArgs>();
  sub->add_option("file", a->file, "CSV file (gzip or not)")->required();
  sub->add_option("-k,--k-anonymity", a->k, "Every released class has at least k rows")->check(CLI::Range(1, 1000000));
  sub->add_option("--qi", a->qi, "Quasi-identifier columns, comma-separated")->required()->delimiter(',');
  sub->add_option("--numeric", a->numeric, "Which of them are numeric (generalised to ranges)")->delimiter(',');
  sub->add_option("--hierarchy", a->hierarchies, "COLUMN=FILE: a generalisation hierarchy (repeatable; default: flat)");
  sub->add_option("--suppress", a->suppress, "Rows that may be withheld (the rarest values first)");
  sub->add_option("--sensitive", a->sensitive, "A sensitive column for distinct l-diversity");
  sub->add_option("-l,--l-diversity", a->l, "Distinct sensitive values every class keeps")->check(CLI::Range(1, 1000));
  sub->add_option("--columns", a->columns, "Column names when the file has no header line, comma-separated")->delimiter(',');
  sub->add_option("--delimiter", a->delimiter, "Field delimiter");
  sub->add_option("--drop", a->drop, "Columns left out of the release (direct identifiers)")->delimiter(',');
  sub->add_option("-o,--out", a->out, "The release (CSV); default: no file, the summary only");
  return {sub, [a, &common] { return run_anonymize(a.get(), common); }};
}

namespace {

// The audit log of this key ring (when keys are at hand: the chain is keyed): the store's (in its
// database on PostgreSQL), else the file.
void audit(const privacy::KeyRing& keys, const std::string& action, const nlohmann::json& details, const std::string& store = "") {
  store::open_audit_log(store, keys).append("cli", action, details);
}

// Audited when keys are at hand (statistics and API keys do not need them otherwise); a failure
// to write the entry is still an error.
void audit_if_keys(const std::string& action, const nlohmann::json& details, const std::string& key_file = "",
                   const std::string& store = "") {
  std::optional<privacy::KeyRing> keys;
  try {
    keys = privacy::KeyRing::resolve(key_file);
  } catch (const Error&) {
    return;
  }
  audit(*keys, action, details, store);
}

}  // namespace

Command add_keys(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("keys", "Encryption keys (init, rotate) and API keys (create, revoke); list shows both, never secrets");
  sub->require_subcommand(1);
  struct Args {
    std::string file, api_keys, action, name, role = "service", user, id, store;
  };
  auto a = std::make_shared<Args>();
  for (const auto& [name, help] : std::vector<std::pair<std::string, std::string>>{
           {"init", "Make a key file (mode 0600): key 1 and a pseudonym key"},
           {"rotate", "Add a key and make it the active one (old keys stay, so sealed data stays readable); --store re-seals a store"},
           {"reseal", "Seal a store's sensitive values with the active key (old keys' values, and plain ones)"},
           {"list", "Encryption key ids and the active one; API keys (id, name, role, user, revoked)"},
           {"create", "Make an API key: shown once, kept only as an Argon2id hash"},
           {"revoke", "Revoke an API key by its id"}}) {
    auto* s = sub->add_subcommand(name, help);
    s->add_option("--key-file", a->file, "Key file (default $PERSONA_KEY_FILE or ./persona.key)");
    s->add_option("--api-keys", a->api_keys, "API key file (default $PERSONA_API_KEYS or ./persona-api-keys.json)");
    if (name == "create") {
      s->add_option("--name", a->name, "What the key is for")->required();
      s->add_option("--role", a->role, "admin, analyst, service or user")->check(CLI::IsMember({"admin", "analyst", "service", "user"}));
      s->add_option("--user", a->user, "The user a user-role key belongs to");
    }
    if (name == "revoke") s->add_option("id", a->id, "The API key's id")->required();
    if (name == "create" || name == "revoke" || name == "list")
      s->add_option("-s,--store", a->store, "A PostgreSQL store whose database keeps the API keys (instead of the file)");
    if (name == "rotate") s->add_option("--store", a->store, "Store to re-seal with the new key");
    if (name == "init")
      s->add_option("--store", a->store, "Seal this store with the new key (created when missing): its texts, "
                                         "attributes and reject rows, now and from now on");
    if (name == "reseal") s->add_option("-s,--store", a->store, "Store: a file, or a postgresql:// URL")->required();
    s->fallthrough();  // --json and --quiet belong to `keys`
    s->callback([a, name = name] { a->action = name; });
  }
  return {sub, [a, &common] {
            const std::string path = privacy::key_file_path(a->file);
            const bool api_action = a->action == "create" || a->action == "revoke" || a->action == "list";
            const auto api_kept = api_action ? store::open_api_keys(a->store, a->api_keys) : nullptr;
            const std::string api_store = api_action ? a->store : "";  // where their audit entries go
            if (a->action == "create") {
              auto& api = *api_kept;
              const auto c = api.create(a->name, *privacy::parse_role(a->role), a->user);
              // The audit log outlives erasures: a user-role key's owner is recorded as a keyed receipt id.
              if (auto keys = privacy::KeyRing::discover(a->file))
                audit(*keys, "apikey.create",
                      {{"id", c.key.id}, {"name", c.key.name}, {"role", a->role},
                       {"user", c.key.user.empty() ? "" : privacy::erasure_receipt(*keys, c.key.user)}},
                      api_store);
              if (common.json) print_json({{"id", c.key.id}, {"role", a->role}, {"secret", c.secret}});
              else fmt::print("{}\n(API key {} for {}: shown once, keep it secret)\n", c.secret, c.key.id, a->role);
              return 0;
            }
            if (a->action == "revoke") {
              if (!api_kept->revoke(a->id)) throw Error(fmt::format("no API key {}", a->id), {api_kept->path()});
              audit_if_keys("apikey.revoke", {{"id", a->id}}, a->file, api_store);
              if (!common.quiet && !common.json) fmt::print("revoked {}\n", a->id);
              return 0;
            }
            nlohmann::json j = nlohmann::json::object();
            if (a->action != "list" || std::filesystem::exists(path)) {
              privacy::KeyRing keys = a->action == "init" ? privacy::KeyRing::create(path) : privacy::KeyRing::load(path);
              if (a->action == "rotate") keys.rotate();
              j = {{"key_file", path}, {"keys", keys.ids()}, {"active", keys.active_id()}};
              if (!a->store.empty()) {
                // Reads go on meanwhile: old keys stay in the ring until every value is re-sealed.
                auto store = a->action == "init" ? open_store(a->store, path) : open_existing_store(a->store, path);
                j["store"] = a->store;
                j["resealed"] = store->reseal();
                if (!common.json && !common.quiet)
                  fmt::print("{}: {} values sealed with key {}\n", a->store, j["resealed"].get<int64_t>(), keys.active_id());
              }
              if (a->action != "list") audit(keys, "keys." + a->action, j, a->store);
              if (!common.json && !common.quiet)
                fmt::print("{}: keys {}, active {}{}\n", path, fmt::join(keys.ids(), ", "), keys.active_id(),
                           a->action == "init" ? " (keep this file secret and backed up: data sealed with it is lost without it)" : "");
            }
            if (a->action == "list") {
              nlohmann::json list = nlohmann::json::array();
              for (const auto& k : api_kept->list()) {
                list.push_back({{"id", k.id}, {"name", k.name}, {"role", privacy::role_name(k.role)}, {"user", k.user},
                                {"created", k.created}, {"revoked", k.revoked}});
                if (!common.json)
                  fmt::print("api key {}  {:<8} {}{}{}\n", k.id, privacy::role_name(k.role), k.name, k.user.empty() ? "" : " user " + k.user,
                             k.revoked ? "  (revoked)" : "");
              }
              j["api_keys"] = list;
            }
            if (common.json) print_json(j);
            return 0;
          }};
}

Command add_pseudonym(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("pseudonym", "Pseudonyms of external ids (keyed BLAKE2b), one per line");
  auto ids = std::make_shared<std::vector<std::string>>();
  auto file = std::make_shared<std::string>();
  sub->add_option("ids", *ids, "External ids")->required();
  sub->add_option("--key-file", *file, "Key file");
  return {sub, [ids, file, &common] {
            const auto keys = privacy::KeyRing::resolve(*file);
            nlohmann::json j = nlohmann::json::object();
            for (const auto& id : *ids) j[id] = privacy::pseudonym(keys, id);
            if (common.json) print_json(j);
            else
              for (const auto& id : *ids) fmt::print("{}\t{}\n", id, j[id].get<std::string>());
            return 0;
          }};
}

Command add_seal(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("seal", "Encrypt a file (an export) with the active key: secretstream, tamper- and truncation-evident");
  auto args = std::make_shared<std::array<std::string, 4>>();  // in, out, key file, mode
  sub->add_option("file", (*args)[0], "File to seal")->required();
  sub->add_option("-o,--out", (*args)[1], "Sealed file (default FILE.sealed)");
  sub->add_option("--key-file", (*args)[2], "Key file");
  sub->add_flag("--open", [args](int64_t) { (*args)[3] = "open"; }, "Open a sealed file instead (default out: FILE without .sealed)");
  return {sub, [args, &common] {
            const auto& [in, given_out, key_file, mode] = *args;
            const auto keys = privacy::KeyRing::resolve(key_file);
            const bool opening = mode == "open";
            std::string out = given_out;
            if (out.empty())
              out = opening ? (in.size() > 7 && in.substr(in.size() - 7) == ".sealed" ? in.substr(0, in.size() - 7) : in + ".opened")
                            : in + ".sealed";
            size_t bytes = 0;
            try {
              bytes = opening ? privacy::open_file(keys, in, out) : privacy::seal_file(keys, in, out);
            } catch (const privacy::CryptoError& e) {
              throw Error(e.what(), {in});
            }
            audit(keys, opening ? "file.open" : "file.seal", {{"file", in}, {"out", out}, {"bytes", bytes}});
            if (common.json) print_json({{"in", in}, {"out", out}, {"bytes", bytes}});
            else if (!common.quiet) fmt::print("{} {} -> {} ({} bytes)\n", opening ? "opened" : "sealed", in, out, bytes);
            return 0;
          }};
}

Command add_audit(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("audit", "The audit log: verify its hash chain, or show it");
  sub->require_subcommand(1);
  auto log = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  auto store = std::make_shared<std::string>();
  auto action = std::make_shared<std::string>();
  for (const char* name : {"verify", "show"}) {
    auto* s = sub->add_subcommand(name, std::string(name) == "verify" ? "Check every entry and the chain; exit 1 when broken"
                                                                       : "Print the entries");
    s->add_option("--log", *log, "Audit log (default $PERSONA_AUDIT_LOG, the database of a PostgreSQL --store, or ./persona-audit.jsonl)");
    s->add_option("-s,--store", *store, "A PostgreSQL store whose database keeps the audit log");
    s->add_option("--key-file", *file, "Key file");
    s->fallthrough();
    s->callback([action, name] { *action = name; });
  }
  return {sub, [log, file, store, action, &common] {
            const auto keys = privacy::KeyRing::resolve(*file);
            const auto audit_log = store::open_audit_log(*store, keys, *log);
            const std::string path = audit_log.path();
            if (*action == "show") {
              if (!log->empty() && !std::filesystem::exists(*log)) throw Error("cannot read the audit log", {path});
              audit_log.for_each([](const std::string& line) { fmt::print("{}\n", line); });
              return 0;
            }
            const auto v = audit_log.verify();
            if (common.json) {
              print_json({{"log", path}, {"intact", v.intact}, {"entries", v.entries}, {"first_bad_line", v.first_bad_line},
                          {"problem", v.problem}});
            } else if (v.intact) {
              fmt::print("{}: intact, {} entries\n", path, v.entries);
            } else {
              fmt::print(stderr, "{}:{}: {}\n", path, v.first_bad_line, v.problem);
            }
            return v.intact ? 0 : 1;
          }};
}

namespace {

struct DpArgs {
  std::string store, config, ledger;
  double set = -1;
  pipeline::DpQuery query;  // the options below fill it
};

}  // namespace

Command add_dp(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("dp", "Differentially private statistics over the store's users, charged to a privacy budget");
  sub->require_subcommand(1);
  auto a = std::make_shared<DpArgs>();
  auto which = std::make_shared<std::string>();
  const std::vector<std::pair<std::string, std::string>> kinds = {
      {"count", "Users with an event (of --event type)"},
      {"sum", "Total purchase spend, each user's clamped to [0, --upper]"},
      {"mean", "Mean purchase spend per buying user, clamped to [0, --upper]"},
      {"quantile", "A quantile (--q) of purchase spend per buying user, in [0, --upper]"},
      {"histogram", "Users per region (--by region) or per purchased category (--by category)"},
      {"budget", "Show, or --set, an analyst's budget on this store"}};
  for (const auto& [name, help] : kinds) {
    auto* s = sub->add_subcommand(name, help);
    s->add_option("-s,--store", a->store, "Store: a file, or a postgresql:// URL");
    s->add_option("-c,--config", a->config, "Config file (for its store path)");
    s->add_option("--analyst", a->query.analyst, "Who is asking (budgets are per analyst)")->required();
    s->add_option("--ledger", a->ledger, "Budget ledger file (default: in the database of a PostgreSQL store, else <store>.dp-ledger.jsonl)");
    if (name == "budget") {
      s->add_option("--set", a->set, "Set the analyst's total epsilon on this store");
    } else {
      s->add_option("-e,--epsilon", a->query.epsilon, "Epsilon this query spends")->check(CLI::Range(1e-6, 100.0));
    }
    if (name == "count") s->add_option("--event", a->query.event, "Event type (default: any)");
    if (name == "sum" || name == "mean" || name == "quantile") {
      s->add_option("--upper", a->query.upper, "Clamp of a user's spend (chosen without looking at the data)")->required();
      s->add_option("--resolution", a->query.resolution, "Units the spend is counted in (default 0.01)");
    }
    if (name == "quantile") {
      s->add_option("--q", a->query.q, "The quantile")->check(CLI::Range(0.0, 1.0));
      s->add_option("--bins", a->query.bins, "Histogram bins over [0, upper]")->check(CLI::Range(2, 100000));
    }
    if (name == "histogram") {
      s->add_option("--by", a->query.by, "region or category")->check(CLI::IsMember({"region", "category"}));
      s->add_option("--max-per-user", a->query.max_per_user, "Categories a user counts in at most")->check(CLI::Range(1, 1000));
    }
    s->fallthrough();
    s->callback([which, name = name] { *which = name; });
  }
  return {sub, [a, which, &common] {
            const std::string store_path = store_path_from(a->store, a->config);
            const std::string dataset = store::store_identity(store_path);
            const auto ledger_kept = store::open_budget_ledger(store_path, a->ledger);
            privacy::BudgetLedger& ledger = *ledger_kept;
            if (*which == "budget") {
              if (a->set >= 0) {
                ledger.set_budget(dataset, a->query.analyst, a->set);
                audit_if_keys("dp.budget", {{"dataset", dataset}, {"analyst", a->query.analyst}, {"budget", a->set}}, "", store_path);
              }
              const nlohmann::json j = {{"dataset", dataset}, {"analyst", a->query.analyst}, {"budget", ledger.budget(dataset, a->query.analyst)},
                                        {"spent", ledger.spent(dataset, a->query.analyst)}};
              if (common.json) print_json(j);
              else fmt::print("{} on {}: budget {:.4g}, spent {:.4g}\n", a->query.analyst, dataset, j["budget"].get<double>(), j["spent"].get<double>());
              return 0;
            }
            auto store = open_existing_store(store_path);
            pipeline::DpQuery q = a->query;
            q.statistic = *which;
            nlohmann::json j;
            try {
              j = pipeline::run_dp_query(*store, dataset, ledger, q);
            } catch (const privacy::BudgetExhausted& e) {
              throw Error(e.what(), {}, "ask for a larger budget (persona dp budget --set) or use less epsilon");
            }
            audit_if_keys("dp." + *which, {{"dataset", dataset}, {"analyst", a->query.analyst}, {"epsilon", a->query.epsilon}}, "",
                          store_path);
            if (common.json) print_json(j);
            else fmt::print("{}\n", j.dump(2));
            return 0;
          }};
}

Command add_redact(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("redact", "Personal data in text (emails, phones, CN ids, cards, IPs): redact lines, or --eval a labelled set");
  auto texts = std::make_shared<std::vector<std::string>>();
  auto eval = std::make_shared<std::string>();
  sub->add_option("text", *texts, "Texts (default: one per line on stdin)");
  sub->add_option("--eval", *eval, "A labelled JSON Lines set ({\"text\", \"pii\": [{\"kind\", \"value\"}]}): precision and recall");
  return {sub, [texts, eval, &common] {
            if (!eval->empty()) {
              const auto e = privacy::evaluate_pii(*eval);
              if (common.json) print_json(e.to_json());
              else fmt::print("{} cases: precision {:.4f}, recall {:.4f} ({} false positives, {} missed)\n", e.cases,
                              e.precision(), e.recall(), e.false_positives(), e.missed());
              return 0;
            }
            auto one = [&](const std::string& raw) {
              const std::string text = text::repair_utf8(raw);  // invalid UTF-8 is repaired, not fatal
              if (common.json) {
                nlohmann::json found = nlohmann::json::array();
                for (const auto& f : privacy::find_pii(text))
                  found.push_back({{"kind", privacy::pii_kind_name(f.kind)}, {"begin", f.begin}, {"end", f.end}});
                fmt::print("{}\n", nlohmann::json{{"redacted", privacy::redact_pii(text)}, {"found", found}}.dump());
              } else {
                fmt::print("{}\n", privacy::redact_pii(text));
              }
            };
            if (!texts->empty()) {
              for (const auto& t : *texts) one(t);
            } else {
              for (std::string line; std::getline(std::cin, line);) one(line);
            }
            return 0;
          }};
}

// The store's users as a table an analyst may study: model fields and what they did, no id (a
// pseudonym would single each row out again) and no free-form attribute; only users who consent
// to analytics. Written to a private temporary file for the anonymiser.
std::string write_user_table(store::Store& store, const std::string& dir) {
  const auto events = store.events();
  struct Activity {
    int64_t orders = 0;
    double spend = 0;
    std::map<std::string, int64_t> categories;
  };
  std::map<std::string, Activity> by_user;
  for (size_t i = 0; i < events.size(); ++i) {
    if (events.type[i] != static_cast<uint8_t>(EventType::Purchase)) continue;
    auto& a = by_user[events.user_ids[static_cast<size_t>(events.user[i])]];
    ++a.orders;
    if (!std::isnan(events.value[i])) a.spend += events.value[i] * events.quantity[i];
    const auto& category = events.item_categories[static_cast<size_t>(events.item[i])];
    ++a.categories[category.substr(0, category.find(" > "))];
  }
  const std::string path = dir + "/users.csv";
  std::ofstream out(path, std::ios::binary);
  out << "age,gender,region,signup_year,orders,spend,top_category\n";
  for (const auto& u : store.users(store::Use::Analytics)) {
    const auto it = by_user.find(u.id);
    const Activity none;
    const Activity& a = it == by_user.end() ? none : it->second;
    std::string top;
    int64_t best = 0;
    for (const auto& [c, n] : a.categories)
      if (n > best) best = n, top = c;
    out << (u.age ? std::to_string(*u.age) : "") << ',' << io::csv_field(u.gender) << ',' << io::csv_field(u.region) << ','
        << (u.signup_time ? format_timestamp(*u.signup_time).substr(0, 4) : "") << ',' << a.orders << ','
        << fmt::format("{:.2f}", a.spend) << ',' << io::csv_field(top) << '\n';
  }
  if (!out) throw Error("cannot write the user table", {path});
  return path;
}

Command add_export(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("export", "Anonymised exports from the store");
  sub->require_subcommand(1);
  auto* users = sub->add_subcommand(
      "users", "The users (age, gender, region, signup year, orders, spend, top category) as a k-anonymous release");
  users->fallthrough();
  struct Args {
    std::string store, config;
    AnonymizeArgs anonymize;
  };
  auto a = std::make_shared<Args>();
  a->anonymize.qi = {"age", "gender", "region"};
  a->anonymize.numeric = {"age"};
  users->add_option("-s,--store", a->store, "Store: a file, or a postgresql:// URL");
  users->add_option("-c,--config", a->config, "Config file (for its store path)");
  users->add_option("-k,--k-anonymity", a->anonymize.k, "Every released class has at least k rows")->check(CLI::Range(1, 1000000));
  users->add_option("--qi", a->anonymize.qi, "Quasi-identifiers (default age,gender,region)")->delimiter(',');
  users->add_option("--numeric", a->anonymize.numeric, "Numeric ones (default age)")->delimiter(',');
  users->add_option("--hierarchy", a->anonymize.hierarchies, "COLUMN=FILE: a generalisation hierarchy (repeatable)");
  users->add_option("--suppress", a->anonymize.suppress, "Rows that may be withheld");
  users->add_option("--sensitive", a->anonymize.sensitive, "A sensitive column for l-diversity (e.g. top_category)");
  users->add_option("-l,--l-diversity", a->anonymize.l, "Distinct sensitive values every class keeps")->check(CLI::Range(1, 1000));
  users->add_option("-o,--out", a->anonymize.out, "The release (CSV)")->required();
  return {sub, [a, &common] {
            auto store = open_existing_store(store_path_from(a->store, a->config));
            char dir_template[] = "/tmp/persona-export-XXXXXX";
            const char* dir = ::mkdtemp(dir_template);  // mode 0700: the table is not anonymous yet
            if (!dir) throw Error(fmt::format("cannot make a temporary directory: {}", std::strerror(errno)));
            AnonymizeArgs args = a->anonymize;
            int rc = 0;
            try {
              args.file = write_user_table(*store, dir);
              args.shown_as = "the store's user table";
              rc = run_anonymize(&args, common);
            } catch (...) {
              std::filesystem::remove_all(dir);
              throw;
            }
            std::filesystem::remove_all(dir);
            audit_if_keys("export", {{"what", "users, k-anonymous"}, {"k", args.k}, {"path", args.out}}, "", store_path_from(a->store, a->config));
            return rc;
          }};
}

Command add_erase(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand(
      "erase", "The right to be forgotten: a user's data out of the store, reject log, exports, API keys and models");
  struct Args {
    std::string user, store, config, models, key_file, api_keys, reject_log;
    bool no_retrain = false;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("user", a->user, "External user id")->required();
  sub->add_option("-s,--store", a->store, "Store: a file, or a postgresql:// URL");
  sub->add_option("-c,--config", a->config, "Config file (its store and reject log)");
  sub->add_option("--models", a->models, "Model directory (default $PERSONA_MODELS or ./models)");
  sub->add_option("--reject-log", a->reject_log,
                  "A reject log to search besides the ones the store's ingests wrote (default the config's, or <store>.rejects.jsonl)");
  sub->add_option("--key-file", a->key_file, "Key file (default $PERSONA_KEY_FILE, PERSONA_MASTER_KEY or ./persona.key)");
  sub->add_option("--api-keys", a->api_keys,
                  "API key file (default $PERSONA_API_KEYS, the database of a PostgreSQL store, or ./persona-api-keys.json)");
  sub->add_flag("--no-retrain", a->no_retrain, "Remove a recommender that knows the user instead of retraining it");
  return {sub, [a, &common] {
            const std::string store_path = store_path_from(a->store, a->config);
            std::string reject_log = a->reject_log;
            if (reject_log.empty())
              reject_log = a->config.empty() ? store::local_base(store_path) + ".rejects.jsonl" : pipeline::load_config(a->config).reject_log_path();
            const auto keys = privacy::KeyRing::discover(a->key_file);
            auto store = open_existing_store(store_path, a->key_file);
            pipeline::ErasureOptions options;
            options.reject_log = reject_log;
            options.models_dir = demand::models_dir_from(a->models);
            options.keys = keys ? &*keys : nullptr;
            options.api_keys = a->api_keys;  // "": the store's (its database's on PostgreSQL, else the default file)
            options.store_location = store_path;
            options.retrain = !a->no_retrain;
            const auto report = pipeline::erase_user(*store, a->user, options);
            if (common.json) {
              print_json(report.to_json());
            } else if (!common.quiet) {
              if (!report.found) fmt::print("the store does not know this user; files were still searched\n");
              fmt::print("erased: {} events, {} texts, {} profiles, {} reject rows, {} API keys\n", report.events, report.texts,
                         report.profiles, report.rejects, report.api_keys);
              for (const auto& f : report.files_rewritten) fmt::print("rewritten without them: {}\n", f);
              for (const auto& f : report.models_retrained) fmt::print("retrained without them: {}\n", f);
              for (const auto& f : report.models_removed) fmt::print("removed (it knew them; train it again): {}\n", f);
              if (report.receipt.empty()) fmt::print("no key at hand: no receipt in the audit log\n");
              else fmt::print("receipt {} in the audit log\n", report.receipt);
            }
            // An erasure that did not finish says exactly what is left, and fails.
            for (const auto& f : report.failures)
              fmt::print(stderr, "persona: erasure step \"{}\" did not finish{}: {}\n", f.step,
                         f.target.empty() ? "" : fmt::format(" ({})", f.target), f.error);
            return report.complete() ? 0 : 1;
          }};
}

}  // namespace persona::cli
