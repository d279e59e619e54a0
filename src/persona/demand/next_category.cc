#include "persona/demand/next_category.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <stdexcept>

#include "persona/core/binary_io.h"
#include "persona/core/model.h"
#include "persona/ml/model_file.h"

namespace persona::demand {
namespace {

int index_of(std::vector<std::string>& names, std::map<std::string, int>& index, const std::string& name) {
  auto [it, added] = index.emplace(name, static_cast<int>(names.size()));
  if (added) names.push_back(name);
  return it->second;
}

// Rank of `truth` among `scores` is within the top k (ties broken by index, as predict does).
bool in_top(const std::vector<double>& scores, int truth, size_t k) {
  size_t better = 0;
  for (size_t c = 0; c < scores.size(); ++c)
    if (scores[c] > scores[static_cast<size_t>(truth)] ||
        (scores[c] == scores[static_cast<size_t>(truth)] && static_cast<int>(c) < truth))
      ++better;
  return better < k;
}

}  // namespace

std::vector<std::vector<int>> purchase_histories(const store::EventColumns& e, int64_t cutoff,
                                                 std::vector<std::string>& categories) {
  std::map<std::string, int> index;
  for (size_t i = 0; i < categories.size(); ++i) index.emplace(categories[i], static_cast<int>(i));
  std::vector<std::vector<int>> out(e.user_ids.size());
  const auto purchase = static_cast<uint8_t>(EventType::Purchase);
  for (size_t i = 0; i < e.size(); ++i) {
    if (e.type[i] != purchase || e.timestamp[i] >= cutoff) continue;
    const auto item = static_cast<size_t>(e.item[i]);
    const std::string& c = item < e.item_categories.size() ? e.item_categories[item] : std::string();
    if (c.empty()) continue;
    out[static_cast<size_t>(e.user[i])].push_back(index_of(categories, index, c));
  }
  return out;
}

std::vector<double> NextCategoryModel::scores(const std::vector<int>& history) const {
  const size_t k = categories_.size();
  std::vector<double> own(k, 0), s(k, 0);
  for (int c : history) own[static_cast<size_t>(c)] += 1.0 / static_cast<double>(history.size());
  const std::vector<double>* next = history.empty() ? nullptr : &transitions_[static_cast<size_t>(history.back())];
  for (size_t c = 0; c < k; ++c)
    s[c] = own_ * own[c] + transition_ * (next ? (*next)[c] : popularity_[c]) + (1 - own_ - transition_) * popularity_[c];
  return s;
}

NextCategoryModel NextCategoryModel::fit(const store::EventColumns& events, int64_t cutoff) {
  NextCategoryModel m;
  const auto histories = purchase_histories(events, cutoff, m.categories_);
  const size_t k = m.categories_.size();
  if (k == 0) throw std::invalid_argument("no purchases of items with a category before the cutoff");
  auto learn = [&](bool hold_last) {
    m.popularity_.assign(k, 0);
    m.transitions_.assign(k, std::vector<double>(k, 0));
    double total = 0;
    for (const auto& h : histories) {
      const size_t n = hold_last && !h.empty() ? h.size() - 1 : h.size();
      for (size_t i = 0; i < n; ++i) {
        m.popularity_[static_cast<size_t>(h[i])] += 1;
        total += 1;
        if (i > 0) m.transitions_[static_cast<size_t>(h[i - 1])][static_cast<size_t>(h[i])] += 1;
      }
    }
    for (auto& p : m.popularity_) p = total > 0 ? p / total : 1.0 / static_cast<double>(k);
    for (size_t a = 0; a < k; ++a) {
      const double row = std::accumulate(m.transitions_[a].begin(), m.transitions_[a].end(), 0.0);
      for (size_t b = 0; b < k; ++b) m.transitions_[a][b] = row > 0 ? m.transitions_[a][b] / row : m.popularity_[b];
    }
  };
  // Blend weights from predicting each customer's last training purchase.
  learn(true);
  double best = -1;
  double best_own = 0.5, best_transition = 0.3;
  for (int a = 0; a <= 10; ++a)
    for (int b = 0; a + b <= 10; ++b) {
      m.own_ = a / 10.0;
      m.transition_ = b / 10.0;
      int64_t hits = 0;
      for (const auto& h : histories) {
        if (h.size() < 2) continue;
        const std::vector<int> before(h.begin(), h.end() - 1);
        hits += in_top(m.scores(before), h.back(), 1);
      }
      if (hits > best) {
        best = static_cast<double>(hits);
        best_own = m.own_;
        best_transition = m.transition_;
      }
    }
  m.own_ = best_own;
  m.transition_ = best_transition;
  learn(false);
  return m;
}

std::vector<std::pair<std::string, double>> NextCategoryModel::predict(const std::vector<std::string>& history,
                                                                       size_t k) const {
  std::vector<int> h;
  for (const auto& name : history) {
    const auto it = std::find(categories_.begin(), categories_.end(), name);
    if (it != categories_.end()) h.push_back(static_cast<int>(it - categories_.begin()));
  }
  const auto s = scores(h);
  std::vector<size_t> order(s.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s[a] > s[b]; });
  std::vector<std::pair<std::string, double>> out;
  for (size_t i = 0; i < order.size() && i < k; ++i) out.emplace_back(categories_[order[i]], s[order[i]]);
  return out;
}

