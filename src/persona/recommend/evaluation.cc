#include "persona/recommend/evaluation.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <unordered_map>
#include <cmath>
#include <thread>
#include <unordered_set>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/core/parallel.h"

namespace persona::recommend {

size_t HoldOut::evaluated_users() const {
  size_t n = 0;
  for (const auto& r : relevant) n += !r.empty();
  return n;
}

void HoldOut::assign_segments(const UserSegments& segments) {
  segment.assign(train.user_count(), -1);
  for (size_t u = 0; u < train.user_count(); ++u) {
    const auto it = segments.find(std::string(train.users.name(static_cast<IdMap::Id>(u))));
    if (it != segments.end()) segment[u] = it->second;
  }
  segment_popularity = SegmentPopularity(train, segments);
}

namespace {

// The events (row k) for which keep(k) holds, with the same users, items and sessions.
template <class Keep>
store::EventColumns events_where(const store::EventColumns& e, Keep keep) {
  store::EventColumns out;
  out.user_ids = e.user_ids, out.user_regions = e.user_regions, out.user_signups = e.user_signups;
  out.item_ids = e.item_ids, out.item_categories = e.item_categories, out.item_brands = e.item_brands;
  out.item_prices = e.item_prices, out.item_texts = e.item_texts, out.sessions = e.sessions;
  for (size_t k = 0; k < e.size(); ++k) {
    if (!keep(k)) continue;
    out.user.push_back(e.user[k]);
    out.item.push_back(e.item[k]);
    out.type.push_back(e.type[k]);
    out.quantity.push_back(e.quantity[k]);
    out.value.push_back(e.value[k]);
    out.timestamp.push_back(e.timestamp[k]);
    out.session.push_back(e.session[k]);
  }
  return out;
}

// The events without each user's held-out items (held_by_store_user: by store user id).
store::EventColumns without_items(const store::EventColumns& e, const std::vector<std::unordered_set<int32_t>>& held_by_store_user) {
  return events_where(e, [&](size_t k) {
    const auto u = static_cast<size_t>(e.user[k]);
    return u >= held_by_store_user.size() || !held_by_store_user[u].count(e.item[k]);
  });
}

// Training interactions and the items that may be ranked (seen in training).
void set_training(HoldOut& h, const store::EventColumns& train, const InteractionOptions& options) {
  h.train = build_interactions(train, options);
  h.candidate.assign(h.train.item_count(), 0);
  for (const auto& r : h.train.rows)
    for (auto i : r.items) h.candidate[static_cast<size_t>(i)] = 1;
  h.relevant.assign(h.train.user_count(), {});
}

// A hold-out from a per-user choice of held-out items: their events leave training and the items
// become the user's relevant set.
HoldOut holdout_by_items(const store::EventColumns& e, const InteractionOptions& options,
                         const std::vector<std::unordered_set<int32_t>>& held_by_store_user) {
  HoldOut h;
  set_training(h, without_items(e, held_by_store_user), options);
  for (size_t u = 0; u < held_by_store_user.size(); ++u) {
    if (held_by_store_user[u].empty()) continue;
    const auto row = h.train.users.find(e.user_ids[u]);
    if (!row) continue;
    h.relevant[*row].assign(held_by_store_user[u].begin(), held_by_store_user[u].end());
    std::sort(h.relevant[*row].begin(), h.relevant[*row].end());
  }
  return h;
}

// Each user's distinct weighted items with the time they were last chosen, by store user id.
std::vector<std::vector<std::pair<int64_t, int32_t>>> items_by_user(const store::EventColumns& e,
                                                                    const InteractionOptions& options) {
  std::vector<std::unordered_map<int32_t, int64_t>> last(e.user_ids.size());
  for (size_t k = 0; k < e.size(); ++k)
    if (options.weights[e.type[k]] > 0) {
      auto& t = last[static_cast<size_t>(e.user[k])][e.item[k]];
      t = std::max(t, e.timestamp[k]);
    }
  std::vector<std::vector<std::pair<int64_t, int32_t>>> out(e.user_ids.size());
  for (size_t u = 0; u < last.size(); ++u) {
    for (const auto& [item, t] : last[u]) out[u].emplace_back(t, item);
    std::sort(out[u].begin(), out[u].end());
  }
  return out;
}

// Each user's last k distinct items (users with more than k), by store user id.
std::vector<std::unordered_set<int32_t>> last_items(const store::EventColumns& e, const InteractionOptions& options, size_t k) {
  const auto items = items_by_user(e, options);
  std::vector<std::unordered_set<int32_t>> held(items.size());
  for (size_t u = 0; u < items.size(); ++u)
    if (items[u].size() > k)
      for (size_t n = items[u].size() - k; n < items[u].size(); ++n) held[u].insert(items[u][n].second);
  return held;
}

// A seeded random `fraction` of each user's distinct items (users with two or more; at least one
// item held out and one kept), by store user id.
std::vector<std::unordered_set<int32_t>> random_items(const store::EventColumns& e, const InteractionOptions& options,
                                                      double fraction, uint64_t seed) {
  const auto items = items_by_user(e, options);
  std::vector<std::unordered_set<int32_t>> held(items.size());
  std::mt19937_64 rng(seed);
  for (size_t u = 0; u < items.size(); ++u) {
    if (items[u].size() < 2) continue;
    std::vector<int32_t> mine;
    for (const auto& [t, i] : items[u]) mine.push_back(i);
    std::sort(mine.begin(), mine.end());
    std::shuffle(mine.begin(), mine.end(), rng);
    const size_t n = std::clamp<size_t>(static_cast<size_t>(std::round(fraction * static_cast<double>(mine.size()))), 1,
                                        mine.size() - 1);
    held[u].insert(mine.begin(), mine.begin() + static_cast<long>(n));
  }
  return held;
}

std::vector<std::unordered_set<int32_t>> held_items(const store::EventColumns& e, const InteractionOptions& options,
                                                    const Protocol& p) {
  return p.kind == Protocol::Kind::LeaveLastOut ? last_items(e, options, p.last) : random_items(e, options, p.ratio, p.seed);
}

// Users with weighted events before `window` and within [window, split): who a temporal
// validation window evaluates; and users with weighted events before the split at all.
std::pair<size_t, size_t> window_users(const store::EventColumns& e, const InteractionOptions& options, int64_t window,
                                       int64_t split) {
  std::vector<uint8_t> side(e.user_ids.size(), 0);  // bit 1: before the window, bit 2: in it
  for (size_t k = 0; k < e.size(); ++k)
    if (options.weights[e.type[k]] > 0 && e.timestamp[k] < split)
      side[static_cast<size_t>(e.user[k])] |= e.timestamp[k] < window ? 1 : 2;
  size_t both = 0, any = 0;
  for (auto s : side) both += s == 3, any += s != 0;
  return {both, any};
}

}  // namespace

HoldOut temporal_holdout(const store::EventColumns& e, const InteractionOptions& options, int64_t split, int64_t end,
                         int64_t start) {
  HoldOut h;
  InteractionOptions train = options;
  train.from = start;
  train.before = split;
  set_training(h, e, train);
  bool purchases = false;
  for (size_t k = 0; k < e.size() && !purchases; ++k)
    purchases = e.timestamp[k] >= split && e.timestamp[k] < end && e.type[k] == static_cast<uint8_t>(EventType::Purchase);
  std::vector<std::unordered_set<int32_t>> seen(h.train.user_count());
  for (size_t k = 0; k < e.size(); ++k) {
    if (e.timestamp[k] < split || e.timestamp[k] >= end) continue;
    const bool counts = purchases ? e.type[k] == static_cast<uint8_t>(EventType::Purchase) : options.weights[e.type[k]] > 0;
    if (!counts) continue;
    const auto u = h.train.users.find(e.user_ids[static_cast<size_t>(e.user[k])]);
    if (!u) continue;  // no training history: a cold-start user, not what this measures
    if (seen[*u].insert(e.item[k]).second) h.relevant[*u].push_back(e.item[k]);
  }
  return h;
}

HoldOut leave_last_k_holdout(const store::EventColumns& e, const InteractionOptions& options, size_t k) {
  return holdout_by_items(e, options, last_items(e, options, k));
}

HoldOut random_holdout(const store::EventColumns& e, const InteractionOptions& options, double fraction, uint64_t seed) {
  return holdout_by_items(e, options, random_items(e, options, fraction, seed));
}

std::string Protocol::name() const {
  switch (kind) {
    case Kind::Temporal: return "temporal";
    case Kind::LeaveLastOut: return "leave-last-out";
    case Kind::RandomPerUser: return "random-per-user";
  }
  return "temporal";
}

Protocol::Kind Protocol::kind_of(const std::string& name) {
  if (name == "temporal") return Kind::Temporal;
  if (name == "leave-last-out") return Kind::LeaveLastOut;
  if (name == "random-per-user") return Kind::RandomPerUser;
  throw Error(fmt::format("unknown evaluation protocol \"{}\"", name), {}, "temporal, leave-last-out or random-per-user");
}

nlohmann::json Protocol::to_json() const {
  nlohmann::json j = {{"protocol", name()}};
  if (kind == Kind::Temporal) {
    if (split != std::numeric_limits<int64_t>::max()) j["split"] = split;
    if (end != std::numeric_limits<int64_t>::max()) j["end"] = end;
  }
  if (kind == Kind::LeaveLastOut) j["last"] = last;
  if (kind == Kind::RandomPerUser) j["ratio"] = ratio, j["seed"] = seed;
  return j;
}

HoldOut make_holdout(const store::EventColumns& e, const InteractionOptions& options, const Protocol& p) {
  if (p.kind == Protocol::Kind::Temporal) return temporal_holdout(e, options, p.split, p.end);
  return holdout_by_items(e, options, held_items(e, options, p));
}

store::EventColumns training_events(const store::EventColumns& e, const InteractionOptions& options, const Protocol& p) {
  if (p.kind == Protocol::Kind::Temporal) return events_where(e, [&](size_t k) { return e.timestamp[k] < p.split; });
  return without_items(e, held_items(e, options, p));
}

HoldOut given_holdout(const store::EventColumns& train, const store::EventColumns& test, const InteractionOptions& options) {
  HoldOut h;
  set_training(h, train, options);
  bool purchases = false;
  for (size_t k = 0; k < test.size() && !purchases; ++k) purchases = test.type[k] == static_cast<uint8_t>(EventType::Purchase);
  std::unordered_map<std::string_view, int32_t> unseen;  // test items unknown to training: distinct negative ids
  std::vector<std::unordered_set<int32_t>> seen(h.train.user_count());
  for (size_t k = 0; k < test.size(); ++k) {
    const bool counts = purchases ? test.type[k] == static_cast<uint8_t>(EventType::Purchase) : options.weights[test.type[k]] > 0;
    if (!counts) continue;
    const auto u = h.train.users.find(test.user_ids[static_cast<size_t>(test.user[k])]);
    if (!u) continue;  // no training history: a cold-start user, not what this measures
    const std::string_view name = test.item_ids[static_cast<size_t>(test.item[k])];
    const auto known = h.train.items.find(name);
    const int32_t item = known ? static_cast<int32_t>(*known)
                               : unseen.emplace(name, -1 - static_cast<int32_t>(unseen.size())).first->second;
    if (seen[*u].insert(item).second) h.relevant[*u].push_back(item);
  }
  return h;
}

nlohmann::json ValidationPlan::to_json() const {
  auto j = protocol.to_json();
  if (!fallback.empty()) j["fallback"] = fallback;
  return j;
}

ValidationPlan validation_plan(const store::EventColumns& train, const InteractionOptions& options, const Protocol& evaluation,
                               int validation_days) {
  ValidationPlan plan;
  plan.protocol = evaluation;
  if (evaluation.kind == Protocol::Kind::RandomPerUser) {
    plan.protocol.seed = evaluation.seed + 1;  // another draw: the held-out items are not the test's
    return plan;
  }
  if (evaluation.kind == Protocol::Kind::LeaveLastOut) return plan;
  // The window ends where training ends: the evaluation's split, else after the last event.
  int64_t split = evaluation.split;
  if (split == std::numeric_limits<int64_t>::max()) {
    split = std::numeric_limits<int64_t>::min();
    for (auto t : train.timestamp) split = std::max(split, t + 1);
  }
  plan.protocol.split = split - static_cast<int64_t>(validation_days) * 86400;
  plan.protocol.end = split;
  const auto [evaluated, users] = window_users(train, options, plan.protocol.split, split);
  const size_t needed = std::max(kMinValidationUsers, users / 10);
  if (evaluated >= needed) return plan;
  plan.fallback = fmt::format("the last {} days of training hold {} users with earlier events (at least {} needed): "
                              "validated on a random per-user split instead",
                              validation_days, evaluated, needed);
  plan.protocol = Protocol{};
  plan.protocol.kind = Protocol::Kind::RandomPerUser;
  plan.protocol.seed = evaluation.seed + 1;
  return plan;
}

nlohmann::json RankingMetrics::to_json() const {
  auto r4 = [](double x) { return std::round(x * 1e4) / 1e4; };
  return {{"eval_users", users}, {"k", k}, {"precision_at_10", r4(precision)}, {"recall_at_10", r4(recall)},
          {"ndcg_at_10", r4(ndcg)}, {"map_at_10", r4(map)}, {"hit_rate", r4(hit_rate)}, {"coverage", r4(coverage)},
          {"novelty", r4(novelty)}, {"recs_per_s", std::round(recs_per_s)},
          {"latency_us", {{"p50", std::round(latency_p50_us)}, {"p95", std::round(latency_p95_us)}, {"p99", std::round(latency_p99_us)}}}};
}

std::vector<Scored> top_k(const std::vector<float>& scores, const std::vector<uint8_t>& candidate, size_t k,
                          const Row* exclude) {
  std::vector<Scored> all;
  all.reserve(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) {
    if (i < candidate.size() && !candidate[i]) continue;
    if (exclude && std::binary_search(exclude->items.begin(), exclude->items.end(), static_cast<int32_t>(i))) continue;
    all.push_back({static_cast<int32_t>(i), scores[i]});
  }
  keep_best(all, k);
  return all;
}

RankingMetrics evaluate(const Recommender& r, const HoldOut& h, const EvalOptions& options) {
  const size_t k = options.k;
  const bool exclude_seen = options.exclude_seen;
  const int threads = options.threads;
  const RerankSpec& rerank_spec = options.rerank;
  if (options.lists) options.lists->assign(h.train.user_count(), {});
  RankingMetrics m;
  m.k = k;
  std::vector<size_t> users;
  if (options.users) {
    for (auto u : *options.users)
      if (u < h.relevant.size() && !h.relevant[u].empty()) users.push_back(u);
  } else {
    for (size_t u = 0; u < h.relevant.size(); ++u)
      if (!h.relevant[u].empty()) users.push_back(u);
  }
  m.users = users.size();
  if (options.user_ndcg) options.user_ndcg->assign(users.size(), 0);
  if (users.empty() || k == 0) return m;
  // Popularity shares for novelty.
  std::vector<double> pop(h.train.item_count(), 0);
  double total = 0;
  for (const auto& row : h.train.rows)
    for (auto i : row.items) pop[static_cast<size_t>(i)] += 1, total += 1;
  const auto t = static_cast<size_t>(std::max(1, threads));
  struct Sums {
    double p = 0, r = 0, ndcg = 0, map = 0, hit = 0, novelty = 0;
    std::vector<uint8_t> shown;
    std::vector<double> latency_us;
  };
  std::vector<Sums> sums(t);
  const ItemFacts facts{h.train.item_categories, h.train.item_prices, h.segment_popularity};
  const auto t0 = std::chrono::steady_clock::now();
  auto work = [&](size_t part) {
    Sums& s = sums[part];
    s.shown.assign(h.train.item_count(), 0);
    std::vector<float> scores;
    for (size_t n = part; n < users.size(); n += t) {
      const size_t u = users[n];
      const Row& history = h.train.rows[u];
      const auto started = std::chrono::steady_clock::now();
      std::vector<Scored> top;
      if (options.ranked) {
        top = (*options.ranked)[u];
      } else {
        r.score(history, scores);
        top = top_k(scores, h.candidate, rerank_spec.active() ? std::max(k, rerank_spec.candidates) : k,
                    exclude_seen ? &history : nullptr);
      }
      if (rerank_spec.active()) rerank(rerank_spec, facts, history, u < h.segment.size() ? h.segment[u] : -1, top);
      top.resize(std::min(top.size(), k));
      s.latency_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count());
      if (options.lists)
        for (const auto& item : top) (*options.lists)[u].push_back(item.item);
      std::unordered_set<int32_t> rel(h.relevant[u].begin(), h.relevant[u].end());
      double hits = 0, dcg = 0, ap = 0;
      for (size_t i = 0; i < top.size(); ++i) {
        s.shown[static_cast<size_t>(top[i].item)] = 1;
        if (total > 0 && pop[static_cast<size_t>(top[i].item)] > 0) s.novelty += -std::log2(pop[static_cast<size_t>(top[i].item)] / total) / static_cast<double>(top.size());
        if (!rel.count(top[i].item)) continue;
        hits += 1;
        dcg += 1 / std::log2(static_cast<double>(i) + 2);
        ap += hits / static_cast<double>(i + 1);
      }
      const size_t ideal = std::min(rel.size(), k);
      double idcg = 0;
      for (size_t i = 0; i < ideal; ++i) idcg += 1 / std::log2(static_cast<double>(i) + 2);
      s.p += hits / static_cast<double>(k);
      s.r += hits / static_cast<double>(rel.size());
      s.ndcg += idcg > 0 ? dcg / idcg : 0;
      if (options.user_ndcg) (*options.user_ndcg)[n] = static_cast<float>(idcg > 0 ? dcg / idcg : 0);
      s.map += ap / static_cast<double>(ideal);
      s.hit += hits > 0;
    }
  };
  std::vector<std::thread> pool;
  for (size_t p = 1; p < t; ++p) pool.emplace_back(work, p);
  work(0);
  for (auto& th : pool) th.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<uint8_t> shown(h.train.item_count(), 0);
  std::vector<double> latency;
  Sums all;
  for (const auto& s : sums) {
    latency.insert(latency.end(), s.latency_us.begin(), s.latency_us.end());
    all.p += s.p, all.r += s.r, all.ndcg += s.ndcg, all.map += s.map, all.hit += s.hit, all.novelty += s.novelty;
    for (size_t i = 0; i < s.shown.size(); ++i) shown[i] |= s.shown[i];
  }
  const double n = static_cast<double>(users.size());
  m.precision = all.p / n;
  m.recall = all.r / n;
  m.ndcg = all.ndcg / n;
  m.map = all.map / n;
  m.hit_rate = all.hit / n;
  m.novelty = all.novelty / n;
  size_t candidates = 0, covered = 0;
  for (size_t i = 0; i < shown.size(); ++i) candidates += h.candidate[i], covered += shown[i] && h.candidate[i];
  m.coverage = candidates ? static_cast<double>(covered) / static_cast<double>(candidates) : 0;
  m.recs_per_s = seconds > 0 ? n / seconds : 0;
  std::sort(latency.begin(), latency.end());
  auto percentile = [&](double p) { return latency[std::min(latency.size() - 1, static_cast<size_t>(p * static_cast<double>(latency.size())))]; };
  m.latency_p50_us = percentile(0.50);
  m.latency_p95_us = percentile(0.95);
  m.latency_p99_us = percentile(0.99);
  return m;
}

