#include "persona/pipeline/profiles.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

#include "persona/core/error.h"
#include "persona/demand/propensity.h"
#include "persona/demand/text_analysis.h"
#include "persona/io/csv_reader.h"
#include "persona/ml/tabular.h"
#include "persona/ml/text_classifier.h"
#include "persona/pipeline/run.h"

namespace persona::pipeline {
namespace {

constexpr const char* kBuildMeta = "profile.build";
constexpr const char* kSegmentsMeta = "profile.segments";

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The demand models found in the models directory, as the scorers the builder takes. They live
// in this struct so the scorers' references stay valid while the builder runs.
struct DemandModels {
  std::optional<ml::TextClassifier> sentiment, category;
  int positive = -1;
  std::optional<text::KeywordIndex> keywords;
  std::unordered_map<std::string, double> propensity;
  bool has_propensity = false;
  std::vector<std::string> used;

  void load(const std::string& dir) {
    namespace fs = std::filesystem;
    if (dir.empty()) return;
    auto path = demand::model_path(dir, demand::TextTask::Sentiment);
    if (fs::exists(path)) {
      sentiment = ml::TextClassifier::load(path);
      for (size_t i = 0; i < sentiment->labels().size(); ++i)
        for (const char* name : {"positive", "pos", "1", "正面"})
          if (sentiment->labels()[i] == name) positive = static_cast<int>(i);
      if (positive < 0) sentiment.reset();  // no positive class to score by
      else used.push_back(path);
    }
    path = demand::model_path(dir, demand::TextTask::Category);
    if (fs::exists(path)) {
      category = ml::TextClassifier::load(path);
      used.push_back(path);
    }
    path = demand::keyword_index_path(dir);
    if (fs::exists(path)) {
      keywords = demand::load_keyword_index(path);
      used.push_back(path);
    }
  }

  // Without a trained keyword index, the store's own texts give the document frequencies, so
  // that a user's keywords are the words that set their texts apart.
  void ensure_keyword_index(store::Store& store) {
    if (keywords) return;
    keywords.emplace();
    store.for_each_text([&](const Text& t) { keywords->add_document(t.body); });
  }

  // Propensity of the users in `events` at `as_of`, when a model is present.
  void score_propensity(const std::string& dir, const store::EventColumns& events, int64_t as_of) {
    const auto path = (std::filesystem::path(dir) / "propensity.model").string();
    if (dir.empty() || !std::filesystem::exists(path)) return;
    const auto loaded = ml::load_tabular_model(path, demand::propensity_features());
    const auto set = demand::propensity_set(events, as_of, loaded.metrics.value("horizon_days", 90),
                                            loaded.metrics.value("home_region", ""));
    const auto p = loaded.model->predict_positive(set.data.x);
    for (size_t i = 0; i < set.users.size(); ++i) propensity[events.user_ids[static_cast<size_t>(set.users[i])]] = p[i];
    has_propensity = true;
    if (std::find(used.begin(), used.end(), path) == used.end()) used.push_back(path);
  }