NextCategoryEvaluation NextCategoryModel::evaluate(const store::EventColumns& e, int64_t cutoff) const {
  std::vector<std::string> names = categories_;
  const auto before = purchase_histories(e, cutoff, names);
  // The first purchase at or after the cutoff, per customer.
  std::vector<int> next(e.user_ids.size(), -1);
  const auto purchase = static_cast<uint8_t>(EventType::Purchase);
  for (size_t i = 0; i < e.size(); ++i) {
    if (e.type[i] != purchase || e.timestamp[i] < cutoff || next[static_cast<size_t>(e.user[i])] >= 0) continue;
    const auto item = static_cast<size_t>(e.item[i]);
    const std::string& c = item < e.item_categories.size() ? e.item_categories[item] : std::string();
    const auto it = std::find(categories_.begin(), categories_.end(), c);
    if (it != categories_.end()) next[static_cast<size_t>(e.user[i])] = static_cast<int>(it - categories_.begin());
  }
  NextCategoryEvaluation r;
  const size_t popular = static_cast<size_t>(std::max_element(popularity_.begin(), popularity_.end()) - popularity_.begin());
  for (size_t u = 0; u < next.size(); ++u) {
    if (next[u] < 0 || before[u].empty()) continue;
    std::vector<int> h;
    for (int c : before[u])
      if (static_cast<size_t>(c) < categories_.size()) h.push_back(c);
    if (h.empty()) continue;
    ++r.customers;
    const auto s = scores(h);
    r.top1 += in_top(s, next[u], 1);
    r.top3 += in_top(s, next[u], 3);
    std::vector<double> own(categories_.size(), 0);
    for (int c : h) own[static_cast<size_t>(c)] += 1;
    r.frequent_top1 += in_top(own, next[u], 1);
    r.popular_top1 += static_cast<size_t>(next[u]) == popular;
  }
  if (r.customers > 0) {
    const double n = static_cast<double>(r.customers);
    r.top1 /= n;
    r.top3 /= n;
    r.frequent_top1 /= n;
    r.popular_top1 /= n;
  }
  return r;
}

nlohmann::json NextCategoryEvaluation::to_json() const {
  return {{"customers", customers}, {"top1", top1}, {"top3", top3},
          {"baseline_most_frequent_top1", frequent_top1}, {"baseline_most_popular_top1", popular_top1}};
}

void NextCategoryModel::save(const std::string& path, const nlohmann::json& metrics) const {
  ml::ModelHeader h;
  h.kind = "next-category";
  h.task = "next-category";
  h.schema = {{"categories", categories_}, {"own_weight", own_}, {"transition_weight", transition_}};
  h.metrics = metrics.is_null() ? nlohmann::json::object() : metrics;
  ByteWriter w;
  w.put<double>(own_);
  w.put<double>(transition_);
  w.put<uint32_t>(static_cast<uint32_t>(categories_.size()));
  for (const auto& c : categories_) w.put_string(c);
  w.put_vector(popularity_);
  for (const auto& row : transitions_) w.put_vector(row);
  ml::write_model_file(path, h, w.bytes());
}

NextCategoryModel NextCategoryModel::load(const std::string& path) {
  const auto file = ml::read_model_file(path, "next-category");
  try {
    ByteReader r(file.payload);
    NextCategoryModel m;
    m.own_ = r.get<double>();
    m.transition_ = r.get<double>();
    const auto k = r.get<uint32_t>();
    if (k > file.payload.size()) throw std::runtime_error("model payload is truncated");
    for (uint32_t i = 0; i < k; ++i) m.categories_.push_back(r.get_string());
    m.popularity_ = r.get_vector<double>();
    for (uint32_t i = 0; i < k; ++i) m.transitions_.push_back(r.get_vector<double>());
    if (m.popularity_.size() != k) throw std::runtime_error("model payload is inconsistent");
    for (const auto& row : m.transitions_)
      if (row.size() != k) throw std::runtime_error("model payload is inconsistent");
    return m;
  } catch (const std::exception& e) {
    throw std::runtime_error("model file " + path + ": " + e.what());
  }
}

}  // namespace persona::demand
