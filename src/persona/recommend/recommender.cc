#include "persona/recommend/recommender.h"

#include <fmt/format.h>

#include <Eigen/Cholesky>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <random>
#include <thread>
#include <unordered_map>

#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/recommend/ann.h"
#include "persona/text/tfidf.h"

namespace persona::recommend {
namespace {

// Distinct users per item: popularity, and the tie-breaker of the other methods.
std::vector<float> item_popularity(const Interactions& x) {
  std::vector<float> pop(x.item_count(), 0);
  for (const auto& r : x.rows)
    for (auto i : r.items) pop[static_cast<size_t>(i)] += 1;
  const float top = pop.empty() ? 0 : *std::max_element(pop.begin(), pop.end());
  if (top > 0)
    for (auto& p : pop) p /= top;
  return pop;
}

void add_popularity(const std::vector<float>& pop, float weight, std::vector<float>& scores) {
  for (size_t i = 0; i < scores.size() && i < pop.size(); ++i) scores[i] += weight * pop[i];
}

// Scales the positive part of `scores` to a maximum of 1, so blends mix comparable numbers.
void normalise(std::vector<float>& scores) {
  float top = 0;
  for (float s : scores) top = std::max(top, s);
  if (top > 0)
    for (auto& s : scores) s /= top;
}

class Popularity : public Recommender {
 public:
  explicit Popularity(std::vector<float> pop, std::string name = "popularity") : pop_(std::move(pop)), name_(std::move(name)) {}
  std::string method() const override { return name_; }
  nlohmann::json params() const override { return {{"method", name_}}; }
  void score(const Row&, std::vector<float>& scores) const override {
    scores.assign(pop_.size(), 0);
    add_popularity(pop_, 1, scores);
  }
  void write(ByteWriter& out) const override { out.put_vector(pop_); }
  const std::vector<float>& popularity() const { return pop_; }

 private:
  std::vector<float> pop_;
  std::string name_;
};

// Content-based: TF-IDF vectors of the items' titles, descriptions, categories and brands (the
// text stage's vectoriser: words and character n-grams, so Chinese titles match too). A user's
// profile is the weighted sum of their items' vectors; every item with a description is ranked,
// also items nobody has chosen yet.
class Content : public Recommender {
 public:
  Content(MethodSpec spec, std::shared_ptr<const text::TfidfVectorizer> v, std::vector<SparseVector> items, std::vector<float> pop)
      : spec_(std::move(spec)), vectorizer_(std::move(v)), items_(std::move(items)), pop_(std::move(pop)) {
    for (const auto& item : items_)
      for (size_t j = 0; j < item.size(); ++j) features_ = std::max(features_, static_cast<size_t>(item.index[j]) + 1);
  }
  static std::unique_ptr<Content> fit(const Interactions& x, const MethodSpec& spec, int threads) {
    text::TfidfOptions o;
    o.min_df = 1;
    auto v = std::make_shared<text::TfidfVectorizer>(o);
    v->fit(x.item_documents, threads);
    return std::make_unique<Content>(spec, v, v->transform_all(x.item_documents, threads), item_popularity(x));
  }
  std::string method() const override { return "content"; }
  nlohmann::json params() const override { return spec_.to_json(); }
  bool ranks_new_items() const override { return true; }
  void score(const Row& h, std::vector<float>& scores) const override {
    scores.assign(items_.size(), 0);
    // The profile as a dense vector over the features items use: a hash map here made content
    // the slowest method to score.
    std::vector<float> profile(features_, 0);
    bool any = false;
    for (size_t k = 0; k < h.size(); ++k) {
      if (static_cast<size_t>(h.items[k]) >= items_.size()) continue;
      const auto& v = items_[static_cast<size_t>(h.items[k])];
      for (size_t j = 0; j < v.size(); ++j) profile[static_cast<size_t>(v.index[j])] += h.weights[k] * v.value[j], any = true;
    }
    if (any)
      for (size_t i = 0; i < items_.size(); ++i) {
        float s = 0;
        for (size_t j = 0; j < items_[i].size(); ++j) s += profile[static_cast<size_t>(items_[i].index[j])] * items_[i].value[j];
        scores[i] = s;
      }
    add_popularity(pop_, 1e-6f, scores);
  }
  bool item_similarity() const override { return true; }
  std::vector<Scored> similar(int32_t item, size_t k) const override {
    if (item < 0 || static_cast<size_t>(item) >= items_.size()) return {};
    Row one;
    one.items = {item};
    one.weights = {1};
    std::vector<float> scores;
    score(one, scores);
    scores[static_cast<size_t>(item)] = -1;
    std::vector<Scored> out;
    for (size_t i = 0; i < scores.size(); ++i)
      if (scores[i] > 1e-5f) out.push_back({static_cast<int32_t>(i), scores[i]});
    keep_best(out, k);
    return out;
  }
  int32_t because_of(const Row& h, int32_t item) const override {
    if (static_cast<size_t>(item) >= items_.size()) return -1;
    int32_t best = -1;
    float best_s = 0;
    for (auto i : h.items) {
      if (i == item || static_cast<size_t>(i) >= items_.size()) continue;
      const float s = dot(items_[static_cast<size_t>(i)], items_[static_cast<size_t>(item)]);
      if (s > best_s) best_s = s, best = i;
    }
    return std::binary_search(h.items.begin(), h.items.end(), item) ? item : best;
  }
  void write(ByteWriter& out) const override {
    out.put_vector(pop_);
    out.put_string(vectorizer_->to_bytes());
    out.put<uint64_t>(items_.size());
    for (const auto& v : items_) {
      out.put_vector(v.index);
      out.put_vector(v.value);
    }
  }
  static std::unique_ptr<Content> read(const MethodSpec& spec, ByteReader& in) {
    auto pop = in.get_vector<float>();
    auto v = std::make_shared<text::TfidfVectorizer>(text::TfidfVectorizer::from_bytes(in.get_string()));
    const auto n = in.get<uint64_t>();
    if (n != pop.size()) throw std::runtime_error("content payload: sizes do not match");
    std::vector<SparseVector> items(n);
    for (auto& x : items) {
      x.index = in.get_vector<int32_t>();
      x.value = in.get_vector<float>();
      if (x.index.size() != x.value.size()) throw std::runtime_error("content payload: sizes do not match");
    }
    return std::make_unique<Content>(spec, std::move(v), std::move(items), std::move(pop));
  }