  profile::ModelScorers scorers() const {
    profile::ModelScorers s;
    if (sentiment)
      s.sentiment = [this](std::string_view text) -> std::optional<double> {
        return sentiment->predict(text).probabilities[static_cast<size_t>(positive)];
      };
    if (category)
      s.category = [this](std::string_view text) {
        const auto p = category->predict(text);
        return p.label < 0 ? std::string() : category->label_name(p.label);
      };
    if (has_propensity)
      s.propensity = [this](const std::string& user) -> std::optional<double> {
        const auto it = propensity.find(user);
        return it == propensity.end() ? std::nullopt : std::optional<double>(it->second);
      };
    if (keywords) s.keyword_index = &*keywords;
    return s;
  }
};

// An erasure committed after the profiles' data was read: they may hold the erased person.
struct ErasedMeanwhile {};

// Throws ErasedMeanwhile, writing nothing, when the store's erasure count is no longer `erasures_before`.
void write_profiles(store::Store& store, const std::vector<profile::UserProfile>& profiles, bool replace_all,
                    int64_t erasures_before) {
  std::vector<std::pair<std::string, std::string>> rows;
  rows.reserve(profiles.size());
  for (const auto& p : profiles) rows.emplace_back(p.user, p.to_json().dump());
  if (!store.put_profiles(rows, replace_all, erasures_before)) throw ErasedMeanwhile{};
}

// Runs `compute` (which reads the data, then writes profiles) until no erasure commits during
// it. Erasures are rare; one after another for this long means something is wrong.
template <typename Compute>
ProfileRunReport until_no_erasure_meanwhile(store::Store& store, Compute&& compute) {
  constexpr int kAttempts = 20;
  for (int attempt = 1;; ++attempt) {
    try {
      return compute(store.erasure_count());
    } catch (const ErasedMeanwhile&) {
      if (attempt == kAttempts)
        throw Error(fmt::format("profiles were computed {} times and an erasure committed during each", kAttempts), {},
                    "run it again when erasures have stopped");
    }
  }
}

// Consent is read again inside the writes: someone who withdrew it while the profiles were
// computed (beside ingest) gets none; their older profile goes at the next refresh (a rebuild).
void guarded(const ProfileWriteGuard& guard, const std::function<void()>& write) {
  if (guard) guard(write);
  else write();
}

std::function<void(const std::function<void(const Text&)>&)> texts_of(store::Store& store, const std::set<std::string>* only,
                                                                       size_t* count) {
  return [&store, only, count](const std::function<void(const Text&)>& fn) {
    store.for_each_text(store::Use::Personalisation, [&](const Text& t) {
      if (only && !only->count(t.user)) return;
      ++*count;
      fn(t);
    });
  };
}

std::set<std::string> refusing(store::Store& store, store::Use use) {
  const auto users = store.users_refusing(use);
  return {users.begin(), users.end()};
}

// Profiles exist only for users who consent to personalisation; segments are fitted only on
// those who also consent to analytics (the others are assigned to the nearest one).
std::vector<profile::UserProfile> consenting_profiles(std::vector<profile::UserProfile> profiles,
                                                      const std::set<std::string>& refusing_personalisation) {
  profiles.erase(std::remove_if(profiles.begin(), profiles.end(),
                                [&](const profile::UserProfile& p) { return refusing_personalisation.count(p.user) > 0; }),
                 profiles.end());
  return profiles;
}

profile::SegmentModel fit_segments(store::Store& store, std::vector<profile::UserProfile>& profiles,
                                   const profile::SegmentOptions& options) {
  const auto out = refusing(store, store::Use::Analytics);
  const auto mid = std::stable_partition(profiles.begin(), profiles.end(),
                                         [&](const profile::UserProfile& p) { return out.count(p.user) == 0; });
  std::vector<profile::UserProfile> outside(std::make_move_iterator(mid), std::make_move_iterator(profiles.end()));
  profiles.erase(mid, profiles.end());
  auto segments = profile::segment_profiles(profiles, options);
  for (auto& p : outside) {
    p.segment = segments.assign(p);
    profiles.push_back(std::move(p));
  }
  return segments;
}

}  // namespace

nlohmann::json ProfileRunReport::to_json() const {
  return {{"mode", mode}, {"as_of", format_timestamp(as_of)}, {"users", users}, {"events", events}, {"texts", texts},
          {"updated_users", updated_users}, {"written", written}, {"events_after_as_of", events_after_as_of},
          {"seconds", seconds},
          {"events_per_s", seconds > 0 ? static_cast<double>(events) / seconds : 0.0}, {"models", models},
          {"segments", segments}};
}

namespace {

ProfileRunReport build_once(store::Store& store, const ProfileConfig& config, const std::string& models_dir,
                            std::optional<int64_t> as_of, const ProfileWriteGuard& guard, int64_t erasures_before) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto rules = profile::compile_tag_rules(config.tags);
  const auto mark = store.change_mark();
  const auto events = store.events(store::Use::Personalisation);
  ProfileRunReport report;
  report.mode = "build";
  report.as_of = as_of.value_or(profile::default_as_of(events));
  DemandModels models;
  models.load(models_dir);
  models.score_propensity(models_dir, events, report.as_of);
  models.ensure_keyword_index(store);
  profile::ProfileBuilder builder(profile::Catalogue::from_events(events), config.options, models.scorers());
  report.events_after_as_of = builder.apply_store(events, texts_of(store, nullptr, &report.texts), report.as_of);
  auto profiles = consenting_profiles(builder.profiles(report.as_of), refusing(store, store::Use::Personalisation));
  profile::apply_tags(rules, profiles);
  const auto segments = fit_segments(store, profiles, config.segments);
  guarded(guard, [&] {
    write_profiles(store, consenting_profiles(profiles, refusing(store, store::Use::Personalisation)), true, erasures_before);
    store.put_meta(kBuildMeta, {{"as_of", report.as_of}, {"as_of_given", as_of.has_value()}, {"mark", mark.to_json()},
                                {"options", config.options.to_json()}, {"catalogue", builder.catalogue().to_json()}});
    store.put_meta(kSegmentsMeta, segments.to_json());
  });
  report.users = profiles.size();
  report.updated_users = profiles.size();
  report.written = profiles.size();
  report.events = events.size();
  report.models = models.used;
  report.segments = segments.to_json();
  report.seconds = seconds_since(t0);
  return report;
}

ProfileRunReport update_once(store::Store& store, const ProfileConfig& config, const std::string& models_dir,
                             const ProfileWriteGuard& guard, int64_t erasures_before) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto meta = store.get_meta(kBuildMeta);
  const auto seg_meta = store.get_meta(kSegmentsMeta);
  if (!meta || !seg_meta) throw Error("no profiles in the store yet", {}, "run `persona profile build` first");
  const auto since = store::ChangeMark::from_json(meta->at("mark"));
  const auto mark = store.change_mark();
  const auto no_personalisation = refusing(store, store::Use::Personalisation);
  auto changed = store.users_changed_since(since);
  changed.erase(std::remove_if(changed.begin(), changed.end(),
                               [&](const std::string& u) { return no_personalisation.count(u) > 0; }),
                changed.end());
  // Someone withdrew consent since: their profile goes, which only a rebuild does.
  bool withdrawn = false;
  store.for_each_profile([&](const std::string& user, const std::string&) {
    withdrawn = withdrawn || no_personalisation.count(user) > 0;
  });
  if (withdrawn) {
    auto r = build_once(store, config, models_dir, std::nullopt, guard, erasures_before);
    r.mode = "rebuild";
    return r;
  }
  const int64_t as_of = meta->at("as_of").get<int64_t>();
  const auto events = store.events_of(changed);
  // A new event on or after as_of moves it: every time-relative feature changes.
  if (!meta->value("as_of_given", false) && events.size() > 0 &&
      *std::max_element(events.timestamp.begin(), events.timestamp.end()) >= as_of) {
    auto r = build_once(store, config, models_dir, std::nullopt, guard, erasures_before);
    r.mode = "rebuild";
    return r;
  }
  const auto rules = profile::compile_tag_rules(config.tags);
  ProfileRunReport report;
  report.mode = "update";
  report.as_of = as_of;
  DemandModels models;
  models.load(models_dir);
  models.score_propensity(models_dir, events, as_of);
  const std::set<std::string> only(changed.begin(), changed.end());
  models.ensure_keyword_index(store);
  profile::ProfileBuilder builder(profile::Catalogue::from_json(meta->at("catalogue")), config.options, models.scorers());
  report.events_after_as_of = builder.apply_store(events, texts_of(store, &only, &report.texts), as_of);
  // The builder holds every user of the store; only the changed ones have data in it.
  std::map<std::string, profile::UserProfile> fresh;
  for (auto& p : builder.profiles(as_of))
    if (only.count(p.user)) fresh.emplace(p.user, std::move(p));

