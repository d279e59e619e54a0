#include "persona/experiment/experiments.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/assistant/assistant.h"
#include "persona/assistant/settings.h"
#include "persona/recommend/recommend_model.h"

namespace persona::experiment {
namespace fs = std::filesystem;

namespace {
constexpr const char* kMeta = "experiments";

int64_t now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void save(store::Store& store, const std::vector<Experiment>& all) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& e : all) list.push_back(e.stored_json());
  store.put_meta(kMeta, list);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read the model", {path});
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Written beside, then renamed: a server reading the file never sees half of it.
void write_file(const std::string& path, const std::string& bytes) {
  const std::string temporary = path + ".partial";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) throw Error("cannot write the model", {temporary});
  }
  fs::rename(temporary, path);
}

nlohmann::json variant_json(const Variant& v) {
  nlohmann::json j = {{"name", v.name}, {"model", v.model}, {"share", v.share}, {"file", v.file}, {"version", v.version}};
  if (!v.settings.is_null()) j["settings"] = v.settings;
  return j;
}
}  // namespace

nlohmann::json Experiment::to_json() const {
  nlohmann::json vs = nlohmann::json::array();
  for (const auto& v : variants) vs.push_back(variant_json(v));
  nlohmann::json j = {{"name", name}, {"status", status}, {"surface", surface}, {"variants", vs}, {"created", created}};
  if (stopped) j["stopped"] = stopped;
  if (!promoted.empty()) j["promoted"] = promoted;
  return j;
}

nlohmann::json Experiment::stored_json() const {
  auto j = to_json();
  j["salt"] = salt;
  return j;
}

Experiment Experiment::from_json(const nlohmann::json& j) {
  Experiment e;
  e.name = j.value("name", "");
  e.salt = j.value("salt", "");
  e.status = j.value("status", "stopped");
  e.surface = j.value("surface", "recommend");
  e.created = j.value("created", int64_t{0});
  e.stopped = j.value("stopped", int64_t{0});
  e.promoted = j.value("promoted", "");
  for (const auto& v : j.value("variants", nlohmann::json::array()))
    e.variants.push_back({v.value("name", ""), v.value("model", ""), v.value("share", 0.0), v.value("file", ""),
                          v.value("version", ""), v.value("settings", nlohmann::json())});
  return e;
}

std::vector<Experiment> load_experiments(store::Store& store) {
  std::vector<Experiment> out;
  if (const auto j = store.get_meta(kMeta); j && j->is_array())
    for (const auto& e : *j) out.push_back(Experiment::from_json(e));
  return out;
}

std::optional<Experiment> running_experiment(store::Store& store, const std::string& surface) {
  for (auto& e : load_experiments(store))
    if (e.running() && e.surface == surface) return e;
  return std::nullopt;
}

size_t stamp_feedback(std::vector<Feedback>& rows, const std::vector<Experiment>& experiments,
                      const std::function<bool(const std::string& user)>& may_record) {
  const Experiment* running = nullptr;
  for (const auto& e : experiments)
    if (e.running() && e.surface == "recommend") running = &e;
  const size_t before = rows.size();
  rows.erase(std::remove_if(rows.begin(), rows.end(), [&](const Feedback& f) { return !may_record(f.user); }), rows.end());
  for (auto& f : rows) {
    const Experiment* e = running;
    if (!f.experiment.empty()) {
      e = nullptr;
      for (const auto& x : experiments)
        if (x.name == f.experiment) e = &x;
    }
    if (!e) continue;
    const auto& v = e->variant_of(f.user);
    f.experiment = e->name;
    f.variant = v.name;
    if (f.model.empty()) f.model = v.version;
  }
  return before - rows.size();
}

nlohmann::json promoted_assistant_settings(const std::vector<Experiment>& all) {
  const Experiment* latest = nullptr;
  for (const auto& e : all)
    if (e.surface == "assistant" && !e.promoted.empty() && (!latest || e.stopped >= latest->stopped)) latest = &e;
  if (!latest) return nullptr;
  for (const auto& v : latest->variants)
    if (v.name == latest->promoted) return v.settings;
  return nullptr;
}

std::optional<Experiment> find_experiment(store::Store& store, const std::string& name) {
  for (auto& e : load_experiments(store))
    if (e.name == name) return e;
  return std::nullopt;
}

