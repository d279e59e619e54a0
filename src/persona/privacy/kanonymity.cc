#include "persona/privacy/kanonymity.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace persona::privacy {
namespace {

using Rows = std::vector<uint32_t>;

struct Data {
  const std::vector<QuasiIdentifier>& qis;
  std::vector<std::vector<double>> number;  // numeric QIs (NaN: missing)
  std::vector<std::vector<int>> node;       // categorical QIs: the value's leaf
  std::vector<double> low, high;            // numeric QIs' global range
  std::vector<int> sensitive;               // sensitive value codes (empty: no l-diversity)
  int k, l;
};

int distinct(const Data& d, const Rows& rows) {
  if (d.sensitive.empty()) return std::numeric_limits<int>::max();
  std::unordered_set<int> seen;
  for (auto r : rows) seen.insert(d.sensitive[r]);
  return static_cast<int>(seen.size());
}

bool acceptable(const Data& d, const Rows& rows) {
  return rows.size() >= static_cast<size_t>(d.k) && (d.l <= 1 || distinct(d, rows) >= d.l);
}

int common_ancestor(const Data& d, size_t q, const Rows& rows) {
  const auto& h = d.qis[q].hierarchy;
  int a = d.node[q][rows.front()];
  for (auto r : rows) a = h.lowest_common_ancestor(a, d.node[q][r]);
  return a;
}

// A quasi-identifier generalised as far as these rows need: the range of a numeric one (the whole
// domain when a value is missing), the lowest common ancestor of a categorical one, and what that
// costs in NCP (0..1). The cost is also how much of its domain the quasi-identifier spans here,
// which decides where Mondrian splits.
struct Generalisation {
  double lo = INFINITY, hi = -INFINITY;
  bool missing = false;
  int ancestor = -1;
  double cost = 0;
};

Generalisation generalise(const Data& d, size_t q, const Rows& rows) {
  Generalisation g;
  if (d.qis[q].numeric) {
    for (auto r : rows) {
      const double v = d.number[q][r];
      if (std::isnan(v)) g.missing = true;
      else g.lo = std::min(g.lo, v), g.hi = std::max(g.hi, v);
    }
    const double range = d.high[q] - d.low[q];
    g.cost = g.missing ? 1.0 : range > 0 ? (g.hi - g.lo) / range : 0.0;
    return g;
  }
  const auto& h = d.qis[q].hierarchy;
  g.ancestor = common_ancestor(d, q, rows);
  g.cost = h.is_leaf(g.ancestor) ? 0.0 : static_cast<double>(h.leaves_under(g.ancestor)) / static_cast<double>(h.leaf_count());
  return g;
}

// The cut nearest the median that leaves both sides acceptable (missing values go right).
std::vector<Rows> split_numeric(const Data& d, size_t q, const Rows& rows) {
  Rows sorted = rows;
  const auto& v = d.number[q];
  std::sort(sorted.begin(), sorted.end(), [&](uint32_t a, uint32_t b) {
    const bool na = std::isnan(v[a]), nb = std::isnan(v[b]);
    return na != nb ? nb : (!na && v[a] < v[b]);
  });
  const size_t n = sorted.size();
  std::vector<int> left_distinct(n + 1, 0), right_distinct(n + 1, 0);
  if (d.l > 1) {
    std::unordered_set<int> seen;
    for (size_t i = 0; i < n; ++i) seen.insert(d.sensitive[sorted[i]]), left_distinct[i + 1] = static_cast<int>(seen.size());
    seen.clear();
    for (size_t i = n; i-- > 0;) seen.insert(d.sensitive[sorted[i]]), right_distinct[i] = static_cast<int>(seen.size());
  }
  size_t best = 0;
  double best_distance = INFINITY;
  const size_t k = static_cast<size_t>(d.k);
  for (size_t j = k; j + k <= n; ++j) {
    const double a = v[sorted[j - 1]], b = v[sorted[j]];
    if (std::isnan(a) || (!std::isnan(b) && a == b)) continue;  // not a boundary between values
    if (d.l > 1 && (left_distinct[j] < d.l || right_distinct[j] < d.l)) continue;
    const double distance = std::abs(static_cast<double>(j) - static_cast<double>(n) / 2);
    if (distance < best_distance) best_distance = distance, best = j;
  }
  if (best == 0) return {};
  return {Rows(sorted.begin(), sorted.begin() + static_cast<long>(best)), Rows(sorted.begin() + static_cast<long>(best), sorted.end())};
}

// One part per child of the rows' common ancestor that is acceptable alone; the other children's
// rows together (or, when too few, joined to the smallest part).
std::vector<Rows> split_categorical(const Data& d, size_t q, const Rows& rows) {
  const auto& h = d.qis[q].hierarchy;
  const int a = common_ancestor(d, q, rows);
  if (h.is_leaf(a)) return {};
  std::map<int, Rows> by_child;
  for (auto r : rows) by_child[h.child_towards(a, d.node[q][r])].push_back(r);
  std::vector<Rows> parts;
  Rows rest;
  for (auto& [child, part] : by_child) {
    if (acceptable(d, part)) parts.push_back(std::move(part));
    else rest.insert(rest.end(), part.begin(), part.end());
  }
  if (!rest.empty()) {
    if (acceptable(d, rest)) {
      parts.push_back(std::move(rest));
    } else {
      if (parts.empty()) return {};
      auto smallest = std::min_element(parts.begin(), parts.end(), [](const Rows& x, const Rows& y) { return x.size() < y.size(); });
      smallest->insert(smallest->end(), rest.begin(), rest.end());
    }
  }
  if (parts.size() < 2) return {};
  return parts;
}

std::string format_number(double v) {
  return v == std::floor(v) && std::abs(v) < 1e15 ? fmt::format("{}", static_cast<int64_t>(v)) : fmt::format("{:g}", v);
}

}  // namespace