 private:
  static float dot(const SparseVector& a, const SparseVector& b) {
    float s = 0;
    size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
      if (a.index[i] == b.index[j]) s += a.value[i++] * b.value[j++];
      else if (a.index[i] < b.index[j]) ++i;
      else ++j;
    }
    return s;
  }
  MethodSpec spec_;
  std::shared_ptr<const text::TfidfVectorizer> vectorizer_;
  std::vector<SparseVector> items_;
  std::vector<float> pop_;
  size_t features_ = 0;  // 1 + the highest feature index of any item
};

// The user's own past items by how often they were chosen, then popularity. Retail customers
// re-buy: on Online Retail this beats every plain collaborative model.
class Repurchase : public Recommender {
 public:
  explicit Repurchase(std::vector<float> pop) : pop_(std::move(pop)) {}
  std::string method() const override { return "repurchase"; }
  nlohmann::json params() const override { return {{"method", "repurchase"}}; }
  void score(const Row& h, std::vector<float>& scores) const override {
    scores.assign(pop_.size(), 0);
    for (size_t k = 0; k < h.size(); ++k)
      if (static_cast<size_t>(h.items[k]) < scores.size()) scores[static_cast<size_t>(h.items[k])] += 1 + h.weights[k];
    add_popularity(pop_, 1e-3f, scores);
  }
  int32_t because_of(const Row& h, int32_t item) const override {
    return std::binary_search(h.items.begin(), h.items.end(), item) ? item : -1;
  }
  void write(ByteWriter& out) const override { out.put_vector(pop_); }

 private:
  std::vector<float> pop_;
};

// Item-item cosine similarity over the users who chose each item (binary), shrunk for items
// with few users, keeping the top neighbours of each item.
// The value of one (item, user) entry of the item x user matrix under item-knn's weighting:
// binary for cosine; TF-IDF (sqrt of the weight x the user's IDF) or BM25 (the weight saturated
// by k1 and normalised by the item's total weight, x the user's IDF), the formulas of the implicit
// library's tfidf_weight and bm25_weight, where a user who chose many items says less about each.
// k1 is in units of the mean entry weight: implicit's matrices hold counts or ratings near 1,
// Persona's hold event weights (a purchase weighs 5), and k1 = 1.2 should saturate the same.
class MatrixWeighting {
 public:
  MatrixWeighting(const Interactions& x, const std::vector<Row>& cols, const MethodSpec& spec)
      : kind_(spec.weighting), k1_(static_cast<float>(spec.bm25_k1)) {
    if (kind_ == "cosine") return;
    const double items = static_cast<double>(x.item_count());
    idf_.resize(x.user_count());
    for (size_t u = 0; u < x.user_count(); ++u)
      idf_[u] = static_cast<float>(std::log(items) - std::log1p(static_cast<double>(x.rows[u].size())));
    if (kind_ != "bm25") return;
    std::vector<double> length(cols.size(), 0);
    double total = 0, entries = 0;
    for (size_t i = 0; i < cols.size(); ++i) {
      for (float w : cols[i].weights) length[i] += w;
      total += length[i];
      entries += static_cast<double>(cols[i].weights.size());
    }
    if (entries > 0) k1_ = static_cast<float>(spec.bm25_k1 * total / entries);
    const double average = cols.empty() ? 1 : std::max(total / static_cast<double>(cols.size()), 1e-9);
    length_norm_.resize(cols.size());
    for (size_t i = 0; i < cols.size(); ++i)
      length_norm_[i] = static_cast<float>((1 - spec.bm25_b) + spec.bm25_b * length[i] / average);
  }
  float operator()(size_t item, size_t user, float weight) const {
    if (kind_ == "cosine") return 1;
    if (kind_ == "tfidf") return std::sqrt(weight) * idf_[user];
    return weight * (k1_ + 1) / (k1_ * length_norm_[item] + weight) * idf_[user];
  }

