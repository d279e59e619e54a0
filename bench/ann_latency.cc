// Serving latency of top-10 at a synthetic large catalogue: item factors in clusters (as a
// factorisation of real tastes gives), an HNSW inner-product index (the ANN path of large
// catalogues) against exact scoring of every item. Prints one JSON line.
//   persona_ann_bench [ITEMS=1000000] [DIM=64] [QUERIES=300] [THREADS=2]
#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <unordered_set>
#include <vector>

#include "persona/recommend/ann.h"

namespace {

using Clock = std::chrono::steady_clock;
double micros_since(Clock::time_point t) { return std::chrono::duration<double, std::micro>(Clock::now() - t).count(); }

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  const size_t items = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const size_t dim = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 64;
  const size_t queries = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 300;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  const size_t k = 10, clusters = 1000;
  std::mt19937_64 rng(7);
  std::normal_distribution<float> gauss(0, 1);
  std::vector<float> centres(clusters * dim);
  for (auto& c : centres) c = gauss(rng);
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Matrix y(static_cast<Eigen::Index>(items), static_cast<Eigen::Index>(dim));
  for (size_t i = 0; i < items; ++i) {
    const size_t c = rng() % clusters;
    for (size_t d = 0; d < dim; ++d) y(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(d)) = centres[c * dim + d] + 0.5f * gauss(rng);
  }
  const auto t0 = Clock::now();
  persona::recommend::InnerProductIndex index(y.data(), items, dim, threads);
  const double build_s = micros_since(t0) / 1e6;

  std::vector<double> ann_us, exact_us;
  double recall = 0;
  Eigen::VectorXf q(static_cast<Eigen::Index>(dim));
  for (size_t n = 0; n < queries; ++n) {
    const size_t c = rng() % clusters;
    for (size_t d = 0; d < dim; ++d) q(static_cast<Eigen::Index>(d)) = centres[c * dim + d] + 0.5f * gauss(rng);
    auto t = Clock::now();
    const auto approx = index.search(q.data(), k, 100);
    ann_us.push_back(micros_since(t));
    t = Clock::now();
    const Eigen::VectorXf s = y * q;
    std::vector<int32_t> order(items);
    for (size_t i = 0; i < items; ++i) order[i] = static_cast<int32_t>(i);
    std::partial_sort(order.begin(), order.begin() + static_cast<long>(k), order.end(),
                      [&](int32_t a, int32_t b) { return s(a) > s(b); });
    exact_us.push_back(micros_since(t));
    std::unordered_set<int32_t> truth(order.begin(), order.begin() + static_cast<long>(k));
    size_t hits = 0;
    for (const auto& a : approx) hits += truth.count(a.item);
    recall += static_cast<double>(hits) / static_cast<double>(k);
  }
  std::printf("{\"items\": %zu, \"dim\": %zu, \"queries\": %zu, \"threads\": %d, \"index_build_s\": %.2f, "
              "\"ann_recall_at_10\": %.4f, \"ann_latency_us\": {\"p50\": %.0f, \"p95\": %.0f, \"p99\": %.0f}, "
              "\"exact_latency_us\": {\"p50\": %.0f, \"p95\": %.0f, \"p99\": %.0f}}\n",
              items, dim, queries, threads, build_s, recall / static_cast<double>(queries), percentile(ann_us, 0.5),
              percentile(ann_us, 0.95), percentile(ann_us, 0.99), percentile(exact_us, 0.5), percentile(exact_us, 0.95),
              percentile(exact_us, 0.99));
  return 0;
}