KAnonymityResult k_anonymize(const std::vector<std::vector<std::string>>& table, std::vector<QuasiIdentifier>& qis,
                             const std::vector<size_t>& qi_columns, const KAnonymityOptions& options) {
  if (options.k < 1) throw std::invalid_argument("k must be at least 1");
  if (qis.size() != qi_columns.size()) throw std::invalid_argument("one column per quasi-identifier");
  const size_t n = table.size();
  Data d{qis, {}, {}, {}, {}, {}, options.k, options.l};
  d.number.resize(qis.size());
  d.node.resize(qis.size());
  d.low.assign(qis.size(), INFINITY);
  d.high.assign(qis.size(), -INFINITY);
  auto cell = [&](size_t row, size_t column) -> const std::string& {
    static const std::string empty;
    return column < table[row].size() ? table[row][column] : empty;
  };
  for (size_t q = 0; q < qis.size(); ++q) {
    if (qis[q].numeric) {
      d.number[q].resize(n);
      for (size_t r = 0; r < n; ++r) {
        const auto& s = cell(r, qi_columns[q]);
        char* end = nullptr;
        double v = s.empty() ? NAN : std::strtod(s.c_str(), &end);
        if (!s.empty() && (end == s.c_str() || *end != '\0' || !std::isfinite(v))) v = NAN;
        d.number[q][r] = v;
        if (!std::isnan(v)) d.low[q] = std::min(d.low[q], v), d.high[q] = std::max(d.high[q], v);
      }
    } else {
      d.node[q].resize(n);
      for (size_t r = 0; r < n; ++r) d.node[q][r] = qis[q].hierarchy.leaf(cell(r, qi_columns[q]));
    }
  }
  if (options.sensitive) {
    std::unordered_map<std::string, int> codes;
    for (size_t r = 0; r < n; ++r) d.sensitive.push_back(codes.try_emplace(cell(r, *options.sensitive), static_cast<int>(codes.size())).first->second);
  }

  // Suppression: the rows whose rarest categorical value is rarest go first, within the budget.
  KAnonymityResult result;
  result.suppressed.assign(n, false);
  if (options.max_suppressed > 0) {
    std::vector<std::unordered_map<int, size_t>> counts(qis.size());
    for (size_t q = 0; q < qis.size(); ++q)
      if (!qis[q].numeric)
        for (size_t r = 0; r < n; ++r) ++counts[q][d.node[q][r]];
    std::vector<std::pair<size_t, uint32_t>> rarity;
    for (size_t r = 0; r < n; ++r) {
      size_t rarest = n;
      for (size_t q = 0; q < qis.size(); ++q)
        if (!qis[q].numeric) rarest = std::min(rarest, counts[q][d.node[q][r]]);
      if (rarest < static_cast<size_t>(options.k)) rarity.emplace_back(rarest, static_cast<uint32_t>(r));
    }
    std::sort(rarity.begin(), rarity.end());
    for (size_t i = 0; i < rarity.size() && i < options.max_suppressed; ++i) result.suppressed[rarity[i].second] = true;
  }
  Rows all;
  for (size_t r = 0; r < n; ++r)
    if (!result.suppressed[r]) all.push_back(static_cast<uint32_t>(r));
  result.suppressed_rows = n - all.size();
  if (all.size() < static_cast<size_t>(options.k))
    throw std::invalid_argument(fmt::format("{} rows cannot form classes of {}", all.size(), options.k));
  if (options.l > 1 && distinct(d, all) < options.l)
    throw std::invalid_argument(fmt::format("the sensitive column has fewer than {} distinct values", options.l));

  // Mondrian: split the widest quasi-identifier that can be split, until none can.
  std::vector<Rows> stack{std::move(all)}, classes;
  while (!stack.empty()) {
    Rows rows = std::move(stack.back());
    stack.pop_back();
    std::vector<std::pair<double, size_t>> dims;
    for (size_t q = 0; q < qis.size(); ++q)
      if (const double w = generalise(d, q, rows).cost; w > 0) dims.emplace_back(w, q);
    std::sort(dims.begin(), dims.end(), [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    std::vector<Rows> parts;
    for (const auto& [w, q] : dims) {
      parts = qis[q].numeric ? split_numeric(d, q, rows) : split_categorical(d, q, rows);
      if (!parts.empty()) break;
    }
    if (parts.empty()) classes.push_back(std::move(rows));
    else for (auto& p : parts) stack.push_back(std::move(p));
  }

  // Each class generalised as far as its own rows need.
  result.generalised.assign(n, {});
  result.ncp_by_qi.assign(qis.size(), 0);
  result.min_class_size = n;
  result.min_diversity = options.sensitive ? std::numeric_limits<int>::max() : 0;
  std::map<std::vector<std::string>, size_t> released;
  for (const auto& rows : classes) {
    std::vector<std::string> values(qis.size());
    for (size_t q = 0; q < qis.size(); ++q) {
      const auto g = generalise(d, q, rows);
      if (!qis[q].numeric) values[q] = qis[q].hierarchy.name(g.ancestor);
      else if (g.missing) values[q] = "*";
      else values[q] = g.lo == g.hi ? format_number(g.lo) : format_number(g.lo) + "-" + format_number(g.hi);
      result.ncp_by_qi[q] += g.cost * static_cast<double>(rows.size());
    }
    for (auto r : rows) result.generalised[r] = values;
    released[values] += rows.size();
    if (options.sensitive) result.min_diversity = std::min(result.min_diversity, distinct(d, rows));
  }
  const double kept = static_cast<double>(n - result.suppressed_rows);
  double total = 0;
  for (auto& c : result.ncp_by_qi) total += c /= kept;
  result.ncp = qis.empty() ? 0 : total / static_cast<double>(qis.size());
  result.classes = released.size();
  for (const auto& [values, size] : released) result.min_class_size = std::min(result.min_class_size, size);
  return result;
}

}  // namespace persona::privacy