 private:
  std::string kind_;
  float k1_;
  std::vector<float> idf_, length_norm_;
};

class ItemKnn : public Recommender {
 public:
  ItemKnn(MethodSpec spec, std::vector<std::vector<Scored>> neighbours, std::vector<float> pop)
      : spec_(std::move(spec)), neighbours_(std::move(neighbours)), pop_(std::move(pop)) {}
  static std::unique_ptr<ItemKnn> fit(const Interactions& x, const MethodSpec& spec, int threads) {
    if (spec.weighting != "cosine" && spec.weighting != "tfidf" && spec.weighting != "bm25")
      throw Error(fmt::format("unknown item-knn weighting \"{}\"", spec.weighting), {}, "weightings: cosine, tfidf, bm25");
    const auto cols = x.columns();
    const size_t n = x.item_count();
    const bool cosine = spec.weighting == "cosine";
    const MatrixWeighting weigh(x, cols, spec);
    std::vector<float> norm(n);
    for (size_t i = 0; i < n; ++i) norm[i] = std::sqrt(static_cast<float>(cols[i].size()));
    std::vector<std::vector<Scored>> neighbours(n);
    auto work = [&](size_t first, size_t step) {
      std::vector<float> acc(n, 0);
      std::vector<int32_t> touched;
      for (size_t i = first; i < n; i += step) {
        for (size_t a = 0; a < cols[i].size(); ++a) {
          const auto u = static_cast<size_t>(cols[i].items[a]);
          const float vi = weigh(i, u, cols[i].weights[a]);
          const Row& row = x.rows[u];
          for (size_t b = 0; b < row.size(); ++b) {
            const auto j = row.items[b];
            // The weighted variants keep each item's similarity with itself, as implicit does:
            // what a user chose scores by how strongly they chose it (re-buying).
            if (cosine && static_cast<size_t>(j) == i) continue;
            if (acc[static_cast<size_t>(j)] == 0) touched.push_back(j);
            acc[static_cast<size_t>(j)] += vi * weigh(static_cast<size_t>(j), u, row.weights[b]);
          }
        }
        auto& out = neighbours[i];
        for (auto j : touched) {
          const float co = acc[static_cast<size_t>(j)];
          const float sim = cosine ? co / (norm[i] * norm[static_cast<size_t>(j)] + static_cast<float>(spec.shrink)) : co;
          out.push_back({j, sim});
          acc[static_cast<size_t>(j)] = 0;
        }
        touched.clear();
        keep_best(out, static_cast<size_t>(std::max(1, spec.neighbours)));
        out.shrink_to_fit();
      }
    };
    std::vector<std::thread> pool;
    const size_t t = static_cast<size_t>(std::max(1, threads));
    for (size_t k = 1; k < t; ++k) pool.emplace_back(work, k, t);
    work(0, t);
    for (auto& th : pool) th.join();
    return std::make_unique<ItemKnn>(spec, std::move(neighbours), item_popularity(x));
  }
  std::string method() const override { return "item-knn"; }
  nlohmann::json params() const override { return spec_.to_json(); }
  void score(const Row& h, std::vector<float>& scores) const override {
    // Cosine sums the similarities of the items chosen; the weighted variants weigh each by how
    // strongly it was chosen (the user's row times the similarities, as implicit scores).
    const bool by_weight = spec_.weighting != "cosine";
    scores.assign(neighbours_.size(), 0);
    for (size_t k = 0; k < h.size(); ++k) {
      const auto i = static_cast<size_t>(h.items[k]);
      if (i >= neighbours_.size()) continue;
      const float w = by_weight ? h.weights[k] : 1.0f;
      for (const auto& nb : neighbours_[i]) scores[static_cast<size_t>(nb.item)] += w * nb.score;
    }
    add_popularity(pop_, 1e-6f, scores);
  }
  bool item_similarity() const override { return true; }
  std::vector<Scored> similar(int32_t item, size_t k) const override {
    if (item < 0 || static_cast<size_t>(item) >= neighbours_.size()) return {};
    std::vector<Scored> out;
    for (const auto& nb : neighbours_[static_cast<size_t>(item)]) {
      if (out.size() == k) break;
      if (nb.item != item) out.push_back(nb);
    }
    return out;
  }
  int32_t because_of(const Row& h, int32_t item) const override {
    int32_t best = -1;
    float best_sim = 0;
    for (auto i : h.items) {
      if (static_cast<size_t>(i) >= neighbours_.size()) continue;
      for (const auto& nb : neighbours_[static_cast<size_t>(i)])
        if (nb.item == item && nb.score > best_sim) best_sim = nb.score, best = i;
    }
    return best;
  }
  void write(ByteWriter& out) const override {
    out.put_vector(pop_);
    out.put<uint64_t>(neighbours_.size());
    for (const auto& nb : neighbours_) {
      std::vector<int32_t> items;
      std::vector<float> sims;
      for (const auto& s : nb) items.push_back(s.item), sims.push_back(s.score);
      out.put_vector(items);
      out.put_vector(sims);
    }
  }
  static std::unique_ptr<ItemKnn> read(const MethodSpec& spec, ByteReader& in) {
    auto pop = in.get_vector<float>();
    const auto n = in.get<uint64_t>();
    if (n != pop.size()) throw std::runtime_error("item-knn payload: sizes do not match");
    std::vector<std::vector<Scored>> neighbours(n);
    for (auto& nb : neighbours) {
      const auto items = in.get_vector<int32_t>();
      const auto sims = in.get_vector<float>();
      if (items.size() != sims.size()) throw std::runtime_error("item-knn payload: sizes do not match");
      for (size_t k = 0; k < items.size(); ++k) {
        if (items[k] < 0 || static_cast<uint64_t>(items[k]) >= n) throw std::runtime_error("item-knn payload: item out of range");
        nb.push_back({items[k], sims[k]});
      }
    }
    return std::make_unique<ItemKnn>(spec, std::move(neighbours), std::move(pop));
  }

