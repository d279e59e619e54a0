#include "persona/profile/segments.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>

namespace persona::profile {
namespace {

struct Clustering {
  std::vector<int> labels;
  Eigen::MatrixXd centroids;
  double inertia = std::numeric_limits<double>::infinity();
};

int nearest(const Eigen::MatrixXd& centroids, const Eigen::RowVectorXd& row, double* distance = nullptr) {
  Eigen::Index best = 0;
  const double d = (centroids.rowwise() - row).rowwise().squaredNorm().minCoeff(&best);
  if (distance) *distance = d;
  return static_cast<int>(best);
}

// k-means++ seeding (each next centre drawn with probability proportional to the squared
// distance to the nearest chosen one), then Lloyd iterations.
Clustering kmeans_once(const Eigen::MatrixXd& x, int k, int max_iterations, std::mt19937_64& rng) {
  const Eigen::Index n = x.rows();
  Clustering c;
  c.centroids.resize(k, x.cols());
  c.centroids.row(0) = x.row(static_cast<Eigen::Index>(rng() % static_cast<uint64_t>(n)));
  Eigen::VectorXd d2 = (x.rowwise() - c.centroids.row(0)).rowwise().squaredNorm();
  for (int j = 1; j < k; ++j) {
    const double total = d2.sum();
    Eigen::Index pick = 0;
    if (total > 0) {
      double target = std::uniform_real_distribution<double>(0, total)(rng);
      for (pick = 0; pick < n - 1; ++pick) {
        target -= d2(pick);
        if (target <= 0) break;
      }
    } else {
      pick = static_cast<Eigen::Index>(rng() % static_cast<uint64_t>(n));
    }
    c.centroids.row(j) = x.row(pick);
    d2 = d2.cwiseMin((x.rowwise() - c.centroids.row(j)).rowwise().squaredNorm());
  }
  c.labels.assign(static_cast<size_t>(n), -1);
  for (int it = 0; it < max_iterations; ++it) {
    bool changed = false;
    double inertia = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      double d = 0;
      const int l = nearest(c.centroids, x.row(i), &d);
      inertia += d;
      if (l != c.labels[static_cast<size_t>(i)]) {
        c.labels[static_cast<size_t>(i)] = l;
        changed = true;
      }
    }
    c.inertia = inertia;
    if (!changed) break;
    Eigen::MatrixXd sums = Eigen::MatrixXd::Zero(k, x.cols());
    std::vector<int> counts(static_cast<size_t>(k), 0);
    for (Eigen::Index i = 0; i < n; ++i) {
      sums.row(c.labels[static_cast<size_t>(i)]) += x.row(i);
      ++counts[static_cast<size_t>(c.labels[static_cast<size_t>(i)])];
    }
    for (int j = 0; j < k; ++j)
      if (counts[static_cast<size_t>(j)] > 0) c.centroids.row(j) = sums.row(j) / counts[static_cast<size_t>(j)];
  }
  return c;
}

Clustering kmeans(const Eigen::MatrixXd& x, int k, const SegmentOptions& o, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Clustering best;
  for (int r = 0; r < std::max(1, o.restarts); ++r) {
    auto c = kmeans_once(x, k, o.max_iterations, rng);
    if (c.inertia < best.inertia) best = std::move(c);
  }
  return best;
}

double median_of(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::vector<Share> top_of(const std::map<std::string, double>& totals, double denominator, size_t n) {
  std::vector<Share> v;
  for (const auto& [name, x] : totals) v.push_back({name, denominator > 0 ? x / denominator : 0});
  std::sort(v.begin(), v.end(), [](const Share& a, const Share& b) { return a.share != b.share ? a.share > b.share : a.name < b.name; });
  if (v.size() > n) v.resize(n);
  return v;
}

}  // namespace

const std::vector<std::string>& segment_features() {
  static const std::vector<std::string> names = {
      "recency_days", "frequency", "monetary", "basket_value", "tenure_days", "events", "events_30d",
      "cart_rate", "purchase_rate", "return_rate", "price_sensitivity", "sentiment", "weekend_share"};
  return names;
}

// Counts and money are skewed: log1p. Users without purchases count as not having bought since
// they arrived; absent rates as none, absent price sensitivity as typical, sentiment as neutral.
std::vector<double> segment_vector(const UserProfile& p) {
  const double recency = p.recency_days ? static_cast<double>(*p.recency_days) : static_cast<double>(p.tenure_days);
  const double basket = p.frequency > 0 ? p.monetary / static_cast<double>(p.frequency) : 0;
  return {std::log1p(std::max(0.0, recency)),
          std::log1p(static_cast<double>(p.frequency)),
          std::log1p(std::max(0.0, p.monetary)),
          std::log1p(std::max(0.0, basket)),
          std::log1p(static_cast<double>(p.tenure_days)),
          std::log1p(static_cast<double>(p.events)),
          std::log1p(static_cast<double>(p.events_30d)),
          p.cart_rate.value_or(0),
          p.purchase_rate.value_or(0),
          std::min(1.0, p.return_rate.value_or(0)),
          std::min(3.0, p.price_sensitivity.value_or(1)),
          p.sentiment.value_or(0.5),
          p.weekend_share};
}

double silhouette(const Eigen::MatrixXd& x, const std::vector<int>& labels, int k) {
  const Eigen::Index n = x.rows();
  if (n < 2 || k < 2) return 0;
  std::vector<size_t> sizes(static_cast<size_t>(k), 0);
  for (int l : labels) ++sizes[static_cast<size_t>(l)];
  double total = 0;
  std::vector<double> sum(static_cast<size_t>(k));
  for (Eigen::Index i = 0; i < n; ++i) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (Eigen::Index j = 0; j < n; ++j)
      if (j != i) sum[static_cast<size_t>(labels[static_cast<size_t>(j)])] += (x.row(i) - x.row(j)).norm();
    const auto own = static_cast<size_t>(labels[static_cast<size_t>(i)]);
    if (sizes[own] <= 1) continue;  // a singleton scores 0
    const double a = sum[own] / static_cast<double>(sizes[own] - 1);
    double b = std::numeric_limits<double>::infinity();
    for (size_t c = 0; c < sizes.size(); ++c)
      if (c != own && sizes[c] > 0) b = std::min(b, sum[c] / static_cast<double>(sizes[c]));
    if (std::isfinite(b) && std::max(a, b) > 0) total += (b - a) / std::max(a, b);
  }
  return total / static_cast<double>(n);
}