std::vector<std::vector<Scored>> candidate_lists(const Recommender& r, const HoldOut& h, const std::vector<uint32_t>& users,
                                                 size_t n, bool exclude_seen, int threads) {
  std::vector<std::vector<Scored>> lists(h.train.user_count());
  parallel_chunks(users.size(), threads, 16, [&](size_t lo, size_t hi) {
    std::vector<float> scores;
    for (size_t i = lo; i < hi; ++i) {
      const Row& history = h.train.rows[users[i]];
      r.score(history, scores);
      lists[users[i]] = top_k(scores, h.candidate, n, exclude_seen ? &history : nullptr);
    }
  });
  return lists;
}

double ann_recall(const Recommender& r, const std::vector<Row>& histories, size_t k) {
  double sum = 0;
  size_t n = 0;
  std::vector<float> scores;
  for (const auto& h : histories) {
    const auto approx = r.candidates(h, k);
    if (!approx) return 1;
    r.score(h, scores);
    const auto exact = top_k(scores, std::vector<uint8_t>(scores.size(), 1), k);
    std::unordered_set<int32_t> truth;
    for (const auto& s : exact) truth.insert(s.item);
    size_t hits = 0;
    for (const auto& s : *approx) hits += truth.count(s.item);
    sum += exact.empty() ? 1 : static_cast<double>(hits) / static_cast<double>(exact.size());
    ++n;
  }
  return n ? sum / static_cast<double>(n) : 1;
}