 private:
  MethodSpec spec_;
  std::vector<std::vector<Scored>> neighbours_;
  std::vector<float> pop_;
};

// EASE (Steck 2019): the closed-form item-item model B = I - P diagMat(1 / diag(P)),
// P = (X'X + lambda I)^-1, on the binary matrix of the items that have users. Items without any
// user keep zero rows and columns.
class Ease : public Recommender {
 public:
  Ease(MethodSpec spec, std::vector<int32_t> items, Eigen::MatrixXf b, std::vector<float> pop)
      : spec_(std::move(spec)), items_(std::move(items)), b_(std::move(b)), pop_(std::move(pop)) {
    dense_.assign(pop_.size(), -1);
    for (size_t k = 0; k < items_.size(); ++k) dense_[static_cast<size_t>(items_[k])] = static_cast<int32_t>(k);
  }
  static std::unique_ptr<Ease> fit(const Interactions& x, const MethodSpec& spec) {
    std::vector<int32_t> items;
    std::vector<int32_t> dense(x.item_count(), -1);
    for (const auto& r : x.rows)
      for (auto i : r.items)
        if (dense[static_cast<size_t>(i)] < 0) dense[static_cast<size_t>(i)] = 0;
    for (size_t i = 0; i < dense.size(); ++i)
      if (dense[i] == 0) {
        dense[i] = static_cast<int32_t>(items.size());
        items.push_back(static_cast<int32_t>(i));
      }
    const auto m = static_cast<Eigen::Index>(items.size());
    if (items.size() > kEaseMaxItems)
      throw Error(fmt::format("EASE needs a {} x {} item matrix: too large for memory", m, m), {},
                  "use --method item-knn for catalogues of more than 30,000 items");
    // Single precision: the Gram matrix holds integer counts and λ keeps it well conditioned
    // (λ >= 1 in practice), and the solve is twice as fast as in double.
    Eigen::MatrixXf g = Eigen::MatrixXf::Zero(m, m);
    for (const auto& r : x.rows)
      for (auto i : r.items)
        for (auto j : r.items) g(dense[static_cast<size_t>(i)], dense[static_cast<size_t>(j)]) += 1;
    g.diagonal().array() += static_cast<float>(spec.lambda);
    Eigen::MatrixXf b = g.llt().solve(Eigen::MatrixXf::Identity(m, m));
    for (Eigen::Index j = 0; j < m; ++j) b.col(j) /= -b(j, j);
    b.diagonal().setZero();
    return std::make_unique<Ease>(spec, std::move(items), std::move(b), item_popularity(x));
  }
  std::string method() const override { return "ease"; }
  nlohmann::json params() const override { return spec_.to_json(); }
  void score(const Row& h, std::vector<float>& scores) const override {
    scores.assign(pop_.size(), 0);
    Eigen::VectorXf acc = Eigen::VectorXf::Zero(b_.cols());
    for (auto i : h.items)
      if (static_cast<size_t>(i) < dense_.size() && dense_[static_cast<size_t>(i)] >= 0) acc += b_.row(dense_[static_cast<size_t>(i)]).transpose();
    for (Eigen::Index k = 0; k < acc.size(); ++k) scores[static_cast<size_t>(items_[static_cast<size_t>(k)])] = acc(k);
    add_popularity(pop_, 1e-6f, scores);
  }
  bool item_similarity() const override { return true; }
  std::vector<Scored> similar(int32_t item, size_t k) const override {
    if (item < 0 || static_cast<size_t>(item) >= dense_.size() || dense_[static_cast<size_t>(item)] < 0) return {};
    const auto row = b_.row(dense_[static_cast<size_t>(item)]);
    std::vector<Scored> out;
    for (Eigen::Index j = 0; j < row.size(); ++j)
      if (row(j) > 0) out.push_back({items_[static_cast<size_t>(j)], row(j)});
    keep_best(out, k);
    return out;
  }
  int32_t because_of(const Row& h, int32_t item) const override {
    if (item < 0 || static_cast<size_t>(item) >= dense_.size() || dense_[static_cast<size_t>(item)] < 0) return -1;
    int32_t best = -1;
    float best_w = 0;
    for (auto i : h.items) {
      if (static_cast<size_t>(i) >= dense_.size() || dense_[static_cast<size_t>(i)] < 0) continue;
      const float w = b_(dense_[static_cast<size_t>(i)], dense_[static_cast<size_t>(item)]);
      if (w > best_w) best_w = w, best = i;
    }
    return best;
  }
  void write(ByteWriter& out) const override {
    out.put_vector(pop_);
    out.put_vector(items_);
    out.put_vector(std::vector<float>(b_.data(), b_.data() + b_.size()));
  }
  static std::unique_ptr<Ease> read(const MethodSpec& spec, ByteReader& in) {
    auto pop = in.get_vector<float>();
    auto items = in.get_vector<int32_t>();
    const auto data = in.get_vector<float>();
    const auto m = static_cast<Eigen::Index>(items.size());
    if (data.size() != static_cast<size_t>(m * m)) throw std::runtime_error("ease payload: sizes do not match");
    for (auto i : items)
      if (i < 0 || static_cast<size_t>(i) >= pop.size()) throw std::runtime_error("ease payload: item out of range");
    Eigen::MatrixXf b = Eigen::Map<const Eigen::MatrixXf>(data.data(), m, m);
    return std::make_unique<Ease>(spec, std::move(items), std::move(b), std::move(pop));
  }

 private:
  MethodSpec spec_;
  std::vector<int32_t> items_;  // dense index -> catalogue item
  std::vector<int32_t> dense_;  // catalogue item -> dense index, -1 without users
  Eigen::MatrixXf b_;
  std::vector<float> pop_;
};

// The user's own item frequencies (decayed with the history's half-life, as a distribution)
// blended with the mean of the most similar users' (cosine): what this customer re-buys, and
// what customers who buy like them buy. The idea of TIFU-KNN (Hu et al., SIGIR 2020), which
// beats plain repurchase on next-basket data.
class UserKnn : public Recommender {
 public:
  UserKnn(MethodSpec spec, std::vector<Row> users, size_t items, std::vector<float> pop)
      : spec_(std::move(spec)), users_(std::move(users)), pop_(std::move(pop)), items_(items) {
    for (auto& r : users_) normalise_row(r);
    by_item_.assign(items_, {});
    for (size_t u = 0; u < users_.size(); ++u)
      for (size_t k = 0; k < users_[u].size(); ++k)
        by_item_[static_cast<size_t>(users_[u].items[k])].push_back({static_cast<int32_t>(u), users_[u].weights[k]});
  }
  static void normalise_row(Row& r) {
    double norm = 0;
    for (float w : r.weights) norm += static_cast<double>(w) * w;
    norm = std::sqrt(norm);
    if (norm > 0)
      for (auto& w : r.weights) w = static_cast<float>(w / norm);
  }
  std::string method() const override { return "user-knn"; }
  nlohmann::json params() const override { return spec_.to_json(); }
  void score(const Row& history, std::vector<float>& scores) const override {
    scores.assign(items_, 0);
    Row own = history;
    normalise_row(own);
    // Cosine with every training user who shares an item (rows are unit length).
    std::vector<float> sim(users_.size(), 0);
    std::vector<int32_t> touched;
    for (size_t k = 0; k < own.size(); ++k) {
      if (static_cast<size_t>(own.items[k]) >= by_item_.size()) continue;
      for (const auto& [u, w] : by_item_[static_cast<size_t>(own.items[k])]) {
        if (sim[static_cast<size_t>(u)] == 0) touched.push_back(u);
        sim[static_cast<size_t>(u)] += own.weights[k] * w;
      }
    }
    std::vector<Scored> nearest;
    nearest.reserve(touched.size());
    for (auto u : touched)
      if (sim[static_cast<size_t>(u)] < 0.9999f) nearest.push_back({u, sim[static_cast<size_t>(u)]});  // not the user themself
    keep_best(nearest, static_cast<size_t>(std::max(1, spec_.users)));
    const size_t keep = nearest.size();
    const float other = keep ? static_cast<float>((1 - spec_.alpha) / static_cast<double>(keep)) : 0;
    for (size_t n = 0; n < keep; ++n) {
      const Row& r = users_[static_cast<size_t>(nearest[n].item)];
      for (size_t k = 0; k < r.size(); ++k) scores[static_cast<size_t>(r.items[k])] += other * r.weights[k];
    }
    for (size_t k = 0; k < own.size(); ++k)
      if (static_cast<size_t>(own.items[k]) < items_) scores[static_cast<size_t>(own.items[k])] += static_cast<float>(spec_.alpha) * own.weights[k];
    add_popularity(pop_, 1e-6f, scores);
  }
  int32_t because_of(const Row& h, int32_t item) const override {
    return std::binary_search(h.items.begin(), h.items.end(), item) ? item : -1;
  }
  void write(ByteWriter& out) const override {
    out.put_vector(pop_);
    out.put<uint64_t>(users_.size());
    for (const auto& r : users_) {
      out.put_vector(r.items);
      out.put_vector(r.weights);
    }
  }
  static std::unique_ptr<UserKnn> read(const MethodSpec& spec, ByteReader& in) {
    auto pop = in.get_vector<float>();
    const auto n = in.get<uint64_t>();
    std::vector<Row> users(n);
    for (auto& r : users) {
      r.items = in.get_vector<int32_t>();
      r.weights = in.get_vector<float>();
      if (r.items.size() != r.weights.size()) throw std::runtime_error("user-knn payload: sizes do not match");
      for (auto i : r.items)
        if (i < 0 || static_cast<size_t>(i) >= pop.size()) throw std::runtime_error("user-knn payload: item out of range");
    }
    const size_t items = pop.size();
    return std::make_unique<UserKnn>(spec, std::move(users), items, std::move(pop));
  }

