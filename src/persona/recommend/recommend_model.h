#pragma once
// A trained recommender with what serving needs: the catalogue it knows (ids, categories, prices,
// which items it learned from), how events become interactions, and its validation figures. One
// model file of kind "recommender". Recommendations are computed from the user's history as it
// is now (the store's events), so a new event counts at once, without retraining.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/core/id_map.h"
#include "persona/recommend/evaluation.h"
#include "persona/recommend/recommender.h"
#include "persona/recommend/rerank.h"

namespace persona::recommend {

struct RecommendRequest {
  size_t k = 10;
  bool exclude_seen = false;  // retail customers re-buy: off by default
  std::string category;       // only items of this category (prefix match: "Home" takes "Home > Decor")
  std::optional<double> min_price, max_price;
  // Maximal marginal relevance: 0 ranks by score alone; towards 1, an item of a category already
  // in the list must score much higher to follow it (more categories in the top k).
  double diversity = 0;
  // The user's profile segment (-1: none): "popular in your segment" for a user without history,
  // and the segment feature of a reranking method.
  int32_t segment = -1;
  // Items never to recommend: the store's unavailable items (Store::unavailable_items()).
  std::vector<std::string> exclude_items;
};

struct Recommendation {
  std::string item, category;
  double score = 0;
  std::string reason;  // "you bought it before", "similar to X you chose", "popular"
  std::string because;  // the history item behind it, when there is one
};

class RecommendModel;

// Serving with live model swaps: readers take the current model (a shared pointer, loaded
// atomically), a full retrain runs on a background thread and swaps in when it is done; requests
// in flight finish on the model they started with.
class RecommendService {
 public:
  explicit RecommendService(std::shared_ptr<const RecommendModel> model);
  ~RecommendService();
  std::shared_ptr<const RecommendModel> model() const;
  void swap(std::shared_ptr<const RecommendModel> next);
  // Starts `train` on a background thread (unless one is running: then returns false).
  bool retrain_async(std::function<RecommendModel()> train);
  void wait();                       // until the background retrain (if any) has swapped in
  std::string last_error() const;    // why the last retrain failed ("" when it did not)

 private:
  std::shared_ptr<const RecommendModel> model_;
  std::mutex worker_mutex_;  // starting a retrain, joining the last one
  std::thread worker_;
  std::mutex state_mutex_;
  std::condition_variable finished_;
  bool running_ = false;
  mutable std::mutex error_mutex_;
  std::string error_;
};

class RecommendModel {
 public:
  // Trains `spec` on the events in [options.from, options.before). With `segments` (the stored
  // profiles' segments, which serving will pass in requests) it learns each segment's popular items.
  static RecommendModel train(const store::EventColumns& events, const InteractionOptions& options, const MethodSpec& spec,
                              int threads = 2, const UserSegments& segments = {});
  void save(const std::string& path, const nlohmann::json& metrics = {}) const;
  static RecommendModel load(const std::string& path);

  // The user's history row from their events (external item ids; unknown items are skipped).
  Row history(const store::EventColumns& user_events) const;
  // Every user's history row at once, by user index of `events` (as history() gives each).
  std::vector<Row> histories(const store::EventColumns& events) const;
  std::vector<Recommendation> recommend(const Row& history, const RecommendRequest& request) const;
  // The item's neighbours (item-item methods), leaving out `exclude` (e.g. unavailable items).
  std::vector<Recommendation> similar(const std::string& item, size_t k, const std::vector<std::string>& exclude = {}) const;

  const Recommender& recommender() const { return *recommender_; }
  const InteractionOptions& interaction_options() const { return options_; }
  size_t items() const { return item_ids_.size(); }
  const nlohmann::json& metrics() const { return metrics_; }
  // The model's version: the first 12 hex digits of its file's checksum (set by save and load;
  // "" for a model never saved). What served lists and feedback name.
  const std::string& version() const { return version_; }
  size_t segments() const { return segment_popularity_.segments(); }

 private:
  std::vector<Scored> diversify(const std::vector<Scored>& ranked, size_t k, double diversity) const;
  std::optional<Choice> choice_of(const store::EventColumns& events, size_t k) const;  // none: not a choice it knows

  std::shared_ptr<const Recommender> recommender_;
  // Similar items whatever the chosen method: the method itself when it has item similarity,
  // else an item-kNN trained beside it on the same interactions.
  std::shared_ptr<const Recommender> neighbours_;
  InteractionOptions options_;
  std::vector<std::string> item_ids_, item_categories_;
  std::vector<double> item_prices_;
  std::vector<uint8_t> trained_;  // items seen in training: the ones that may be recommended
  std::vector<float> trending_;   // cold start: what users chose in the training window's last days
  SegmentPopularity segment_popularity_;  // cold start in a known segment; the rerank's segment feature
  RerankSpec rerank_;
  IdMap item_index_;
  nlohmann::json metrics_;
  mutable std::string version_;
};

}  // namespace persona::recommend
