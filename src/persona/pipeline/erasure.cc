#include "persona/pipeline/erasure.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/pipeline/profiles.h"
#include "persona/privacy/access.h"
#include "persona/privacy/audit.h"
#include "persona/privacy/crypto.h"
#include "persona/privacy/keys.h"
#include "persona/recommend/recommend_model.h"
#include "persona/store/pg_shared.h"

namespace persona::pipeline {
namespace fs = std::filesystem;
namespace {

constexpr const char* kExportsMeta = "exports";

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read", {path});
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string ascii_lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool contains_any(std::string_view text, const std::vector<std::string>& needles) {
  return std::any_of(needles.begin(), needles.end(),
                     [&](const std::string& n) { return !n.empty() && text.find(n) != std::string_view::npos; });
}

// A sealed export is opened, filtered and sealed again (with the active key); nothing plain is
// left behind: the opened copy lives only in a 0600 temporary that is removed.
size_t scrub_sealed(const std::string& path, const std::vector<std::string>& needles, const privacy::KeyRing* keys) {
  if (!keys) throw Error("a sealed export names the user and no key is at hand to rewrite it", {path}, "give --key-file");
  const std::string plain = path + ".erase-plain";
  const mode_t old_mask = ::umask(077);
  privacy::open_file(*keys, path, plain);
  ::umask(old_mask);
  size_t dropped = 0;
  try {
    dropped = drop_lines_containing(plain, needles);
    if (dropped > 0) {
      const std::string sealed = path + ".erase-sealed";
      privacy::seal_file(*keys, plain, sealed);
      fs::rename(sealed, path);
    }
  } catch (...) {
    fs::remove(plain);
    throw;
  }
  fs::remove(plain);
  return dropped;
}

}  // namespace

std::optional<recommend::RecommendModel> retrain_recommender(store::Store& store, const std::string& path,
                                                             const nlohmann::json& note) {
  const auto old = recommend::RecommendModel::load(path);
  // Another server's erasure may commit while this one trains: then it trains again, so the model
  // every server of a shared store takes never learned from someone erased before it was published.
  for (;;) {
    const int64_t erasures = store.erasure_count();
    const auto events = store.events();
    if (events.size() == 0) {
      fs::remove(path);
      store.withdraw_model(model_name(path));
      return std::nullopt;
    }
    recommend::InteractionOptions options;
    options.before = time_after(events.timestamp.back());
    auto model = recommend::RecommendModel::train(events, options, recommend::MethodSpec::from_json(old.metrics().at("method")),
                                                  2, stored_segments(store));
    nlohmann::json metrics = old.metrics();
    for (const auto& [k, v] : note.items()) metrics[k] = v;
    model.save(path, metrics);
    if (publish_model(store, path, erasures)) return model;
  }
}

std::string model_name(const std::string& path) { return fs::path(path).stem().string(); }

bool publish_model(store::Store& store, const std::string& path, int64_t erasures_before) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read the model to publish it", {path});
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return store.publish_model(model_name(path), bytes, erasures_before);
}

void register_export(store::Store& store, const std::string& path, const nlohmann::json& details) {
  nlohmann::json list = store.get_meta(kExportsMeta).value_or(nlohmann::json::array());
  if (!list.is_array()) list = nlohmann::json::array();
  const std::string absolute = fs::absolute(path).lexically_normal().string();
  list.erase(std::remove_if(list.begin(), list.end(), [&](const nlohmann::json& e) { return e.value("path", "") == absolute; }),
             list.end());
  nlohmann::json entry = details;
  entry["path"] = absolute;
  list.push_back(entry);
  store.put_meta(kExportsMeta, list);
}

std::vector<std::string> registered_exports(store::Store& store) {
  std::vector<std::string> out;
  const auto list = store.get_meta(kExportsMeta).value_or(nlohmann::json::array());
  if (list.is_array())
    for (const auto& e : list) out.push_back(e.value("path", ""));
  return out;
}

bool file_contains_any(const std::string& path, const std::vector<std::string>& needles) {
  return contains_any(read_bytes(path), needles);
}

size_t drop_lines_containing(const std::string& path, const std::vector<std::string>& needles) {
  const std::string bytes = read_bytes(path);
  std::string kept;
  kept.reserve(bytes.size());
  size_t dropped = 0;
  for (size_t start = 0; start < bytes.size();) {
    size_t end = bytes.find('\n', start);
    end = end == std::string::npos ? bytes.size() : end + 1;
    const std::string_view line(bytes.data() + start, end - start);
    if (contains_any(line, needles)) ++dropped;
    else kept.append(line);
    start = end;
  }
  if (dropped == 0) return 0;
  struct stat st {};
  const bool have_mode = ::stat(path.c_str(), &st) == 0;
  const std::string tmp = path + ".erase-tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << kept;
    if (!out.flush()) throw Error(fmt::format("cannot write: {}", std::strerror(errno)), {tmp});
  }
  if (have_mode) ::chmod(tmp.c_str(), st.st_mode & 07777);
  fs::rename(tmp, path);
  return dropped;
}