  auto profiles = load_profiles(store);
  std::map<std::string, std::string> before;
  for (auto& p : profiles) {
    before[p.user] = p.to_json().dump();
    if (auto it = fresh.find(p.user); it != fresh.end()) {
      p = std::move(it->second);
      fresh.erase(it);
    }
  }
  for (auto& [user, p] : fresh) profiles.push_back(std::move(p));  // users new since the build
  profile::rank_profiles(profiles);
  profile::apply_tags(rules, profiles);
  const auto segments = profile::SegmentModel::from_json(*seg_meta);
  std::vector<profile::UserProfile> changed_profiles;
  for (auto& p : profiles) {
    if (only.count(p.user)) p.segment = segments.assign(p);
    const auto it = before.find(p.user);
    if (it == before.end() || it->second != p.to_json().dump()) changed_profiles.push_back(p);
  }
  guarded(guard, [&] {
    write_profiles(store, consenting_profiles(changed_profiles, refusing(store, store::Use::Personalisation)), false,
                   erasures_before);
    auto updated = *meta;
    updated["mark"] = mark.to_json();
    store.put_meta(kBuildMeta, updated);
  });
  report.users = profiles.size();
  report.updated_users = changed.size();
  report.written = changed_profiles.size();
  report.events = events.size();
  report.models = models.used;
  report.seconds = seconds_since(t0);
  return report;
}

}  // namespace

