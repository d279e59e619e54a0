#pragma once
// Honest evaluation: the published protocols as data (a temporal split, leave-last-out, a random
// per-user split, or the user's own train and test files), ranking metrics at k over every item
// seen in training, and hyperparameter choice on a validation split carved from the training
// part by the same protocol and seen-item rule, never on the test part.
#include <cstdint>
#include <functional>
#include <limits>
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

// How events are split into a training and a test part, written into every report.
struct Protocol {
  enum class Kind { Temporal, LeaveLastOut, RandomPerUser };
  Kind kind = Kind::Temporal;
  int64_t split = std::numeric_limits<int64_t>::max();  // temporal: train before, test from here
  int64_t end = std::numeric_limits<int64_t>::max();    // temporal: test before this
  size_t last = 1;                                      // leave-last-out: items held out per user
  double ratio = 0.2;                                   // random-per-user: share of each user's items
  uint64_t seed = 42;                                   // random-per-user
  std::string name() const;                             // temporal | leave-last-out | random-per-user
  nlohmann::json to_json() const;
  static Kind kind_of(const std::string& name);         // throws on another name
};

HoldOut make_holdout(const store::EventColumns& events, const InteractionOptions& options, const Protocol& p);

// The events a protocol trains on: those before a temporal split, or all but each user's
// held-out items. A validation split for tuning is carved from these.
store::EventColumns training_events(const store::EventColumns& events, const InteractionOptions& options, const Protocol& p);

// A split the user supplies: train on one set of events, test on another (their own id spaces,
// matched by name). Relevant: the test items of users with training events (purchases when the
// test part has any, else any weighted event); test items never seen in training stay relevant
// (they count against recall) but cannot be ranked.
HoldOut given_holdout(const store::EventColumns& train, const store::EventColumns& test, const InteractionOptions& options);

// How tuning validates for an evaluation by `evaluation` on `train` (its training events): the
// same protocol again inside them: a temporal window of `validation_days` before the split
// (falling back to a random per-user split when the window holds fewer than kMinValidationUsers
// users or a tenth of the training users: rating data, data without timestamps), each user's
// last items before their held-out ones, or another seeded random share.
struct ValidationPlan {
  Protocol protocol;
  std::string fallback;  // why the protocol differs from the evaluation's, "" when it does not
  nlohmann::json to_json() const;
};
constexpr size_t kMinValidationUsers = 50;
ValidationPlan validation_plan(const store::EventColumns& train, const InteractionOptions& options,
                               const Protocol& evaluation, int validation_days);

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
  // When set: only these train users (each with relevant items) are evaluated.
  const std::vector<uint32_t>* users = nullptr;
  // When set: each evaluated user's nDCG@k, in the order evaluated (for paired comparisons).
  std::vector<float>* user_ndcg = nullptr;
  // When set: each train user's best items already ranked (candidate_lists()), reranked and cut
  // to k instead of scoring the catalogue again: several rerankings of one method.
  const std::vector<std::vector<Scored>>* ranked = nullptr;
};

// Each of `users`' best n items as evaluate() ranks them (by train user; others empty).
std::vector<std::vector<Scored>> candidate_lists(const Recommender& r, const HoldOut& h, const std::vector<uint32_t>& users,
                                                 size_t n, bool exclude_seen, int threads);

RankingMetrics evaluate(const Recommender& r, const HoldOut& h, const EvalOptions& options = {});

struct Trial {
  MethodSpec spec;
  RankingMetrics validation;
  double train_s = 0;
  std::vector<float> user_ndcg;  // by validation user, for the comparison with popularity
};

struct TuneOptions {
  size_t k = 10;
  bool exclude_seen = false;  // as the evaluation (or serving) will: the same seen-item rule
  int threads = 2;
  UserSegments segments;      // as of the validation split (temporal only); empty: no segment reranking
  size_t max_users = 2000;    // validation users scored: a seeded sample beyond this many
  // The best is kept over popularity only when ahead by this many standard errors of the paired
  // difference: 3, not 2, because it is the best of some fifty settings (the largest of fifty
  // noise differences is typically 2 to 2.5 standard errors).
  double margin_se = 3;
};

struct Tuning {
  std::vector<Trial> trials;  // best first by validation nDCG@k
  MethodSpec chosen;          // the best, or popularity when the best is not clearly better
  std::string reason;         // why it was chosen
  size_t users = 0;           // validation users scored
  const Trial& chosen_trial() const;
  const Trial& popularity() const;  // the plain popularity baseline's trial
  nlohmann::json to_json() const;  // every trial's validation score, the choice and why
};

using HoldOutMaker = std::function<HoldOut(const InteractionOptions&)>;

// Every setting of `grid` trained on the validation hold-out's training part (one per history
// half-life, from `holdout`) and scored on its test part; then the best setting with its
// candidates reranked by profile features (rerank_grid()). The choice is kept only when it beats
// popularity (in the grid, or added) on validation by margin_se standard errors of the paired
// per-user difference: a method that does not clearly beat the trivial baseline is not trusted.
Tuning tune(const HoldOutMaker& holdout, const std::vector<MethodSpec>& grid, const TuneOptions& options = {});

// The reranking weights tune() tries on the best method.
std::vector<RerankSpec> rerank_grid(bool with_segments);

// Recall@k of a recommender's approximate candidates against its exact scores, over histories:
// what the ANN path loses. 1 when the method has no approximate path.
double ann_recall(const Recommender& r, const std::vector<Row>& histories, size_t k);

// The methods and settings `--method auto` compares: settings for retail purchase logs and for
// rating data (EASE λ to 2,000, ALS regularisation to 10), repurchase half-lives, user-kNN sizes
// and hybrids of the user's own history with a model or with what is trending.
std::vector<MethodSpec> default_grid();

}  // namespace persona::recommend
