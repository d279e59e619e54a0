#include "persona/recommend/rerank.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string_view>

namespace persona::recommend {

SegmentPopularity::SegmentPopularity(const Interactions& x, const UserSegments& segments) {
  std::vector<int32_t> segment_of(x.user_count(), -1);
  int32_t top = -1;
  for (size_t u = 0; u < x.user_count(); ++u) {
    const auto it = segments.find(std::string(x.users.name(static_cast<IdMap::Id>(u))));
    if (it == segments.end() || it->second < 0) continue;
    segment_of[u] = it->second;
    top = std::max(top, it->second);
  }
  by_segment_.assign(static_cast<size_t>(top + 1), std::vector<float>(x.item_count(), 0));
  for (size_t u = 0; u < x.user_count(); ++u)
    if (segment_of[u] >= 0)
      for (auto i : x.rows[u].items) by_segment_[static_cast<size_t>(segment_of[u])][static_cast<size_t>(i)] += 1;
  for (auto& scores : by_segment_) {
    const float most = scores.empty() ? 0 : *std::max_element(scores.begin(), scores.end());
    if (most > 0)
      for (auto& s : scores) s /= most;
  }
}

const std::vector<float>* SegmentPopularity::of(int32_t segment) const {
  if (segment < 0 || static_cast<size_t>(segment) >= by_segment_.size()) return nullptr;
  return &by_segment_[static_cast<size_t>(segment)];
}

void SegmentPopularity::write(ByteWriter& out) const {
  out.put<uint64_t>(by_segment_.size());
  for (const auto& s : by_segment_) out.put_vector(s);
}

SegmentPopularity SegmentPopularity::read(ByteReader& in) {
  SegmentPopularity p;
  const auto n = in.get<uint64_t>();
  if (n > 10000) throw std::runtime_error("implausible number of segments");
  for (uint64_t s = 0; s < n; ++s) p.by_segment_.push_back(in.get_vector<float>());
  return p;
}

namespace {

// The weighted median price of the history's priced items (the user's price band); NaN when
// none has a price.
double typical_price(const ItemFacts& items, const Row& history) {
  std::vector<std::pair<double, float>> priced;
  float total = 0;
  for (size_t k = 0; k < history.size(); ++k) {
    const auto i = static_cast<size_t>(history.items[k]);
    if (i >= items.prices.size() || !std::isfinite(items.prices[i]) || items.prices[i] <= 0) continue;
    priced.emplace_back(items.prices[i], history.weights[k]);
    total += history.weights[k];
  }
  if (priced.empty() || total <= 0) return NAN;
  std::sort(priced.begin(), priced.end());
  float seen = 0;
  for (const auto& [price, weight] : priced)
    if ((seen += weight) >= total / 2) return price;
  return priced.back().first;
}

}  // namespace

void rerank(const RerankSpec& spec, const ItemFacts& items, const Row& history, int32_t segment, std::vector<Scored>& ranked) {
  if (!spec.active() || ranked.empty()) return;
  // Category shares of the history (histories are short: a small map).
  std::unordered_map<std::string_view, float> share;
  float total = 0;
  if (spec.affinity > 0)
    for (size_t k = 0; k < history.size(); ++k) {
      const auto i = static_cast<size_t>(history.items[k]);
      if (i >= items.categories.size() || items.categories[i].empty()) continue;
      share[items.categories[i]] += history.weights[k];
      total += history.weights[k];
    }
  const double price = spec.price > 0 ? typical_price(items, history) : NAN;
  const auto* popular = spec.segment > 0 ? items.segments.of(segment) : nullptr;
  float top = ranked.front().score, bottom = ranked.front().score;
  for (const auto& s : ranked) top = std::max(top, s.score), bottom = std::min(bottom, s.score);
  const float span = top > bottom ? top - bottom : 1;
  std::vector<std::pair<double, size_t>> order;  // (new score, base rank)
  order.reserve(ranked.size());
  for (size_t n = 0; n < ranked.size(); ++n) {
    const auto i = static_cast<size_t>(ranked[n].item);
    double value = (ranked[n].score - bottom) / span;
    if (popular && i < popular->size()) value += spec.segment * (*popular)[i];
    if (total > 0 && i < items.categories.size()) {
      const auto it = share.find(items.categories[i]);
      if (it != share.end()) value += spec.affinity * it->second / total;
    }
    if (std::isfinite(price) && i < items.prices.size() && std::isfinite(items.prices[i]) && items.prices[i] > 0)
      value += spec.price / (1 + std::abs(std::log(items.prices[i] / price)));
    order.emplace_back(value, n);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<Scored> out;
  out.reserve(ranked.size());
  for (const auto& [value, n] : order) out.push_back({ranked[n].item, static_cast<float>(value)});
  ranked = std::move(out);
}

}  // namespace persona::recommend