std::vector<MethodSpec> default_grid() {
  std::vector<MethodSpec> grid;
  MethodSpec s;
  s.method = "popularity";
  grid.push_back(s);
  s.method = "trending";
  grid.push_back(s);
  s.method = "content";
  grid.push_back(s);
  s.method = "repurchase";
  for (double h : {0.0, 30.0, 90.0, 365.0}) {
    s.half_life_days = h;
    grid.push_back(s);
  }
  s = MethodSpec{};
  s.method = "item-knn";
  for (int n : {50, 200}) {
    s.neighbours = n;
    grid.push_back(s);
  }
  s.weighting = "tfidf";
  grid.push_back(s);
  // BM25's saturation (k1 in units of the mean interaction weight): from strong to almost none.
  s.weighting = "bm25";
  for (double k1 : {1.2, 5.0, 30.0}) {
    s.bm25_k1 = k1;
    grid.push_back(s);
  }
  // EASE: λ 100 suits sparse purchase logs, hundreds to thousands dense rating data.
  s = MethodSpec{};
  for (double l : {100.0, 500.0, 2000.0}) {
    s.lambda = l;
    grid.push_back(s);
  }
  // ALS: weak regularisation with low or high confidence (purchase logs), strong (ratings).
  s = MethodSpec{};
  s.method = "als";
  for (double reg : {0.05, 10.0})
    for (double c : {2.0, 10.0}) {
      s.regularization = reg;
      s.confidence = c;
      grid.push_back(s);
    }
  s = MethodSpec{};
  s.method = "user-knn";
  for (double a : {0.5, 0.9})
    for (int k : {100, 300})
      for (double h : {0.0, 90.0}) {
        s.alpha = a;
        s.users = k;
        s.half_life_days = h;
        grid.push_back(s);
      }
  // Own history first (re-buying), then what a model suggests or what is trending now. The
  // bases are the plain settings above, fitted once.
  s = MethodSpec{};
  s.method = "hybrid";
  for (const char* base : {"trending", "item-knn", "ease"})
    for (double w : {2.0, 5.0})
      for (double h : {0.0, 90.0}) {
        if (std::string(base) == "ease" && h > 0) continue;  // a second EASE fit on decayed weights never paid
        s.base = base;
        s.lambda = 500;
        s.neighbours = 200;
        s.own_weight = w;
        s.half_life_days = h;
        grid.push_back(s);
      }
  return grid;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A hybrid's base method: the hybrid's settings with the base's name.
MethodSpec base_of(const MethodSpec& hybrid) {
  MethodSpec base = hybrid;
  base.method = hybrid.base;
  return base;
}

// Fits the grid's settings, each base a hybrid needs only once (a plain setting of the grid
// that is also a hybrid's base is shared with it).
class GridFitter {
 public:
  GridFitter(const std::vector<MethodSpec>& grid, int threads) : threads_(threads) {
    for (const auto& spec : grid)
      if (spec.method == "hybrid") shared_.emplace(base_of(spec).to_json().dump(), Fitted{});
  }
  // The model and the seconds its training took (a hybrid's base counted in full).
  std::pair<std::shared_ptr<const Recommender>, double> fit(const Interactions& x, const MethodSpec& spec) {
    if (spec.method == "hybrid") {
      const auto base = fit(x, base_of(spec));
      return {make_hybrid(spec, base.first), base.second};
    }
    const auto key = spec.to_json().dump();
    const auto it = shared_.find(key);
    if (it != shared_.end() && it->second.model) return {it->second.model, it->second.seconds};
    const auto t0 = std::chrono::steady_clock::now();
    std::shared_ptr<const Recommender> model = fit_recommender(x, spec, threads_);
    const double s = seconds_since(t0);
    if (it != shared_.end()) it->second = {model, s};
    return {model, s};
  }

 private:
  struct Fitted {
    std::shared_ptr<const Recommender> model;
    double seconds = 0;
  };
  int threads_;
  std::unordered_map<std::string, Fitted> shared_;
};

// Up to `n` of the hold-out's evaluated users, a seeded sample when there are more.
std::vector<uint32_t> sample_users(const HoldOut& h, size_t n) {
  std::vector<uint32_t> users;
  for (size_t u = 0; u < h.relevant.size(); ++u)
    if (!h.relevant[u].empty()) users.push_back(static_cast<uint32_t>(u));
  if (users.size() <= n) return users;
  std::mt19937_64 rng(42);
  std::shuffle(users.begin(), users.end(), rng);
  users.resize(n);
  std::sort(users.begin(), users.end());
  return users;
}

// Mean and standard error of the per-user differences a - b.
std::pair<double, double> paired_difference(const std::vector<float>& a, const std::vector<float>& b) {
  const size_t n = std::min(a.size(), b.size());
  if (n < 2) return {0, 0};
  double sum = 0, sq = 0;
  for (size_t u = 0; u < n; ++u) {
    const double d = static_cast<double>(a[u]) - b[u];
    sum += d, sq += d * d;
  }
  const double mean = sum / static_cast<double>(n);
  const double var = std::max(0.0, (sq - static_cast<double>(n) * mean * mean) / static_cast<double>(n - 1));
  return {mean, std::sqrt(var / static_cast<double>(n))};
}

bool is_plain_popularity(const MethodSpec& s) { return s.method == "popularity" && !s.rerank.active(); }

}  // namespace