nlohmann::json ErasureReport::to_json() const {
  nlohmann::json failed = nlohmann::json::array();
  for (const auto& f : failures) failed.push_back({{"step", f.step}, {"target", f.target}, {"error", f.error}});
  return {{"found", found},
          {"complete", complete()},
          {"receipt", receipt},
          {"deleted", {{"events", events}, {"texts", texts}, {"profiles", profiles}, {"rejects", rejects}, {"feedback", feedback}, {"api_keys", api_keys}}},
          {"files_rewritten", files_rewritten},
          {"models_retrained", models_retrained},
          {"models_removed", models_removed},
          {"models_pending", models_pending},
          {"failures", failed}};
}

namespace {

// Runs one step of an erasure; a failure is noted and the erasure goes on.
template <typename Step>
void attempt(ErasureReport& report, const std::string& step, const std::string& target, Step&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    report.failures.push_back({step, target, e.what()});
  }
}

// The files outside the store that may name the person: the reject logs Persona wrote (the one
// given and every one the store registered) and the registered exports. Each once.
std::vector<std::string> files_to_search(store::Store& store, const ErasureOptions& options) {
  std::vector<std::string> files;
  auto add = [&files](const std::string& path) {
    if (path.empty()) return;
    const std::string absolute = fs::absolute(path).lexically_normal().string();
    if (std::find(files.begin(), files.end(), absolute) == files.end()) files.push_back(absolute);
  };
  add(options.reject_log);
  for (const auto& p : registered_exports(store)) add(p);  // reject logs register themselves here too
  return files;
}

}  // namespace

ErasureReport erase_user(store::Store& store, const std::string& user, const ErasureOptions& options) {
  ErasureReport report;
  store::Erasure erased;
  attempt(report, "store", "", [&] { erased = store.erase_user(user); });
  report.found = erased.found;
  report.events = erased.events;
  report.texts = erased.texts;
  report.profiles = erased.profiles;
  report.feedback = erased.feedback;
  report.rejects = erased.rejects;
  // What identifies the person outside the store: the store's traces (the id first: it is there
  // even when the store no longer knows them, after an earlier partial erasure) and the pseudonym.
  std::vector<std::string> traces = erased.found ? erased.traces : std::vector<std::string>{user};
  if (options.keys) traces.push_back(privacy::pseudonym(*options.keys, user));

  {
    // The store's API keys (in its database on PostgreSQL) or the file named: keys bound to the user go.
    const bool in_database = options.api_keys.empty() && store::api_keys_in_database(options.store_location);
    const std::string file = options.api_keys.empty() ? privacy::default_api_keys_path() : options.api_keys;
    if (in_database || fs::exists(file))
      attempt(report, "api_keys", in_database ? store::printable_location(options.store_location) : file, [&] {
        report.api_keys = static_cast<int64_t>(store::open_api_keys(options.store_location, options.api_keys)->forget_user(user));
      });
  }

  std::vector<std::string> files;
  attempt(report, "files", "", [&] { files = files_to_search(store, options); });
  for (const auto& path : files) {
    attempt(report, "file", path, [&] {
      if (!fs::is_regular_file(path)) return;
      const size_t dropped = privacy::is_sealed_file(path) ? scrub_sealed(path, traces, options.keys)
                                                            : drop_lines_containing(path, traces);
      if (dropped > 0) report.files_rewritten.push_back(path);
    });
  }

  // Models: searched case-insensitively for every trace and name word (a vocabulary holds words
  // in lower case). The recommender learned item factors from the person's events even when it
  // keeps no row of theirs, so it is retrained whenever they had events; when retraining fails
  // it is removed, never kept.
  if (!options.models_dir.empty() && fs::is_directory(options.models_dir)) {
    std::vector<std::string> needles;
    for (const auto& t : traces) needles.push_back(ascii_lower(t));
    for (const auto& w : erased.name_words) needles.push_back(w);
    auto knows_them = [&](const fs::path& path) { return contains_any(ascii_lower(read_bytes(path.string())), needles); };
    std::vector<fs::path> models;
    attempt(report, "models", options.models_dir, [&] {
      for (const auto& entry : fs::directory_iterator(options.models_dir))
        if (entry.is_regular_file()) models.push_back(entry.path());
    });
    std::sort(models.begin(), models.end());
    for (const auto& path : models) {
      attempt(report, "model", path.string(), [&] {
        const bool recommender = path.filename() == "recommend.model";
        const bool named = knows_them(path);
        if (!(recommender && erased.events > 0) && !named) return;
        if (recommender && options.retrain && options.defer_retrain && !named) {
          report.models_pending.push_back(path.string());
          return;
        }
        if (recommender && options.retrain) {
          try {
            retrain_recommender(store, path.string(), {{"retrained_after_erasure", true}});
            if (fs::exists(path) && !knows_them(path)) {
              report.models_retrained.push_back(path.string());
              return;
            }
          } catch (const std::exception&) {
            // Removed below: a model that learned from the person must not stay.
          }
        }
        if (fs::exists(path)) fs::remove(path);
        store.withdraw_model(model_name(path.string()));  // every server's copy of a shared store's
        report.models_removed.push_back(path.string());
      });
    }
  }

  if (options.keys) {
    auto log = store::open_audit_log(options.store_location, *options.keys);
    attempt(report, "audit", log.path(), [&] {
      report.receipt = privacy::erasure_receipt(*options.keys, user);
      log.append(options.actor, "erase", report.to_json());
    });
  }
  return report;
}

}  // namespace persona::pipeline