 private:
  MethodSpec spec_;
  std::vector<Row> users_;  // unit-length histories of the training users
  std::vector<std::vector<std::pair<int32_t, float>>> by_item_;
  std::vector<float> pop_;
  size_t items_;
};

// Implicit-feedback matrix factorisation (Hu, Koren and Volinsky 2008): preferences p = 1 for
// observed items with confidence 1 + a * weight, solved by alternating least squares with a few
// conjugate-gradient steps per row, warm-started, as the well-known fast implementations do
// (Takacs et al. 2011). A user is folded in from their history at scoring time (an exact small
// solve), so new events change their factors at once.
class Als : public Recommender {
 public:
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Als(MethodSpec spec, Matrix items, std::vector<float> pop, int threads = 2)
      : spec_(std::move(spec)), y_(std::move(items)), pop_(std::move(pop)) {
    gram_ = y_.transpose() * y_;
    if (static_cast<size_t>(y_.rows()) >= spec_.ann_min_items && y_.rows() > 0)
      index_ = std::make_unique<InnerProductIndex>(y_.data(), static_cast<size_t>(y_.rows()), static_cast<size_t>(y_.cols()), threads);
  }
  std::optional<std::vector<Scored>> candidates(const Row& h, size_t n) const override {
    if (!index_ || h.size() == 0) return std::nullopt;
    const Eigen::VectorXf u = fold_in(h);
    return index_->search(u.data(), n, n);
  }
  static std::unique_ptr<Als> fit(const Interactions& x, const MethodSpec& spec, int threads) {
    const auto f = static_cast<Eigen::Index>(std::max(1, spec.factors));
    std::mt19937_64 rng(spec.seed);
    std::uniform_real_distribution<float> init(0, 0.01f);
    Matrix users(static_cast<Eigen::Index>(x.user_count()), f), items(static_cast<Eigen::Index>(x.item_count()), f);
    for (Eigen::Index i = 0; i < users.size(); ++i) users.data()[i] = init(rng);
    for (Eigen::Index i = 0; i < items.size(); ++i) items.data()[i] = init(rng);
    const auto cols = x.columns();
    for (int it = 0; it < spec.iterations; ++it) {
      solve_side(users, items, x.rows, spec, threads);
      solve_side(items, users, cols, spec, threads);
    }
    return std::make_unique<Als>(spec, std::move(items), item_popularity(x), threads);
  }
  std::string method() const override { return "als"; }
  nlohmann::json params() const override { return spec_.to_json(); }
  void score(const Row& h, std::vector<float>& scores) const override {
    scores.assign(static_cast<size_t>(y_.rows()), 0);
    if (h.size() > 0) {
      const Eigen::VectorXf u = fold_in(h);
      const Eigen::VectorXf s = y_ * u;
      for (Eigen::Index i = 0; i < s.size(); ++i) scores[static_cast<size_t>(i)] = s(i);
    }
    add_popularity(pop_, 1e-6f, scores);
  }
  bool item_similarity() const override { return true; }
  std::vector<Scored> similar(int32_t item, size_t k) const override {
    if (item < 0 || item >= y_.rows()) return {};
    const Eigen::VectorXf norms = y_.rowwise().norm();
    const Eigen::VectorXf s = y_ * y_.row(item).transpose();
    std::vector<Scored> out;
    for (Eigen::Index j = 0; j < s.size(); ++j)
      if (j != item && norms(j) > 0) out.push_back({static_cast<int32_t>(j), s(j) / (norms(j) * norms(item) + 1e-12f)});
    keep_best(out, k);
    return out;
  }
  void write(ByteWriter& out) const override {
    out.put_vector(pop_);
    out.put<int64_t>(y_.cols());
    out.put_vector(std::vector<float>(y_.data(), y_.data() + y_.size()));
  }
  static std::unique_ptr<Als> read(const MethodSpec& spec, ByteReader& in) {
    auto pop = in.get_vector<float>();
    const auto f = in.get<int64_t>();
    const auto data = in.get_vector<float>();
    if (f <= 0 || data.size() != pop.size() * static_cast<size_t>(f)) throw std::runtime_error("als payload: sizes do not match");
    Matrix y = Eigen::Map<const Matrix>(data.data(), static_cast<Eigen::Index>(pop.size()), f);
    return std::make_unique<Als>(spec, std::move(y), std::move(pop));
  }

