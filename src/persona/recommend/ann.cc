#include "persona/recommend/ann.h"

// hnswlib's SSE search loop prefetches through the id one past the end of a node's link list: a
// 4-byte read past an allocation, harmless on hardware but reported by AddressSanitizer. Under
// ASan its plain loops are used instead.
#if defined(__SANITIZE_ADDRESS__)
#define NO_MANUAL_VECTORIZATION
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_MANUAL_VECTORIZATION
#endif
#endif
#include <hnswlib/hnswlib.h>

#include <algorithm>

namespace persona::recommend {

struct InnerProductIndex::Impl {
  explicit Impl(size_t dim) : space(dim) {}
  hnswlib::InnerProductSpace space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
};

InnerProductIndex::InnerProductIndex(const float* vectors, size_t n, size_t dim, int threads, size_t m,
                                     size_t ef_construction, uint64_t seed)
    : impl_(std::make_unique<Impl>(dim)), vectors_(vectors), n_(n), dim_(dim) {
  impl_->index = std::make_unique<hnswlib::HierarchicalNSW<float>>(&impl_->space, std::max<size_t>(n, 1), m, ef_construction, seed);
  // One thread inserts, on purpose. hnswlib can insert from several, and it halves the build
  // (measured: 200k items, 64 dims, 15.5 s -> 8.0 s on 2 threads), but each inserting thread holds
  // its new node's lock while locking others: the lock-order inversion ThreadSanitizer reports
  // here, a deadlock once two new nodes reach each other (the same pattern faiss fixed in its
  // HNSW, facebookresearch/faiss#2143; other forks found concurrent inserts dropping neighbour
  // links). A retrain that can hang is worse than a slower one; searching from many threads is safe.
  (void)threads;
  for (size_t i = 0; i < n; ++i) impl_->index->addPoint(vectors + i * dim, i);
}

InnerProductIndex::~InnerProductIndex() = default;

std::vector<Scored> InnerProductIndex::search(const float* query, size_t k, size_t ef) const {
  std::vector<Scored> out;
  if (n_ == 0 || k == 0) return out;
  // searchKnn is const and thread-safe; its breadth is max(ef_, k): ask for max(k, ef) and cut.
  auto result = impl_->index->searchKnn(query, std::max(k, ef));
  while (!result.empty()) {
    const auto label = static_cast<size_t>(result.top().second);
    result.pop();
    float dot = 0;
    for (size_t d = 0; d < dim_; ++d) dot += query[d] * vectors_[label * dim_ + d];
    out.push_back({static_cast<int32_t>(label), dot});
  }
  std::sort(out.begin(), out.end(), [](const Scored& a, const Scored& b) { return a.score != b.score ? a.score > b.score : a.item < b.item; });
  if (out.size() > k) out.resize(k);
  return out;
}

}  // namespace persona::recommend
