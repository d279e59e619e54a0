#pragma once
// Experiments (persona experiment, /v1/experiments) between recommenders, or between the
// assistant's settings: their definitions, kept in the store (meta "experiments") so every server
// of a store serves the same split, and the commands that change them. One experiment runs at a
// time on each surface: a user's list comes from one model, their chat from one set of settings.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/experiment/assignment.h"
#include "persona/store/store.h"

namespace persona::experiment {

struct Experiment {
  std::string name, salt;
  std::string status = "running";  // running | stopped
  std::string surface = "recommend";  // recommend | assistant
  std::vector<Variant> variants;   // the first is the control the others are compared with
  int64_t created = 0, stopped = 0;
  std::string promoted;  // the variant whose model became the recommender, when one did

  bool running() const { return status == "running"; }
  const Variant& variant_of(const std::string& user) const { return variants[assign(salt, user, variants)]; }
  nlohmann::json to_json() const;  // without the salt: it would let a caller steer users
  static Experiment from_json(const nlohmann::json& j);
  nlohmann::json stored_json() const;  // with the salt
};

std::vector<Experiment> load_experiments(store::Store& store);
// The running experiment on a surface, if any.
std::optional<Experiment> running_experiment(store::Store& store, const std::string& surface = "recommend");
std::optional<Experiment> find_experiment(store::Store& store, const std::string& name);

// Starts an experiment. On the recommend surface each variant's model ("current":
// <models>/recommend.model) is copied into <models>/experiments/NAME/, so retraining the
// recommender meanwhile does not change what a variant serves. On the assistant surface each
// variant's settings (Variant::settings, already read by the caller) are checked and kept in the
// definition. Clear errors for a taken name, a running experiment, a missing or bad model.
Experiment create_experiment(store::Store& store, const std::string& name, std::vector<Variant> variants,
                             const std::string& models_dir, const std::string& surface = "recommend");
// Stops it: every user gets the recommender again. Its feedback stays for the report.
Experiment stop_experiment(store::Store& store, const std::string& name);
// Stops it and makes the variant's model the recommender (<models>/recommend.model, published to
// every server of a PostgreSQL store); on the assistant surface, its settings what every server's
// assistant answers with from then on (the latest promotion wins over the config's [assistant]).
Experiment promote_variant(store::Store& store, const std::string& name, const std::string& variant,
                           const std::string& models_dir);

// Feedback as it is stored: rows of users who refused analytics (`may_record` false) dropped, the
// rest stamped with their experiment (the one a row names, else the running recommend
// experiment among `experiments`), the user's variant in it, and the variant's model version
// when the row names none. A row naming an experiment not in `experiments` keeps the name and
// gets no variant (reports leave it out). Answers how many rows were dropped.
size_t stamp_feedback(std::vector<Feedback>& rows, const std::vector<Experiment>& experiments,
                      const std::function<bool(const std::string& user)>& may_record);

// The assistant settings the latest promoted assistant experiment left in force (null: none).
nlohmann::json promoted_assistant_settings(const std::vector<Experiment>& all);

}  // namespace persona::experiment