 private:
  // One side's rows given the other side's factors: a few CG steps on
  // (Y'Y + Y'(C - I)Y + reg I) x = Y'C p, from the current x.
  static void solve_side(Matrix& x, const Matrix& y, const std::vector<Row>& rows, const MethodSpec& spec, int threads) {
    const Eigen::Index f = y.cols();
    Eigen::MatrixXf gram = y.transpose() * y;
    gram.diagonal().array() += static_cast<float>(spec.regularization);
    const auto a = static_cast<float>(spec.confidence);
    auto work = [&](size_t first, size_t step) {
      Eigen::VectorXf r(f), p(f), ap(f);
      for (size_t u = first; u < rows.size(); u += step) {
        const Row& row = rows[u];
        auto xu = x.row(static_cast<Eigen::Index>(u)).transpose();
        Eigen::VectorXf xv = xu;
        r = -(gram * xv);
        for (size_t k = 0; k < row.size(); ++k) {
          const auto yi = y.row(row.items[k]).transpose();
          const float c = 1 + a * row.weights[k];
          r += (c - (c - 1) * yi.dot(xv)) * yi;
        }
        p = r;
        float rs = r.squaredNorm();
        for (int step_cg = 0; step_cg < 3 && rs > 1e-20f; ++step_cg) {
          ap = gram * p;
          for (size_t k = 0; k < row.size(); ++k) {
            const auto yi = y.row(row.items[k]).transpose();
            ap += (a * row.weights[k]) * yi.dot(p) * yi;
          }
          const float alpha = rs / p.dot(ap);
          xv += alpha * p;
          r -= alpha * ap;
          const float next = r.squaredNorm();
          p = r + (next / rs) * p;
          rs = next;
        }
        xu = xv;
      }
    };
    std::vector<std::thread> pool;
    const auto t = static_cast<size_t>(std::max(1, threads));
    for (size_t k = 1; k < t; ++k) pool.emplace_back(work, k, t);
    work(0, t);
    for (auto& th : pool) th.join();
  }
  Eigen::VectorXf fold_in(const Row& h) const {
    Eigen::MatrixXf a = gram_;
    a.diagonal().array() += static_cast<float>(spec_.regularization);
    Eigen::VectorXf b = Eigen::VectorXf::Zero(y_.cols());
    const auto conf = static_cast<float>(spec_.confidence);
    for (size_t k = 0; k < h.size(); ++k) {
      if (h.items[k] < 0 || h.items[k] >= y_.rows()) continue;
      const auto yi = y_.row(h.items[k]).transpose();
      const float c = 1 + conf * h.weights[k];
      a.noalias() += (c - 1) * yi * yi.transpose();
      b += c * yi;
    }
    return a.ldlt().solve(b);
  }

  MethodSpec spec_;
  Matrix y_;               // item factors
  Eigen::MatrixXf gram_;   // Y'Y
  std::vector<float> pop_;
  std::unique_ptr<InnerProductIndex> index_;  // over y_'s rows, for large catalogues
};

// Bayesian personalised ranking (Rendle et al. 2009): factors and item biases trained by SGD so
// that a user's chosen items score above sampled others. One thread, one seeded sequence of
// samples: the same seed gives the same model whatever --threads says. (Threads sharing the
// factors without locks, Hogwild, were faster on two cores but gave a different model each run,
// as their updates interleaved differently.) A user's factors are fitted from their history at
// scoring time (a few seeded SGD passes, items fixed).
class Bpr : public Recommender {
 public:
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Bpr(MethodSpec spec, Matrix items, std::vector<float> bias, std::vector<float> pop)
      : spec_(std::move(spec)), q_(std::move(items)), bias_(std::move(bias)), pop_(std::move(pop)) {}
  static std::unique_ptr<Bpr> fit(const Interactions& x, const MethodSpec& spec) {
    const auto f = static_cast<Eigen::Index>(std::max(1, spec.factors));
    const auto n_items = static_cast<Eigen::Index>(x.item_count());
    std::mt19937_64 init_rng(spec.seed);
    std::normal_distribution<float> init(0, 0.1f);
    Matrix p(static_cast<Eigen::Index>(x.user_count()), f), q(n_items, f);
    for (Eigen::Index i = 0; i < p.size(); ++i) p.data()[i] = init(init_rng);
    for (Eigen::Index i = 0; i < q.size(); ++i) q.data()[i] = init(init_rng);
    std::vector<float> bias(static_cast<size_t>(n_items), 0);
    // The (user, item) pairs, sampled with replacement each epoch.
    std::vector<std::pair<int32_t, int32_t>> pairs;
    for (size_t u = 0; u < x.rows.size(); ++u)
      for (auto i : x.rows[u].items) pairs.emplace_back(static_cast<int32_t>(u), i);
    if (pairs.empty() || n_items < 2) return std::make_unique<Bpr>(spec, std::move(q), std::move(bias), item_popularity(x));
    const auto lr = static_cast<float>(spec.learning_rate), reg = static_cast<float>(spec.regularization);
    std::mt19937_64 rng(spec.seed + 1);
    std::vector<float> pu(static_cast<size_t>(f)), qi(static_cast<size_t>(f)), qj(static_cast<size_t>(f));
    const size_t samples = pairs.size() * static_cast<size_t>(spec.epochs);
    for (size_t s = 0; s < samples; ++s) {
      const auto [u, i] = pairs[rng() % pairs.size()];
      const auto j = static_cast<int32_t>(rng() % static_cast<uint64_t>(n_items));
      const auto& chosen = x.rows[static_cast<size_t>(u)].items;
      if (std::binary_search(chosen.begin(), chosen.end(), j)) continue;
      float* P = p.data() + static_cast<Eigen::Index>(u) * f;
      float* Qi = q.data() + static_cast<Eigen::Index>(i) * f;
      float* Qj = q.data() + static_cast<Eigen::Index>(j) * f;
      float& bi = bias[static_cast<size_t>(i)];
      float& bj = bias[static_cast<size_t>(j)];
      float score = bi - bj;
      for (Eigen::Index d = 0; d < f; ++d) {
        const auto k = static_cast<size_t>(d);
        pu[k] = P[d], qi[k] = Qi[d], qj[k] = Qj[d];
        score += pu[k] * (qi[k] - qj[k]);
      }
      const float g = 1 / (1 + std::exp(score));  // sigmoid(-score)
      for (Eigen::Index d = 0; d < f; ++d) {
        const auto k = static_cast<size_t>(d);
        P[d] = pu[k] + lr * (g * (qi[k] - qj[k]) - reg * pu[k]);
        Qi[d] = qi[k] + lr * (g * pu[k] - reg * qi[k]);
        Qj[d] = qj[k] + lr * (-g * pu[k] - reg * qj[k]);
      }
      bi += lr * (g - reg * bi);
      bj += lr * (-g - reg * bj);
    }
    return std::make_unique<Bpr>(spec, std::move(q), std::move(bias), item_popularity(x));
  }
  std::string method() const override { return "bpr"; }
  nlohmann::json params() const override { return spec_.to_json(); }
  void score(const Row& h, std::vector<float>& scores) const override {
    scores.assign(static_cast<size_t>(q_.rows()), 0);
    if (h.size() > 0) {
      const Eigen::VectorXf u = fold_in(h);
      const Eigen::VectorXf s = q_ * u;
      for (Eigen::Index i = 0; i < s.size(); ++i) scores[static_cast<size_t>(i)] = s(i) + bias_[static_cast<size_t>(i)];
    }
    add_popularity(pop_, 1e-6f, scores);
  }
  void write(ByteWriter& out) const override {
    out.put_vector(pop_);
    out.put_vector(bias_);
    out.put<int64_t>(q_.cols());
    out.put_vector(std::vector<float>(q_.data(), q_.data() + q_.size()));
  }
  static std::unique_ptr<Bpr> read(const MethodSpec& spec, ByteReader& in) {
    auto pop = in.get_vector<float>();
    auto bias = in.get_vector<float>();
    const auto f = in.get<int64_t>();
    const auto data = in.get_vector<float>();
    if (f <= 0 || bias.size() != pop.size() || data.size() != pop.size() * static_cast<size_t>(f))
      throw std::runtime_error("bpr payload: sizes do not match");
    Matrix q = Eigen::Map<const Matrix>(data.data(), static_cast<Eigen::Index>(pop.size()), f);
    return std::make_unique<Bpr>(spec, std::move(q), std::move(bias), std::move(pop));
  }

