#pragma once
// Feedback from a source mapped onto it (a file or a stream) as it is stored: rows of users who
// refused analytics dropped, the rest stamped with their experiment and variant
// (experiment::stamp_feedback). The experiments and the refusals are read once, at the first
// batch that holds feedback.
#include <string>
#include <unordered_set>
#include <vector>

#include "persona/experiment/experiments.h"
#include "persona/store/store.h"

namespace persona::pipeline {

class FeedbackStamper {
 public:
  explicit FeedbackStamper(store::Store& store) : store_(store) {}
  void stamp(std::vector<Feedback>& rows);
  size_t dropped() const { return dropped_; }

 private:
  store::Store& store_;
  bool loaded_ = false;
  std::vector<experiment::Experiment> experiments_;
  std::unordered_set<std::string> refusing_;
  size_t dropped_ = 0;
};

}  // namespace persona::pipeline
