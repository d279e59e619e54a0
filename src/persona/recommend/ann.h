#pragma once
// Approximate nearest neighbours by inner product (HNSW, Debian's libhnswlib-dev): for large
// catalogues the top items of a user's factor vector are found without scoring every item.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "persona/recommend/recommender.h"

namespace persona::recommend {

class InnerProductIndex {
 public:
  // Indexes `n` vectors of `dim` floats (row-major). `threads` is accepted for when insertion
  // can run in parallel safely; today one thread builds (ann.cc says why).
  InnerProductIndex(const float* vectors, size_t n, size_t dim, int threads = 2, size_t m = 16, size_t ef_construction = 100,
                    uint64_t seed = 42);
  ~InnerProductIndex();
  // The `k` items with the largest inner product with `query` (approximately), best first, with
  // their exact inner products. `ef` is the search breadth (at least k).
  std::vector<Scored> search(const float* query, size_t k, size_t ef = 0) const;
  size_t size() const { return n_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  const float* vectors_;
  size_t n_, dim_;
};

}  // namespace persona::recommend