 private:
  // The user's factors from their history, items fixed: seeded SGD passes over the history.
  Eigen::VectorXf fold_in(const Row& h) const {
    const Eigen::Index f = q_.cols();
    Eigen::VectorXf u = Eigen::VectorXf::Zero(f);
    for (auto i : h.items)
      if (i >= 0 && i < q_.rows()) u += q_.row(i).transpose();
    u /= static_cast<float>(std::max<size_t>(1, h.size()));
    std::mt19937_64 rng(spec_.seed);
    const auto lr = static_cast<float>(spec_.learning_rate), reg = static_cast<float>(spec_.regularization);
    for (int pass = 0; pass < 20; ++pass)
      for (auto i : h.items) {
        if (i < 0 || i >= q_.rows()) continue;
        const auto j = static_cast<Eigen::Index>(rng() % static_cast<uint64_t>(q_.rows()));
        if (std::binary_search(h.items.begin(), h.items.end(), static_cast<int32_t>(j))) continue;
        const Eigen::VectorXf diff = (q_.row(i) - q_.row(j)).transpose();
        const float score = u.dot(diff) + bias_[static_cast<size_t>(i)] - bias_[static_cast<size_t>(j)];
        const float g = 1 / (1 + std::exp(score));
        u += lr * (g * diff - reg * u);
      }
    return u;
  }

  MethodSpec spec_;
  Matrix q_;
  std::vector<float> bias_, pop_;
};

// A model's scores (normalised) plus the user's own history, weighted: what a retail customer
// re-buys and what the model suggests next, in one list.
class Hybrid : public Recommender {
 public:
  Hybrid(MethodSpec spec, std::shared_ptr<const Recommender> base) : spec_(std::move(spec)), base_(std::move(base)) {}
  std::string method() const override { return "hybrid"; }
  nlohmann::json params() const override { return spec_.to_json(); }
  void score(const Row& h, std::vector<float>& scores) const override {
    base_->score(h, scores);
    normalise(scores);
    float top = 0;
    for (float w : h.weights) top = std::max(top, w);
    for (size_t k = 0; k < h.size(); ++k)
      if (static_cast<size_t>(h.items[k]) < scores.size() && top > 0)
        scores[static_cast<size_t>(h.items[k])] += static_cast<float>(spec_.own_weight) * (0.5f + 0.5f * h.weights[k] / top);
  }
  bool item_similarity() const override { return base_->item_similarity(); }
  std::vector<Scored> similar(int32_t item, size_t k) const override { return base_->similar(item, k); }
  bool ranks_new_items() const override { return base_->ranks_new_items(); }
  int32_t because_of(const Row& h, int32_t item) const override {
    if (std::binary_search(h.items.begin(), h.items.end(), item)) return item;
    return base_->because_of(h, item);
  }
  void write(ByteWriter& out) const override {
    out.put_string(base_->method());
    base_->write(out);
  }
  const Recommender& base() const { return *base_; }

 private:
  MethodSpec spec_;
  std::shared_ptr<const Recommender> base_;
};

std::unique_ptr<Recommender> read_method(const MethodSpec& spec, const std::string& method, ByteReader& in) {
  if (method == "popularity") return std::make_unique<Popularity>(in.get_vector<float>());
  if (method == "trending") return std::make_unique<Popularity>(in.get_vector<float>(), "trending");
  if (method == "content") return Content::read(spec, in);
  if (method == "repurchase") return std::make_unique<Repurchase>(in.get_vector<float>());
  if (method == "item-knn") return ItemKnn::read(spec, in);
  if (method == "ease") return Ease::read(spec, in);
  if (method == "user-knn") return UserKnn::read(spec, in);
  if (method == "als") return Als::read(spec, in);
  if (method == "bpr") return Bpr::read(spec, in);
  if (method == "hybrid") {
    const auto base = in.get_string();
    if (base == "hybrid") throw std::runtime_error("recommender payload: a hybrid of a hybrid");
    MethodSpec base_spec = spec;
    base_spec.method = base;
    return std::make_unique<Hybrid>(spec, read_method(base_spec, base, in));
  }
  throw std::runtime_error("recommender payload: unknown method \"" + method + "\"");
}

}  // namespace