ProfileRunReport build_profiles(store::Store& store, const ProfileConfig& config, const std::string& models_dir,
                                std::optional<int64_t> as_of, const ProfileWriteGuard& guard) {
  return until_no_erasure_meanwhile(store, [&](int64_t erasures_before) {
    return build_once(store, config, models_dir, as_of, guard, erasures_before);
  });
}

ProfileRunReport update_profiles(store::Store& store, const ProfileConfig& config, const std::string& models_dir,
                                 const ProfileWriteGuard& guard) {
  return until_no_erasure_meanwhile(store, [&](int64_t erasures_before) {
    return update_once(store, config, models_dir, guard, erasures_before);
  });
}

std::vector<profile::UserProfile> load_profiles(store::Store& store) {
  std::vector<profile::UserProfile> out;
  store.for_each_profile([&](const std::string&, const std::string& json) {
    out.push_back(profile::UserProfile::from_json(nlohmann::json::parse(json)));
  });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return profile::user_id_less(a.user, b.user); });
  return out;
}

SegmentsByUser stored_segments(store::Store& store) {
  SegmentsByUser out;
  store.for_each_profile([&](const std::string& user, const std::string& json) {
    const auto segment = nlohmann::json::parse(json).value("segment", -1);
    if (segment >= 0) out.emplace(user, segment);
  });
  return out;
}

SegmentsByUser segments_as_of(const store::EventColumns& events, const ProfileConfig& config, int64_t as_of) {
  profile::ProfileBuilder builder(profile::Catalogue::from_events(events), config.options, {});
  builder.apply_store(events, [](const std::function<void(const Text&)>&) {}, as_of);
  auto profiles = builder.profiles(as_of);
  SegmentsByUser out;
  if (profiles.empty()) return out;
  profile::segment_profiles(profiles, config.segments);
  for (const auto& p : profiles)
    if (p.segment >= 0) out.emplace(p.user, p.segment);
  return out;
}

std::optional<profile::SegmentModel> load_segments(store::Store& store) {
  const auto j = store.get_meta(kSegmentsMeta);
  if (!j) return std::nullopt;
  return profile::SegmentModel::from_json(*j);
}