const Trial& Tuning::chosen_trial() const {
  const auto want = chosen.to_json();
  return *std::find_if(trials.begin(), trials.end(), [&](const Trial& t) { return t.spec.to_json() == want; });
}

const Trial& Tuning::popularity() const {
  return *std::find_if(trials.begin(), trials.end(), [](const Trial& t) { return is_plain_popularity(t.spec); });
}

nlohmann::json Tuning::to_json() const {
  nlohmann::json all = nlohmann::json::array();
  for (const auto& t : trials)
    all.push_back({{"method", t.spec.to_json()}, {"validation", t.validation.to_json()}, {"train_s", t.train_s}});
  return {{"chosen", chosen.to_json()}, {"reason", reason}, {"users", users}, {"trials", all}};
}

Tuning tune(const HoldOutMaker& make, const std::vector<MethodSpec>& grid_in, const TuneOptions& o) {
  std::vector<MethodSpec> grid = grid_in;
  if (std::none_of(grid.begin(), grid.end(), is_plain_popularity)) grid.insert(grid.begin(), MethodSpec::from_json({{"method", "popularity"}}));
  std::map<double, HoldOut> holdouts;  // by history half-life
  auto holdout = [&](double half_life) -> HoldOut& {
    auto it = holdouts.find(half_life);
    if (it != holdouts.end()) return it->second;
    InteractionOptions io;
    io.half_life_days = half_life;
    it = holdouts.emplace(half_life, make(io)).first;
    if (it->second.evaluated_users() == 0)
      throw Error("the validation split has no users to evaluate", {},
                  "the training part needs users with events on both sides of the validation split");
    return it->second;
  };
  Tuning tuning;
  // The same users for every setting (the relevant sets do not depend on the half-life).
  const auto users = sample_users(holdout(0), o.max_users);
  tuning.users = users.size();
  GridFitter fitter(grid, o.threads);
  std::shared_ptr<const Recommender> best_model;  // kept for the reranking trials: not fitted twice
  double best_ndcg = -1;
  for (const auto& spec : grid) {
    const HoldOut& h = holdout(spec.half_life_days);
    Trial t;
    t.spec = spec;
    auto [model, seconds] = fitter.fit(h.train, spec);
    t.train_s = seconds;
    t.validation = evaluate(*model, h, {.k = o.k, .exclude_seen = o.exclude_seen, .threads = o.threads, .users = &users,
                                        .user_ndcg = &t.user_ndcg});
    if (t.validation.ndcg > best_ndcg) best_model = model, best_ndcg = t.validation.ndcg;
    tuning.trials.push_back(std::move(t));
  }
  auto by_ndcg = [](const Trial& a, const Trial& b) { return a.validation.ndcg > b.validation.ndcg; };
  std::stable_sort(tuning.trials.begin(), tuning.trials.end(), by_ndcg);
  // Reranking the best method's candidates by profile features: one fit, several weightings.
  const Trial best = tuning.trials.front();
  HoldOut& h = holdout(best.spec.half_life_days);
  h.assign_segments(o.segments);
  const auto ranked = candidate_lists(*best_model, h, users, std::max(o.k, RerankSpec{}.candidates), o.exclude_seen, o.threads);
  for (const auto& rerank : rerank_grid(!o.segments.empty())) {
    Trial t;
    t.spec = best.spec;
    t.spec.rerank = rerank;
    t.train_s = best.train_s;
    t.validation = evaluate(*best_model, h, {.k = o.k, .exclude_seen = o.exclude_seen, .threads = o.threads, .rerank = rerank,
                                             .users = &users, .user_ndcg = &t.user_ndcg, .ranked = &ranked});
    tuning.trials.push_back(std::move(t));
  }
  std::stable_sort(tuning.trials.begin(), tuning.trials.end(), by_ndcg);
  const Trial& top = tuning.trials.front();
  const Trial& popularity = tuning.popularity();
  const auto [gain, se] = paired_difference(top.user_ndcg, popularity.user_ndcg);
  const std::string against = fmt::format("nDCG@{} {:.4f} against popularity's {:.4f} on {} validation users ({:+.4f}, {:.1f} standard errors)",
                                          o.k, top.validation.ndcg, popularity.validation.ndcg, users.size(), gain,
                                          se > 0 ? gain / se : 0.0);
  if (&top == &popularity) {
    tuning.chosen = popularity.spec;
    tuning.reason = "popularity was the best setting on validation";
  } else if (gain > 0 && gain > o.margin_se * se) {
    tuning.chosen = top.spec;
    tuning.reason = "best on validation: " + against;
  } else {
    tuning.chosen = popularity.spec;
    tuning.reason = fmt::format("popularity: the best setting ({}) did not beat it by {} standard errors: {}", top.spec.to_json().dump(),
                                o.margin_se, against);
  }
  return tuning;
}

std::vector<RerankSpec> rerank_grid(bool with_segments) {
  std::vector<RerankSpec> grid;
  for (double segment : with_segments ? std::vector<double>{0, 0.1, 0.3} : std::vector<double>{0})
    for (double affinity : {0.0, 0.1, 0.3})
      for (double price : {0.0, 0.1}) {
        RerankSpec r;
        r.segment = segment, r.affinity = affinity, r.price = price;
        if (r.active()) grid.push_back(r);
      }
  return grid;
}

}  // namespace persona::recommend