void keep_best(std::vector<Scored>& v, size_t k) {
  const size_t keep = std::min(k, v.size());
  const auto better = [](const Scored& a, const Scored& b) { return a.score != b.score ? a.score > b.score : a.item < b.item; };
  // Selection then a sort of the kept: linear in v, where a partial sort is v log k (the order is
  // total, so the result is the same).
  if (keep < v.size()) std::nth_element(v.begin(), v.begin() + static_cast<long>(keep), v.end(), better);
  v.resize(keep);
  std::sort(v.begin(), v.end(), better);
}

std::vector<Scored> Recommender::similar(int32_t, size_t) const { return {}; }
std::optional<std::vector<Scored>> Recommender::candidates(const Row&, size_t) const { return std::nullopt; }
int32_t Recommender::because_of(const Row&, int32_t) const { return -1; }

nlohmann::json MethodSpec::to_json() const {
  nlohmann::json j = {{"method", method}};
  if (method == "item-knn" || (method == "hybrid" && base == "item-knn")) {
    j["neighbours"] = neighbours;
    j["weighting"] = weighting;
    if (weighting == "cosine") j["shrink"] = shrink;
    if (weighting == "bm25") j["bm25_k1"] = bm25_k1, j["bm25_b"] = bm25_b;
  }
  if (method == "ease" || (method == "hybrid" && base == "ease")) j["lambda"] = lambda;
  if (method == "hybrid") j["base"] = base, j["own_weight"] = own_weight;
  if (method == "user-knn") j["users"] = users, j["alpha"] = alpha;
  if (method == "bpr" || (method == "hybrid" && base == "bpr"))
    j["factors"] = factors, j["epochs"] = epochs, j["learning_rate"] = learning_rate, j["regularization"] = regularization,
    j["seed"] = seed;
  if (method == "als" || (method == "hybrid" && base == "als"))
    j["factors"] = factors, j["iterations"] = iterations, j["regularization"] = regularization, j["confidence"] = confidence,
    j["seed"] = seed, j["ann_min_items"] = ann_min_items;
  if (half_life_days > 0) j["half_life_days"] = half_life_days;
  if (rerank.active()) j["rerank"] = rerank.to_json();
  return j;
}

nlohmann::json RerankSpec::to_json() const {
  return {{"segment", segment}, {"affinity", affinity}, {"price", price}, {"candidates", candidates}};
}

RerankSpec RerankSpec::from_json(const nlohmann::json& j) {
  RerankSpec r;
  r.segment = j.value("segment", 0.0);
  r.affinity = j.value("affinity", 0.0);
  r.price = j.value("price", 0.0);
  r.candidates = j.value("candidates", r.candidates);
  return r;
}

MethodSpec MethodSpec::from_json(const nlohmann::json& j) {
  MethodSpec s;
  s.method = j.at("method");
  s.neighbours = j.value("neighbours", s.neighbours);
  s.shrink = j.value("shrink", s.shrink);
  s.weighting = j.value("weighting", s.weighting);
  s.bm25_k1 = j.value("bm25_k1", s.bm25_k1);
  s.bm25_b = j.value("bm25_b", s.bm25_b);
  s.lambda = j.value("lambda", s.lambda);
  s.base = j.value("base", s.base);
  s.own_weight = j.value("own_weight", s.own_weight);
  s.half_life_days = j.value("half_life_days", 0.0);
  s.users = j.value("users", s.users);
  s.alpha = j.value("alpha", s.alpha);
  s.factors = j.value("factors", s.factors);
  s.iterations = j.value("iterations", s.iterations);
  s.regularization = j.value("regularization", s.regularization);
  s.confidence = j.value("confidence", s.confidence);
  s.seed = j.value("seed", s.seed);
  s.ann_min_items = j.value("ann_min_items", s.ann_min_items);
  s.learning_rate = j.value("learning_rate", s.learning_rate);
  s.epochs = j.value("epochs", s.epochs);
  if (j.contains("rerank")) s.rerank = RerankSpec::from_json(j.at("rerank"));
  return s;
}

std::unique_ptr<Recommender> fit_recommender(const Interactions& x, const MethodSpec& spec, int threads) {
  if (x.nonzeros() == 0) throw Error("no interactions to learn from", {}, "ingest events first, or widen the training window");
  if (spec.method == "popularity") return std::make_unique<Popularity>(item_popularity(x));
  if (spec.method == "trending") {
    // Popularity in the window's last days; all-time popularity breaks ties (and fills in).
    std::vector<float> trend = x.trending;
    float top = 0;
    for (float t : trend) top = std::max(top, t);
    const auto pop = item_popularity(x);
    for (size_t i = 0; i < trend.size(); ++i) trend[i] = (top > 0 ? trend[i] / top : 0) + 1e-3f * pop[i];
    return std::make_unique<Popularity>(std::move(trend), "trending");
  }
  if (spec.method == "content") return Content::fit(x, spec, threads);
  if (spec.method == "repurchase") return std::make_unique<Repurchase>(item_popularity(x));
  if (spec.method == "item-knn") return ItemKnn::fit(x, spec, threads);
  if (spec.method == "ease") return Ease::fit(x, spec);
  if (spec.method == "user-knn") return std::make_unique<UserKnn>(spec, x.rows, x.item_count(), item_popularity(x));
  if (spec.method == "als") return Als::fit(x, spec, threads);
  if (spec.method == "bpr") return Bpr::fit(x, spec);
  if (spec.method == "hybrid") {
    if (spec.base == "hybrid") throw Error("a hybrid needs a plain base method");
    MethodSpec base = spec;
    base.method = spec.base;
    return std::make_unique<Hybrid>(spec, fit_recommender(x, base, threads));
  }
  throw Error(fmt::format("unknown recommendation method \"{}\"", spec.method), {},
              "methods: popularity, trending, repurchase, item-knn, user-knn, ease, als, bpr, content, hybrid");
}

std::unique_ptr<Recommender> make_hybrid(const MethodSpec& spec, std::shared_ptr<const Recommender> base) {
  return std::make_unique<Hybrid>(spec, std::move(base));
}

void write_recommender(const Recommender& r, ByteWriter& out) {
  out.put_string(r.params().dump());
  r.write(out);
}

std::unique_ptr<Recommender> read_recommender(ByteReader& in) {
  const auto spec = MethodSpec::from_json(parse_json_or_throw(in.get_string(), {}));
  return read_method(spec, spec.method, in);
}

}  // namespace persona::recommend
