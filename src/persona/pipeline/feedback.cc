#include "persona/pipeline/feedback.h"

namespace persona::pipeline {

void FeedbackStamper::stamp(std::vector<Feedback>& rows) {
  if (rows.empty()) return;
  if (!loaded_) {
    experiments_ = experiment::load_experiments(store_);
    for (auto& u : store_.users_refusing(store::Use::Analytics)) refusing_.insert(std::move(u));
    loaded_ = true;
  }
  dropped_ += experiment::stamp_feedback(rows, experiments_, [this](const std::string& user) { return !refusing_.count(user); });
}

}  // namespace persona::pipeline