int SegmentModel::assign(const UserProfile& p) const {
  if (centroids.rows() == 0) return -1;
  const auto v = segment_vector(p);
  Eigen::RowVectorXd row(static_cast<Eigen::Index>(v.size()));
  for (size_t j = 0; j < v.size(); ++j) row(static_cast<Eigen::Index>(j)) = (v[j] - mean[j]) / scale[j];
  return nearest(centroids, row);
}

SegmentModel segment_profiles(std::vector<UserProfile>& profiles, const SegmentOptions& o) {
  SegmentModel model;
  model.features = segment_features();
  const size_t d = model.features.size(), n = profiles.size();
  Eigen::MatrixXd x(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  for (size_t i = 0; i < n; ++i) {
    const auto v = segment_vector(profiles[i]);
    for (size_t j = 0; j < d; ++j) x(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = v[j];
  }
  model.mean.assign(d, 0);
  model.scale.assign(d, 1);
  for (size_t j = 0; j < d && n > 0; ++j) {
    const auto col = x.col(static_cast<Eigen::Index>(j));
    model.mean[j] = col.mean();
    const double sd = std::sqrt((col.array() - model.mean[j]).square().mean());
    model.scale[j] = sd > 1e-12 ? sd : 1;
    x.col(static_cast<Eigen::Index>(j)) = (col.array() - model.mean[j]) / model.scale[j];
  }

  int k = o.k;
  if (n < 2) {
    k = 1;
  } else if (k <= 0) {
    // Choose k on a seeded sample: the silhouette is quadratic in the users it looks at.
    std::vector<size_t> rows(n);
    std::iota(rows.begin(), rows.end(), 0);
    std::mt19937_64 rng(o.seed);
    std::shuffle(rows.begin(), rows.end(), rng);
    rows.resize(std::min(n, std::max<size_t>(o.sample, 10)));
    std::sort(rows.begin(), rows.end());
    Eigen::MatrixXd s(static_cast<Eigen::Index>(rows.size()), x.cols());
    for (size_t i = 0; i < rows.size(); ++i) s.row(static_cast<Eigen::Index>(i)) = x.row(static_cast<Eigen::Index>(rows[i]));
    const size_t silhouette_rows = std::min<size_t>(rows.size(), 2000);
    double best = -2;
    for (int kk = std::max(2, o.k_min); kk <= std::min<int>(o.k_max, static_cast<int>(rows.size()) - 1); ++kk) {
      const auto c = kmeans(s, kk, o, o.seed + static_cast<uint64_t>(kk));
      const std::vector<int> labels(c.labels.begin(), c.labels.begin() + static_cast<long>(silhouette_rows));
      const double score = silhouette(s.topRows(static_cast<Eigen::Index>(silhouette_rows)), labels, kk);
      model.silhouette_by_k.emplace_back(kk, score);
      if (score > best + 1e-9) {
        best = score;
        k = kk;
      }
    }
    if (k <= 0) k = 1;
  }
  k = std::max(1, std::min<int>(k, static_cast<int>(std::max<size_t>(n, 1))));
  Clustering c;
  if (n > 0) c = kmeans(x, k, o, o.seed);

  // Stable ids: clusters numbered by size (largest first), ties by centroid.
  std::vector<size_t> sizes(static_cast<size_t>(k), 0);
  for (int l : c.labels) ++sizes[static_cast<size_t>(l)];
  std::vector<int> order(static_cast<size_t>(k));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    if (sizes[static_cast<size_t>(a)] != sizes[static_cast<size_t>(b)]) return sizes[static_cast<size_t>(a)] > sizes[static_cast<size_t>(b)];
    for (Eigen::Index j = 0; j < c.centroids.cols(); ++j)
      if (c.centroids(a, j) != c.centroids(b, j)) return c.centroids(a, j) < c.centroids(b, j);
    return a < b;
  });
  std::vector<int> new_id(static_cast<size_t>(k));
  model.centroids.resize(k, static_cast<Eigen::Index>(d));
  for (int i = 0; i < k; ++i) {
    new_id[static_cast<size_t>(order[static_cast<size_t>(i)])] = i;
    if (n > 0) model.centroids.row(i) = c.centroids.row(order[static_cast<size_t>(i)]);
  }
  for (size_t i = 0; i < n; ++i) profiles[i].segment = new_id[static_cast<size_t>(c.labels[i])];
  if (k >= 2 && n > 0) {
    const size_t rows = std::min<size_t>(n, 2000);
    std::vector<int> labels(rows);
    for (size_t i = 0; i < rows; ++i) labels[i] = profiles[i].segment;
    model.silhouette = silhouette(x.topRows(static_cast<Eigen::Index>(rows)), labels, k);
  }

  // Summaries in readable units.
  for (int s = 0; s < k; ++s) {
    SegmentSummary sum;
    sum.id = s;
    std::vector<std::vector<double>> columns(d);
    std::map<std::string, double> cats, tags, rfm;
    for (const auto& p : profiles) {
      if (p.segment != s) continue;
      ++sum.size;
      const double recency = p.recency_days ? static_cast<double>(*p.recency_days) : std::nan("");
      const std::vector<double> raw = {recency, static_cast<double>(p.frequency), p.monetary,
                                       p.frequency > 0 ? p.monetary / static_cast<double>(p.frequency) : std::nan(""),
                                       static_cast<double>(p.tenure_days), static_cast<double>(p.events),
                                       static_cast<double>(p.events_30d), p.cart_rate.value_or(std::nan("")),
                                       p.purchase_rate.value_or(std::nan("")), p.return_rate.value_or(std::nan("")),
                                       p.price_sensitivity.value_or(std::nan("")), p.sentiment.value_or(std::nan("")),
                                       p.weekend_share};
      for (size_t j = 0; j < d; ++j) columns[j].push_back(raw[j]);
      for (const auto& cshare : p.categories) cats[cshare.name] += cshare.share;
      for (const auto& t : p.tags) tags[t] += 1;
      rfm[p.rfm_segment] += 1;
    }
    sum.share = n ? static_cast<double>(sum.size) / static_cast<double>(n) : 0;
    for (size_t j = 0; j < d; ++j) {
      const double m = median_of(columns[j]);
      sum.centroid[model.features[j]] = std::isfinite(m) ? nlohmann::json(std::round(m * 1000) / 1000) : nlohmann::json(nullptr);
    }
    const double size = static_cast<double>(sum.size);
    sum.top_categories = top_of(cats, size, 3);
    sum.tags = top_of(tags, size, 5);
    // Typical tags: held by at least one member in twenty.
    sum.tags.erase(std::remove_if(sum.tags.begin(), sum.tags.end(), [](const Share& t) { return t.share < 0.05; }),
                   sum.tags.end());
    sum.rfm_segments = top_of(rfm, size, 3);
    // The two features whose scaled centroid is farthest from the average user.
    std::vector<size_t> feats(d);
    std::iota(feats.begin(), feats.end(), 0);
    std::sort(feats.begin(), feats.end(), [&](size_t a, size_t b) {
      return std::abs(model.centroids(s, static_cast<Eigen::Index>(a))) > std::abs(model.centroids(s, static_cast<Eigen::Index>(b)));
    });
    for (size_t i = 0; i < std::min<size_t>(2, d); ++i) {
      const double z = model.centroids(s, static_cast<Eigen::Index>(feats[i]));
      if (std::abs(z) < 0.25) break;
      sum.label += fmt::format("{}{} {}", sum.label.empty() ? "" : ", ", z > 0 ? "high" : "low", model.features[feats[i]]);
    }
    if (sum.label.empty()) sum.label = "typical";
    model.segments.push_back(std::move(sum));
  }
  return model;
}

