// persona profile build | update | show | export | schema, and persona segments.
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>

#include <fmt/format.h>

#include "commands.h"
#include "persona/privacy/audit.h"
#include "persona/privacy/crypto.h"
#include "persona/core/error.h"
#include "persona/core/time.h"
#include "persona/demand/text_analysis.h"
#include "persona/store/pg_shared.h"
#include "persona/pipeline/erasure.h"
#include "persona/pipeline/profiles.h"

namespace persona::cli {
namespace {

struct ProfileArgs {
  std::string store, config, models, as_of, user, out, format = "jsonl", preset, file, key_file;
  bool pseudonyms = false, real_ids = false;
  int k = -1;
};

pipeline::ProfileConfig profile_config(const ProfileArgs& a) {
  pipeline::ProfileConfig c = a.config.empty() ? pipeline::ProfileConfig{} : pipeline::load_config(a.config).profile;
  if (a.k >= 0) c.segments.k = a.k;
  return c;
}

std::string percent(double share) { return fmt::format("{:.0f}%", share * 100); }

std::string shares(const std::vector<profile::Share>& v, bool as_percent = true) {
  std::string s;
  for (const auto& x : v)
    s += fmt::format("{}{} {}", s.empty() ? "" : " · ", x.name, as_percent ? percent(x.share) : fmt::format("{:.2f}", x.share));
  return s.empty() ? "-" : s;
}

template <typename T>
std::string maybe(const std::optional<T>& v, const char* format) {
  return v ? fmt::format(fmt::runtime(format), *v) : std::string("-");
}

void print_profile(const profile::UserProfile& p, const std::optional<profile::SegmentModel>& segments) {
  static const char* days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  fmt::print("User {}   as of {}\n", p.user, format_date(p.as_of));
  if (p.recency_days)
    fmt::print("  RFM           last purchase {} days ago · {} invoices · {:.2f} spent · R{} F{} M{} · {}\n", *p.recency_days,
               p.frequency, p.monetary, p.r_score, p.f_score, p.m_score, p.rfm_segment);
  else
    fmt::print("  RFM           no purchases\n");
  fmt::print("  Levels        monetary {} · frequency {} · activity {}\n", p.monetary_level.empty() ? "-" : p.monetary_level,
             p.frequency_level.empty() ? "-" : p.frequency_level, p.activity_level);
  fmt::print("  Activity      tenure {} days · {} events on {} days ({} in the last 30 days)", p.tenure_days, p.events,
             p.active_days, p.events_30d);
  if (p.peak_hour >= 0)
    fmt::print(" · peaks at {:02}:00 UTC and on {} · weekend {}", p.peak_hour, days[p.peak_weekday], percent(p.weekend_share));
  fmt::print("\n");
  fmt::print("  Categories    {}\n", shares(p.categories));
  fmt::print("  Brands        {}\n", shares(p.brands));
  fmt::print("  Price bands   {} · price sensitivity {}\n", shares(p.price_bands), maybe(p.price_sensitivity, "{:.2f}"));
  fmt::print("  Funnel        {} views → {} carts → {} purchases · cart rate {} · purchase rate {} · return rate {}\n",
             p.views, p.carts, p.purchases, maybe(p.cart_rate, "{:.2f}"), maybe(p.purchase_rate, "{:.2f}"),
             maybe(p.return_rate, "{:.2f}"));
  fmt::print("  Texts         {} reviews · sentiment {} · keywords {} · demand {}\n", p.reviews, maybe(p.sentiment, "{:.2f}"),
             shares(p.keywords, false), shares(p.demand));
  fmt::print("  Propensity    {}\n", maybe(p.propensity, "{:.3f}"));
  std::string tags;
  for (const auto& t : p.tags) tags += (tags.empty() ? "" : ", ") + t;
  fmt::print("  Tags          {}\n", tags.empty() ? "-" : tags);
  std::string label;
  if (segments && p.segment >= 0 && static_cast<size_t>(p.segment) < segments->segments.size())
    label = " (" + segments->segments[static_cast<size_t>(p.segment)].label + ")";
  fmt::print("  Segment       {}{}\n", p.segment, label);
}

}  // namespace

void print_profile_report(const pipeline::ProfileRunReport& r) {
  fmt::print("{} profiles: {} users ({} recomputed, {} written) from {} events and {} texts as of {} in {:.2f} s "
             "({:.0f} events/s)\n",
             r.mode, r.users, r.updated_users, r.written, r.events, r.texts, format_date(r.as_of), r.seconds,
             r.seconds > 0 ? static_cast<double>(r.events) / r.seconds : 0.0);
  if (r.events_after_as_of)
    fmt::print("  {} events on or after as_of left out (they happen after the time the profiles describe)\n",
               r.events_after_as_of);
  for (const auto& m : r.models) fmt::print("  model: {}\n", m);
  if (r.models.empty()) fmt::print("  no demand models found: sentiment, demand categories and propensity come only from stored values\n");
}

void print_segments(const profile::SegmentModel& m) {
  fmt::print("{} segments (silhouette {:.3f})\n", m.segments.size(), m.silhouette);
  fmt::print("{:>3} {:>7} {:>6}  {:<40} {:>8} {:>6} {:>10}  {}\n", "id", "users", "share", "label", "recency", "freq",
             "monetary", "top categories · tags");
  auto num = [](const nlohmann::json& v, const char* f) {
    return v.is_null() ? std::string("-") : fmt::format(fmt::runtime(f), v.get<double>());
  };
  for (const auto& s : m.segments)
    fmt::print("{:>3} {:>7} {:>6}  {:<40} {:>8} {:>6} {:>10}  {} · {}\n", s.id, s.size, percent(s.share), s.label,
               num(s.centroid.value("recency_days", nlohmann::json()), "{:.0f}"),
               num(s.centroid.value("frequency", nlohmann::json()), "{:.0f}"),
               num(s.centroid.value("monetary", nlohmann::json()), "{:.2f}"), shares(s.top_categories), shares(s.tags));
}

Command add_profile(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("profile", "User profiles: build, update, show, export, schema");
  sub->require_subcommand(1);
  auto args = std::make_shared<ProfileArgs>();
  auto store_options = [&](CLI::App* s) {
    s->add_option("-s,--store", args->store, "Store: a file, or a postgresql:// URL");
    s->add_option("-c,--config", args->config, "Config file (store path, [profile] and [[tag]] settings)");
  };
  auto* build = sub->add_subcommand("build", "Compute every user's profile, tags and segments into the store");
  build->fallthrough();
  store_options(build);
  build->add_option("--models", args->models, "Model directory (default $PERSONA_MODELS or ./models)");
  build->add_option("--as-of", args->as_of, "Date the time-relative features refer to (default: after the last event)");
  build->add_option("--segments", args->k, "Number of segments (default: chosen by silhouette)")->check(CLI::Range(1, 100));
  auto* update = sub->add_subcommand("update", "Recompute only the users with events or texts added since the last build");
  update->fallthrough();
  store_options(update);
  update->add_option("--models", args->models, "Model directory");
  auto* show = sub->add_subcommand("show", "Print one user's profile");
  show->fallthrough();
  store_options(show);
  show->add_option("user", args->user, "User id")->required();
  auto* exp = sub->add_subcommand("export", "Write every profile as CSV or JSON Lines");
  exp->fallthrough();
  store_options(exp);
  exp->add_option("-o,--out", args->out, "Output file (default: stdout)");
  exp->add_option("--format", args->format, "jsonl or csv")->check(CLI::IsMember({"jsonl", "csv"}));
  exp->add_flag("--pseudonyms", args->pseudonyms,
                "User ids as keyed pseudonyms (the default whenever a key is at hand; with this flag, an error without one)");
  exp->add_flag("--real-ids", args->real_ids, "Real user ids (recorded in the audit log)")->excludes("--pseudonyms");
  exp->add_option("--key-file", args->key_file, "Key file (default $PERSONA_KEY_FILE, PERSONA_MASTER_KEY or ./persona.key)");
  auto* schema = sub->add_subcommand("schema", "The profile's features: name, type, unit, description");
  schema->fallthrough();
  auto* rfm = sub->add_subcommand("rfm", "RFM table straight from files (read, clean, score; no store): task R2");
  rfm->fallthrough();
  rfm->add_option("file", args->file, "A data file (with --preset)");
  rfm->add_option("-p,--preset", args->preset, "How to read the file (see `persona presets`)");
  rfm->add_option("-c,--config", args->config, "Config file whose sources to read");
  rfm->add_option("--as-of", args->as_of, "Reference date (default: midnight after the last event)");
  rfm->add_option("-o,--out", args->out, "Output CSV (default: stdout)");
  return {sub, [=, &common] {
            if (schema->parsed()) {
              if (common.json) {
                print_json(profile::feature_schema_json());
                return 0;
              }
              for (const auto& f : profile::feature_schema())
                fmt::print("{:<18} {:<8} {:<14} {}\n", f.name, f.type, f.unit, f.description);
              return 0;
            }
            if (rfm->parsed()) {
              pipeline::Config c;
              if (!args->config.empty()) c = pipeline::load_config(args->config);
              if (!args->file.empty()) {
                if (args->preset.empty()) throw Error("a file needs --preset", {args->file}, "see `persona presets`");
                c.sources = {pipeline::preset_source(args->preset, args->file)};
              }
              if (c.sources.empty()) throw Error("nothing to read", {}, "give FILE --preset NAME, or --config");
              const auto as_of = args->as_of.empty() ? std::nullopt : std::optional(parse_date(args->as_of, "--as-of"));
              const auto result = pipeline::profiles_from_sources(c, as_of, !common.quiet);
              std::ofstream file;
              if (!args->out.empty()) {
                file.open(args->out, std::ios::binary);
                if (!file) throw Error("cannot write the RFM table", {args->out});
              }
              pipeline::write_rfm_csv(result.profiles, args->out.empty() ? std::cout : file);
              if (!common.quiet)
                fmt::print(stderr, "{} users from {} of {} rows in {:.2f} s\n", result.profiles.size(), result.rows_kept,
                           result.rows_read, result.seconds);
              return 0;
            }
            auto store = open_existing_store(store_path_from(args->store, args->config), args->key_file);
            const auto config = profile_config(*args);
            if (build->parsed() || update->parsed()) {
              const auto models = demand::models_dir_from(args->models);
              const auto report = build->parsed()
                                      ? pipeline::build_profiles(*store, config, models,
                                                                 args->as_of.empty() ? std::nullopt
                                                                                     : std::optional(parse_date(args->as_of, "--as-of")))
                                      : pipeline::update_profiles(*store, config, models);
              if (common.json) {
                print_json(report.to_json());
              } else {
                print_profile_report(report);
                if (report.mode != "update")
                  if (const auto seg = pipeline::load_segments(*store)) print_segments(*seg);
              }
              return 0;
            }
            if (show->parsed()) {
              const auto json = store->profile(args->user);
              if (!json)
                throw Error(fmt::format("no profile for user {}", quote_value(args->user)), {},
                            "check the id, or run `persona profile build` after ingesting the user's events");
              const auto p = profile::UserProfile::from_json(nlohmann::json::parse(*json));
              if (common.json) print_json(p.to_json());
              else print_profile(p, pipeline::load_segments(*store));
              return 0;
            }
            std::ofstream file;
            if (!args->out.empty()) {
              file.open(args->out, std::ios::binary);
              if (!file) throw Error("cannot write the export", {args->out});
            }
            // Exports carry pseudonyms; real ids only when asked for, and then on the record.
            std::function<std::string(const std::string&)> rename;
            std::optional<privacy::KeyRing> keys =
                args->pseudonyms ? privacy::KeyRing::resolve(args->key_file) : privacy::KeyRing::discover(args->key_file);
            if (!args->real_ids) {
              if (!keys)
                throw Error("exports carry pseudonymous user ids, and no key is at hand to make them", {},
                            "make one with `persona keys init`, or give --real-ids to export real ids");
              rename = [&keys](const std::string& id) { return privacy::pseudonym(*keys, id); };
            }
            const size_t n = pipeline::export_profiles(*store, args->format, args->out.empty() ? std::cout : file, rename);
            const nlohmann::json details = {{"what", "profiles"}, {"path", args->out.empty() ? "-" : args->out},
                                            {"users", n}, {"ids", args->real_ids ? "real" : "pseudonyms"}};
            if (keys) store::open_audit_log(store_path_from(args->store, args->config), *keys).append("cli", "export", details);
            if (!args->out.empty()) pipeline::register_export(*store, args->out, details);
            if (!args->out.empty() && !common.quiet) fmt::print(stderr, "wrote {} profiles to {}\n", n, args->out);
            return 0;
          }};
}

Command add_segments(CLI::App& app, Common& common) {
  auto* sub = app.add_subcommand("segments", "The learned segments and the RFM segments of the stored profiles");
  auto args = std::make_shared<ProfileArgs>();
  sub->add_option("-s,--store", args->store, "Store: a file, or a postgresql:// URL");
  sub->add_option("-c,--config", args->config, "Config file (for its store path)");
  return {sub, [args, &common] {
            auto store = open_existing_store(store_path_from(args->store, args->config));
            const auto seg = pipeline::load_segments(*store);
            if (!seg) throw Error("no segments in the store yet", {}, "run `persona profile build` first");
            std::map<std::string, size_t> rfm;
            size_t users = 0;
            for (const auto& p : pipeline::load_profiles(*store)) {
              ++rfm[p.rfm_segment];
              ++users;
            }
            if (common.json) {
              nlohmann::json j = seg->to_json();
              j["rfm_segments"] = rfm;
              j["users"] = users;
              print_json(j);
              return 0;
            }
            print_segments(*seg);
            fmt::print("\nRFM segments\n");
            std::vector<std::pair<std::string, size_t>> sorted(rfm.begin(), rfm.end());
            std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
            for (const auto& [name, n] : sorted)
              fmt::print("  {:<20} {:>7} {:>6}\n", name, n, percent(users ? static_cast<double>(n) / static_cast<double>(users) : 0));
            return 0;
          }};
}

}  // namespace persona::cli
