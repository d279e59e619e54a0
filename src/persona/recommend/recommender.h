#pragma once
// One Recommender interface, several methods. A recommender scores every item of the catalogue
// for a user's history row, so a user's newest events change their recommendations at once,
// without retraining (the live path: the history comes from the store at serving time).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include "persona/core/binary_io.h"
#include "persona/recommend/interactions.h"

namespace persona::recommend {

struct Scored {
  int32_t item = -1;
  float score = 0;
};

// Keeps the k best of `v`, best first (ties by item, so rankings are reproducible).
void keep_best(std::vector<Scored>& v, size_t k);

class Recommender {
 public:
  virtual ~Recommender() = default;
  virtual std::string method() const = 0;  // popularity | repurchase | item-knn | ease | hybrid
  virtual nlohmann::json params() const = 0;
  // Every item's score for a user with this history (`scores` has one entry per item).
  virtual void score(const Row& history, std::vector<float>& scores) const = 0;
  // Items most like `item` (item-item methods; others return none).
  virtual std::vector<Scored> similar(int32_t item, size_t k) const;
  // True when similar() answers (item-item methods, EASE, ALS, content); false for popularity,
  // trending, repurchase, user-kNN and BPR, beside which the model keeps an item-kNN for it.
  virtual bool item_similarity() const { return false; }
  // Which history item explains `item` best (item-item methods; -1 when none does).
  virtual int32_t because_of(const Row& history, int32_t item) const;
  // Whether it can rank items nobody has chosen yet (content-based): new items.
  virtual bool ranks_new_items() const { return false; }
  // The best `n` items without scoring every item (an approximate index on a large catalogue),
  // with their scores; none when the method scores the whole catalogue.
  virtual std::optional<std::vector<Scored>> candidates(const Row& history, size_t n) const;
  virtual void write(ByteWriter& out) const = 0;
};

// Reranking of a method's best candidates by profile features (rerank.h); all weights 0: off.
struct RerankSpec {
  double segment = 0;      // the item's popularity in the user's segment
  double affinity = 0;     // the user's share of history in the item's category
  double price = 0;        // closeness of the item's price to what the user pays
  size_t candidates = 200; // how many of the base method's best are reranked
  bool active() const { return segment > 0 || affinity > 0 || price > 0; }
  nlohmann::json to_json() const;
  static RerankSpec from_json(const nlohmann::json& j);
};

struct MethodSpec {
  std::string method = "ease";  // popularity | trending | repurchase | item-knn | user-knn | ease | als | bpr | content | hybrid
  int neighbours = 100;         // item-knn: similarities kept per item
  double shrink = 10;           // item-knn: cosine shrinkage for items with few users
  // item-knn: how the item x user matrix is weighted before item-item similarities: "cosine"
  // (binary, cosine with shrinkage), "tfidf" or "bm25" (weights, then dot products, as the
  // implicit library's TFIDF and BM25 recommenders do)
  std::string weighting = "cosine";
  // item-knn bm25: saturation (in units of the mean interaction weight) and length normalisation,
  // implicit's defaults
  double bm25_k1 = 1.2, bm25_b = 0.75;
  double lambda = 100;          // ease: L2 regularisation
  std::string base = "ease";    // hybrid: the model blended with the user's own history
  double own_weight = 1;        // hybrid: weight of the user's own (repurchase) scores
  double half_life_days = 0;    // history weights halve every this many days before the user's newest event
  int users = 300;              // user-knn: neighbours (users) whose histories are blended in
  int factors = 64;             // als: latent factors
  int iterations = 15;          // als: alternating passes
  double regularization = 0.05; // als: L2 on the factors
  double confidence = 2;        // als: confidence = 1 + confidence x interaction weight
  uint64_t seed = 42;           // als: initial factors
  size_t ann_min_items = 50000; // als: from this many items on, top items come from an HNSW index
  double learning_rate = 0.05;  // bpr: SGD step
  int epochs = 30;              // bpr: passes over the interactions
  double alpha = 0.8;           // user-knn: weight of the user's own history against the neighbours'
  RerankSpec rerank;            // any method: rerank its best candidates by profile features
  nlohmann::json to_json() const;
  static MethodSpec from_json(const nlohmann::json& j);
};

// Trains one method. EASE refuses catalogues whose item x item matrix would not fit in memory.
std::unique_ptr<Recommender> fit_recommender(const Interactions& x, const MethodSpec& spec, int threads = 2);
// A hybrid of an already fitted base (shared: tuning fits a base once for several hybrids).
std::unique_ptr<Recommender> make_hybrid(const MethodSpec& spec, std::shared_ptr<const Recommender> base);
void write_recommender(const Recommender& r, ByteWriter& out);  // method spec, then the method's data
std::unique_ptr<Recommender> read_recommender(ByteReader& in);

// Items above which EASE's dense item x item solve is refused.
constexpr size_t kEaseMaxItems = 30000;

}  // namespace persona::recommend