nlohmann::json SegmentModel::to_json() const {
  nlohmann::json segs = nlohmann::json::array();
  for (const auto& s : segments)
    segs.push_back({{"id", s.id}, {"label", s.label}, {"size", s.size}, {"share", s.share}, {"centroid", s.centroid},
                    {"top_categories", shares_to_json(s.top_categories)}, {"tags", shares_to_json(s.tags)},
                    {"rfm_segments", shares_to_json(s.rfm_segments)}});
  std::vector<std::vector<double>> rows;
  for (Eigen::Index i = 0; i < centroids.rows(); ++i) {
    rows.emplace_back();
    for (Eigen::Index j = 0; j < centroids.cols(); ++j) rows.back().push_back(centroids(i, j));
  }
  nlohmann::json by_k = nlohmann::json::array();
  for (const auto& [k, s] : silhouette_by_k) by_k.push_back({{"k", k}, {"silhouette", s}});
  return {{"features", features}, {"mean", mean}, {"scale", scale}, {"centroids", rows}, {"segments", segs},
          {"silhouette", silhouette}, {"silhouette_by_k", by_k}};
}

SegmentModel SegmentModel::from_json(const nlohmann::json& j) {
  SegmentModel m;
  m.features = j.at("features").get<std::vector<std::string>>();
  m.mean = j.at("mean").get<std::vector<double>>();
  m.scale = j.at("scale").get<std::vector<double>>();
  const auto rows = j.at("centroids").get<std::vector<std::vector<double>>>();
  m.centroids.resize(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(m.features.size()));
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t k = 0; k < rows[i].size() && k < m.features.size(); ++k)
      m.centroids(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k)) = rows[i][k];
  for (const auto& s : j.at("segments")) {
    SegmentSummary sum;
    sum.id = s.at("id");
    sum.label = s.at("label");
    sum.size = s.at("size");
    sum.share = s.at("share");
    sum.centroid = s.at("centroid");
    sum.top_categories = shares_from_json(s.at("top_categories"));
    sum.tags = shares_from_json(s.at("tags"));
    sum.rfm_segments = shares_from_json(s.at("rfm_segments"));
    m.segments.push_back(std::move(sum));
  }
  m.silhouette = j.value("silhouette", 0.0);
  for (const auto& e : j.value("silhouette_by_k", nlohmann::json::array())) m.silhouette_by_k.emplace_back(e.at("k"), e.at("silhouette"));
  if (m.mean.size() != m.features.size() || m.scale.size() != m.features.size())
    throw std::runtime_error("segment model: feature sizes do not match");
  return m;
}

}  // namespace persona::profile