Experiment create_experiment(store::Store& store, const std::string& name, std::vector<Variant> variants,
                             const std::string& models_dir, const std::string& surface) {
  if (name.empty() || name.size() > 60 || name.find_first_of("/\\:. ") != std::string::npos)
    throw Error(fmt::format("experiment name \"{}\": at most 60 characters, without / \\ : . or spaces", name));
  if (surface != "recommend" && surface != "assistant")
    throw Error(fmt::format("surface \"{}\"", surface), {}, "recommend (models) or assistant (settings)");
  auto all = load_experiments(store);
  for (const auto& e : all) {
    if (e.name == name) throw Error(fmt::format("there is an experiment \"{}\" already", name), {}, "choose another name");
    if (e.running() && e.surface == surface)
      throw Error(fmt::format("experiment \"{}\" is running on the {} surface", e.name, surface), {},
                  fmt::format("one runs at a time there: stop it first (persona experiment stop {})", e.name));
  }
  if (surface == "assistant") {
    for (auto& v : variants) {
      if (v.settings.is_null() && v.model != "current")
        throw Error(fmt::format("variant {}: no assistant settings read from \"{}\"", v.name, v.model));
      try {
        (void)assistant::apply_assistant_settings(v.settings.is_null() ? nlohmann::json::object() : v.settings, {});
      } catch (const std::exception& e) {
        throw Error(fmt::format("variant {}: its assistant settings: {}", v.name, e.what()), {v.model},
                    "see docs/config.md, section [assistant]");
      }
      v.version = v.settings.is_null() ? "current" : store::model_checksum(v.settings.dump()).substr(0, 12);
    }
  } else {
    const fs::path dir = fs::path(models_dir) / "experiments" / name;
    fs::create_directories(dir);
    for (auto& v : variants) {
      const std::string source = v.model == "current" ? (fs::path(models_dir) / "recommend.model").string() : v.model;
      if (!fs::is_regular_file(source))
        throw Error(fmt::format("variant {}: no model file", v.name), {source},
                    v.model == "current" ? "train one first (persona train recommend)" : "give a file persona train recommend --out wrote");
      const std::string bytes = read_file(source);
      try {
        v.version = recommend::RecommendModel::load(source).version();  // a recommender, and one this Persona reads
      } catch (const std::exception& e) {
        throw Error(fmt::format("variant {}: not a recommender model ({})", v.name, e.what()), {source});
      }
      v.file = (dir / (v.name + ".model")).string();
      write_file(v.file, bytes);
      // Every server of a PostgreSQL store serves the variant from this copy (a no-op on SQLite).
      store.publish_model(fmt::format("experiment/{}/{}", name, v.name), bytes);
    }
  }
  Experiment e;
  e.name = name;
  e.surface = surface;
  e.salt = new_salt();
  e.variants = std::move(variants);
  e.created = now();
  all.push_back(e);
  save(store, all);
  return e;
}

Experiment stop_experiment(store::Store& store, const std::string& name) {
  auto all = load_experiments(store);
  for (auto& e : all) {
    if (e.name != name) continue;
    if (!e.running()) throw Error(fmt::format("experiment \"{}\" is stopped already", name));
    e.status = "stopped";
    e.stopped = now();
    save(store, all);
    return e;
  }
  throw Error(fmt::format("no experiment \"{}\"", name), {}, "persona experiment list shows them");
}

Experiment promote_variant(store::Store& store, const std::string& name, const std::string& variant,
                           const std::string& models_dir) {
  auto all = load_experiments(store);
  for (auto& e : all) {
    if (e.name != name) continue;
    const auto v = std::find_if(e.variants.begin(), e.variants.end(), [&](const Variant& x) { return x.name == variant; });
    if (v == e.variants.end()) throw Error(fmt::format("experiment \"{}\" has no variant \"{}\"", name, variant));
    if (e.surface == "recommend") {
      const std::string bytes = read_file(v->file);
      fs::create_directories(models_dir);
      write_file((fs::path(models_dir) / "recommend.model").string(), bytes);
      store.publish_model("recommend", bytes);
    }
    if (e.running()) {
      e.status = "stopped";
      e.stopped = now();
    }
    e.promoted = variant;
    save(store, all);
    return e;
  }
  throw Error(fmt::format("no experiment \"{}\"", name), {}, "persona experiment list shows them");
}

}  // namespace persona::experiment