FileProfiles profiles_from_sources(const Config& config, std::optional<int64_t> as_of, bool progress) {
  const auto t0 = std::chrono::steady_clock::now();
  FileProfiles out;
  profile::ProfileOptions options = config.profile.options;
  options.keywords = 0;
  profile::ProfileBuilder builder(profile::Catalogue{}, options);
  RunOptions run;
  run.progress = progress;
  int64_t last = std::numeric_limits<int64_t>::min();
  for (const auto& source : config.sources) {
    // The event's fields straight from the mapped values (no Event copies): this loop is R2's
    // hot path. Slots are looked up once per source.
    struct Slots {
      int user = -1, type = -1, quantity = -1, value = -1, timestamp = -1, session = -1;
    };
    std::optional<Slots> slots;
    auto on_row = [&](const io::Record&, std::vector<io::FieldValue>& values, const prep::RowVerdict& verdict,
                      io::Mapper& mapper) {
      if (!verdict.kept || !mapper.has(Entity::Event)) return;
      if (!slots) {
        const auto at = [&](const char* name) { return mapper.slot(Entity::Event, name); };
        slots = Slots{at("user"), at("type"), at("quantity"), at("value"), at("timestamp"), at("session")};
      }
      const auto get = [&](int slot) -> const io::FieldValue* {
        return slot >= 0 && values[static_cast<size_t>(slot)].present ? &values[static_cast<size_t>(slot)] : nullptr;
      };
      const auto* user = get(slots->user);
      const auto* time = get(slots->timestamp);
      if (!user || !time) return;  // an event needs both; the mapping's rules say so too
      profile::ProfileEvent pe;
      pe.user = user->text;
      pe.item = -1;  // a file has no catalogue to compare with: RFM, activity and funnel only
      if (const auto* v = get(slots->type)) pe.type = static_cast<EventType>(v->code);
      if (const auto* v = get(slots->quantity)) pe.quantity = v->number;
      const auto* value = get(slots->value);
      pe.value = value ? value->number : std::numeric_limits<double>::quiet_NaN();
      pe.timestamp = time->time;
      if (const auto* v = get(slots->session)) pe.session = v->text;
      last = std::max(last, pe.timestamp);
      builder.apply(pe);
    };
    const auto report = run_source(source, config.rules_for(source), on_row, run);
    out.rows_read += report.summary.rows_read;
    out.rows_kept += report.summary.rows_kept;
  }
  if (!as_of) as_of = last == std::numeric_limits<int64_t>::min() ? 0 : profile::midnight_after(last);
  out.profiles = builder.profiles(*as_of);
  out.seconds = seconds_since(t0);
  return out;
}

void write_rfm_csv(const std::vector<profile::UserProfile>& profiles, std::ostream& out) {
  out << "user,recency_days,frequency,monetary,r_score,f_score,m_score,rfm_segment\n";
  for (const auto& p : profiles)
    if (p.recency_days)
      out << fmt::format("{},{},{},{:.2f},{},{},{},{}\n", io::csv_field(p.user), *p.recency_days, p.frequency, p.monetary, p.r_score,
                         p.f_score, p.m_score, p.rfm_segment);
  if (!out) throw Error("cannot write the RFM table");
}

size_t export_profiles(store::Store& store, const std::string& format, std::ostream& out,
                       const std::function<std::string(const std::string&)>& user_id) {
  if (format != "jsonl" && format != "csv") throw Error(fmt::format("unknown export format \"{}\"", format), {}, "use csv or jsonl");
  size_t n = 0;
  const auto& schema = profile::feature_schema();
  if (format == "csv") {
    for (size_t i = 0; i < schema.size(); ++i) out << (i ? "," : "") << schema[i].name;
    out << '\n';
  }
  // An export is analytics: users who refuse it are left out.
  const auto no_analytics = refusing(store, store::Use::Analytics);
  for (auto p : load_profiles(store)) {
    if (no_analytics.count(p.user)) continue;
    ++n;
    if (user_id) p.user = user_id(p.user);
    if (format == "jsonl") {
      out << p.to_json().dump() << '\n';
      continue;
    }
    for (size_t i = 0; i < schema.size(); ++i) {
      const auto v = schema[i].get(p);
      if (i) out << ',';
      if (const auto* d = std::get_if<double>(&v)) out << fmt::format("{}", *d);
      else if (const auto* s = std::get_if<std::string>(&v)) out << io::csv_field(*s);
    }
    out << '\n';
  }
  if (!out) throw Error("cannot write the profiles");
  return n;
}

}  // namespace persona::pipeline
