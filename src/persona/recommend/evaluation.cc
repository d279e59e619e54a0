#include "persona/recommend/evaluation.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <unordered_map>
#include <cmath>
#include <thread>
#include <unordered_set>

#include "persona/core/error.h"

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

HoldOut temporal_holdout(const store::EventColumns& e, const InteractionOptions& options, int64_t split, int64_t end,
                         int64_t start) {
  HoldOut h;
  InteractionOptions train = options;
  train.from = start;
  train.before = split;
  h.train = build_interactions(e, train);
  h.candidate.assign(h.train.item_count(), 0);
  for (const auto& r : h.train.rows)
    for (auto i : r.items) h.candidate[static_cast<size_t>(i)] = 1;
  h.relevant.assign(h.train.user_count(), {});
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

namespace {

// A hold-out from a per-user choice of held-out items: their events leave training and the items
// become the user's relevant set.
HoldOut holdout_by_items(const store::EventColumns& e, const InteractionOptions& options,
                         const std::vector<std::unordered_set<int32_t>>& held_by_store_user) {
  store::EventColumns train = e;
  train.user.clear(), train.item.clear(), train.type.clear(), train.quantity.clear(), train.value.clear(),
      train.timestamp.clear(), train.session.clear();
  for (size_t k = 0; k < e.size(); ++k) {
    const auto u = static_cast<size_t>(e.user[k]);
    if (u < held_by_store_user.size() && held_by_store_user[u].count(e.item[k])) continue;
    train.user.push_back(e.user[k]);
    train.item.push_back(e.item[k]);
    train.type.push_back(e.type[k]);
    train.quantity.push_back(e.quantity[k]);
    train.value.push_back(e.value[k]);
    train.timestamp.push_back(e.timestamp[k]);
    train.session.push_back(e.session[k]);
  }
  HoldOut h;
  h.train = build_interactions(train, options);
  h.candidate.assign(h.train.item_count(), 0);
  for (const auto& r : h.train.rows)
    for (auto i : r.items) h.candidate[static_cast<size_t>(i)] = 1;
  h.relevant.assign(h.train.user_count(), {});
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

}  // namespace

HoldOut leave_last_k_holdout(const store::EventColumns& e, const InteractionOptions& options, size_t k) {
  const auto items = items_by_user(e, options);
  std::vector<std::unordered_set<int32_t>> held(items.size());
  for (size_t u = 0; u < items.size(); ++u)
    if (items[u].size() > k)
      for (size_t n = items[u].size() - k; n < items[u].size(); ++n) held[u].insert(items[u][n].second);
  return holdout_by_items(e, options, held);
}

HoldOut random_holdout(const store::EventColumns& e, const InteractionOptions& options, double fraction, uint64_t seed) {
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
  return holdout_by_items(e, options, held);
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
  for (size_t u = 0; u < h.relevant.size(); ++u)
    if (!h.relevant[u].empty()) users.push_back(u);
  m.users = users.size();
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
      r.score(history, scores);
      auto top = top_k(scores, h.candidate, rerank_spec.active() ? std::max(k, rerank_spec.candidates) : k,
                       exclude_seen ? &history : nullptr);
      if (rerank_spec.active()) {
        rerank(rerank_spec, facts, history, u < h.segment.size() ? h.segment[u] : -1, top);
        top.resize(std::min(top.size(), k));
      }
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
  s.half_life_days = 0;
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
  s.weighting = "cosine";
  s.bm25_k1 = MethodSpec{}.bm25_k1;
  for (double l : {100.0, 500.0}) {
    s.method = "ease";
    s.lambda = l;
    grid.push_back(s);
  }
  s.method = "als";
  for (double c : {2.0, 10.0}) {
    s.confidence = c;
    grid.push_back(s);
  }
  s.method = "bpr";
  s.regularization = 0.01;
  grid.push_back(s);
  s.regularization = 0.05;
  s.method = "user-knn";
  for (double a : {0.5, 0.7, 0.9})
    for (int k : {100, 300})
      for (double h : {0.0, 90.0}) {
        s.alpha = a;
        s.users = k;
        s.half_life_days = h;
        grid.push_back(s);
      }
  s.half_life_days = 0;
  // Own history first (re-buying), the model's suggestions after and between.
  s.method = "hybrid";
  for (const char* base : {"ease", "item-knn"})
    for (double w : {2.0, 5.0})
      for (double h : {0.0, 90.0}) {
        s.base = base;
        s.lambda = 500;
        s.neighbours = 200;
        s.own_weight = w;
        s.half_life_days = h;
        grid.push_back(s);
      }
  return grid;
}

std::vector<Trial> tune(const store::EventColumns& events, const InteractionOptions& options, int64_t split,
                        int validation_days, const std::vector<MethodSpec>& grid, size_t k, int threads,
                        const UserSegments& segments) {
  const int64_t valid_from = split - static_cast<int64_t>(validation_days) * 86400;
  std::map<double, HoldOut> holdouts;  // by history half-life
  std::vector<Trial> trials;
  for (const auto& spec : grid) {
    auto it = holdouts.find(spec.half_life_days);
    if (it == holdouts.end()) {
      InteractionOptions o = options;
      o.half_life_days = spec.half_life_days;
      it = holdouts.emplace(spec.half_life_days, temporal_holdout(events, o, valid_from, split)).first;
      if (it->second.evaluated_users() == 0)
        throw Error("the validation window has no users to evaluate", {},
                    "give a longer --validation-days, or a later split: the window needs users with events on both sides");
    }
    const HoldOut& h = it->second;
    Trial t;
    t.spec = spec;
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = fit_recommender(h.train, spec, threads);
    t.train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    t.validation = evaluate(*r, h, {.k = k, .threads = threads});
    trials.push_back(std::move(t));
  }
  auto by_ndcg = [](const Trial& a, const Trial& b) { return a.validation.ndcg > b.validation.ndcg; };
  std::stable_sort(trials.begin(), trials.end(), by_ndcg);
  // Reranking the best method's candidates by profile features: one fit, several weightings.
  const MethodSpec best = trials.front().spec;
  HoldOut& h = holdouts.at(best.half_life_days);
  h.assign_segments(segments);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = fit_recommender(h.train, best, threads);
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& rerank : rerank_grid(!segments.empty())) {
    Trial t;
    t.spec = best;
    t.spec.rerank = rerank;
    t.train_s = train_s;
    t.validation = evaluate(*r, h, {.k = k, .threads = threads, .rerank = rerank});
    trials.push_back(std::move(t));
  }
  std::stable_sort(trials.begin(), trials.end(), by_ndcg);
  return trials;
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
