#pragma once
// The right to be forgotten, across everything Persona wrote: the store (store::erase_user), the
// reject log, the exports Persona made (registered when written), and model files that hold the
// person (the recommender is retrained without them; any other such model is removed). The
// result names no one: the audit log gets a keyed receipt, never the id or the pseudonym.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/recommend/recommend_model.h"
#include "persona/store/store.h"

namespace persona::privacy {
class KeyRing;
}

namespace persona::pipeline {

// Records a file Persona wrote that may name people (an export, a reject log), so that an erasure
// can find and rewrite it later.
void register_export(store::Store& store, const std::string& path, const nlohmann::json& details);
std::vector<std::string> registered_exports(store::Store& store);

struct ErasureOptions {
  std::string reject_log;                  // a reject log file besides the ones the store registered ("": none)
  std::string models_dir;                  // searched for model files naming the user ("": none)
  const privacy::KeyRing* keys = nullptr;  // pseudonyms to look for, sealed exports, the receipt
  std::string store_location;              // the store's location: its API keys and audit log (store::open_api_keys)
  std::string api_keys;                    // API key file ("": the store's): keys bound to the user are deleted
  bool retrain = true;                     // retrain the recommender (else it is removed)
  // Leave the recommender's retraining to the caller (listed in models_pending): a server answers
  // once the data is gone and retrains in the background. A model file that names the person is
  // still dealt with here.
  bool defer_retrain = false;
  std::string actor = "cli";               // who asked, for the audit log
};

struct ErasureReport {
  bool found = false;
  std::string receipt;  // "" without keys
  int64_t events = 0, texts = 0, profiles = 0, rejects = 0, api_keys = 0, feedback = 0;
  std::vector<std::string> files_rewritten;  // reject logs and exports, without the person's lines
  std::vector<std::string> models_retrained, models_removed;
  std::vector<std::string> models_pending;  // to be retrained by the caller (defer_retrain)
  // Steps that could not be done, each with what it was about and why. A model that could not be
  // retrained is removed instead (listed in models_removed, not here): only what may still hold
  // the person is a failure.
  struct Failure {
    std::string step, target, error;
  };
  std::vector<Failure> failures;
  bool complete() const { return failures.empty(); }
  nlohmann::json to_json() const;
};

// Every step is tried even when one fails; the report says which did not finish (and the audit
// log records the attempt either way).
ErasureReport erase_user(store::Store& store, const std::string& user, const ErasureOptions& options);

// A model file published for every server of a shared store (PostgreSQL; nothing on SQLite),
// under its file's name without extension ("recommend"). `erasures_before`: the store's erasure
// count before training read the events; false (nothing published) when an erasure committed
// since (Store::publish_model).
bool publish_model(store::Store& store, const std::string& path, int64_t erasures_before = -1);
std::string model_name(const std::string& path);

// The recommender file at `path` trained again, with its own method, on the store's events (of
// the users who consent to analytics) and saved with its metrics and `note`; none (and the file
// removed) when no event is left. After an erasure, and for the server's retrain route.
std::optional<recommend::RecommendModel> retrain_recommender(store::Store& store, const std::string& path,
                                                             const nlohmann::json& note = nlohmann::json::object());

// Lines of a text file that contain any of `needles` are dropped (the file is replaced
// atomically, its mode kept). Returns how many were dropped.
size_t drop_lines_containing(const std::string& path, const std::vector<std::string>& needles);
// Whether the file's bytes contain any of `needles`.
bool file_contains_any(const std::string& path, const std::vector<std::string>& needles);

}  // namespace persona::pipeline
