#pragma once
// Honest evaluation: a temporal hold-out (train before a date, test after), ranking metrics at k
// over every item seen in training, and hyperparameter choice on a validation window carved
// from the training period, never on the test period.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/recommend/interactions.h"
#include "persona/recommend/recommender.h"
#include "persona/recommend/rerank.h"

namespace persona::recommend {

struct HoldOut {
  Interactions train;
  std::vector<std::vector<int32_t>> relevant;  // by train user: distinct items chosen in the test window
  std::vector<uint8_t> candidate;              // by item: seen in training (what may be ranked)
  std::vector<int32_t> segment;                // by train user: profile segment (-1 or empty: unknown)
  SegmentPopularity segment_popularity;        // from the training part, for reranking
  size_t evaluated_users() const;
  // Gives the training users their segments (as of the split: a profile built from later
  // events would leak the test period) and learns each segment's popular items.
  void assign_segments(const UserSegments& segments);
};

// Train: events in [start, split). Test: [split, end). Relevant: the items a user with training
// events purchased in the test window (any weighted event when the window has no purchases).
HoldOut temporal_holdout(const store::EventColumns& events, const InteractionOptions& options, int64_t split,
                         int64_t end = std::numeric_limits<int64_t>::max(),
                         int64_t start = std::numeric_limits<int64_t>::min());

// Leave-last-k-out: each user's last k distinct items (by the time they were last chosen) are
// held out, and their events of those items removed from training; users with more than k
// items are evaluated.
HoldOut leave_last_k_holdout(const store::EventColumns& events, const InteractionOptions& options, size_t k);

// Per-user stratified random: each user with at least two items has `fraction` of their distinct
// items (at least one) held out at random, seeded.
HoldOut random_holdout(const store::EventColumns& events, const InteractionOptions& options, double fraction,
                       uint64_t seed);

struct RankingMetrics {
  size_t users = 0, k = 10;
  double precision = 0, recall = 0, ndcg = 0, map = 0, hit_rate = 0, coverage = 0, novelty = 0;
  double recs_per_s = 0;
  double latency_p50_us = 0, latency_p95_us = 0, latency_p99_us = 0;  // one user's top k: score and rank
  nlohmann::json to_json() const;
};

// Top k of `scores` among candidate items (minus the history when exclude_seen), best first.
std::vector<Scored> top_k(const std::vector<float>& scores, const std::vector<uint8_t>& candidate, size_t k,
                          const Row* exclude = nullptr);

struct EvalOptions {
  size_t k = 10;
  bool exclude_seen = false;  // never recommend what the user chose in training
  int threads = 2;
  RerankSpec rerank;          // active: the method's best rerank.candidates are reranked by profile features
  // When set: each evaluated user's top k (item indices), by train user, for checks of what was
  // recommended beyond the metrics (e.g. against the sample shop's latent tastes).
  std::vector<std::vector<int32_t>>* lists = nullptr;
};

RankingMetrics evaluate(const Recommender& r, const HoldOut& h, const EvalOptions& options = {});

struct Trial {
  MethodSpec spec;
  RankingMetrics validation;
  double train_s = 0;
};

// Every setting of `grid` trained on the training part and scored on a validation window of
// `validation_days` before `split`; then the best setting with its candidates reranked by profile
// features (rerank_grid(); the segment weights only when `segments`, as of the window's start,
// are given). The best by nDCG@k first.
std::vector<Trial> tune(const store::EventColumns& events, const InteractionOptions& options, int64_t split,
                        int validation_days, const std::vector<MethodSpec>& grid, size_t k = 10, int threads = 2,
                        const UserSegments& segments = {});

// The reranking weights tune() tries on the best method.
std::vector<RerankSpec> rerank_grid(bool with_segments);

// Recall@k of a recommender's approximate candidates against its exact scores, over histories:
// what the ANN path loses. 1 when the method has no approximate path.
double ann_recall(const Recommender& r, const std::vector<Row>& histories, size_t k);

// The methods and settings `--method auto` compares.
std::vector<MethodSpec> default_grid();

}  // namespace persona::recommend
