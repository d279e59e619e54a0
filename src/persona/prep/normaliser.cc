#include "persona/prep/normaliser.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "persona/core/error.h"

namespace persona::prep {
namespace {
double quantile_sorted(const std::vector<double>& v, double q) {
  const double pos = q * (v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  if (lo + 1 >= v.size()) return v[lo];
  return v[lo] + (v[lo + 1] - v[lo]) * (pos - lo);
}
}  // namespace

Normaliser::Method Normaliser::parse_method(const std::string& name) {
  if (name == "minmax" || name == "min-max") return Method::MinMax;
  if (name == "zscore" || name == "z-score" || name == "standard") return Method::ZScore;
  if (name == "robust") return Method::Robust;
  if (name == "log1p" || name == "log") return Method::Log1p;
  throw Error(fmt::format("unknown normaliser \"{}\"", name), {}, "use minmax, zscore, robust or log1p");
}

const char* Normaliser::method_name(Method m) {
  switch (m) {
    case Method::MinMax: return "minmax";
    case Method::ZScore: return "zscore";
    case Method::Robust: return "robust";
    case Method::Log1p: return "log1p";
  }
  return "?";
}

void Normaliser::fit(const std::vector<double>& values) {
  std::vector<double> v;
  v.reserve(values.size());
  for (double x : values)
    if (std::isfinite(x)) v.push_back(x);
  if (v.empty()) throw Error("cannot fit a normaliser on no (finite) values");
  count_ = v.size();
  switch (method_) {
    case Method::MinMax: {
      auto [lo, hi] = std::minmax_element(v.begin(), v.end());
      center_ = *lo;
      scale_ = *hi - *lo;
      break;
    }
    case Method::ZScore: {
      double mean = 0;
      for (double x : v) mean += x;
      mean /= v.size();
      double sq = 0;
      for (double x : v) sq += (x - mean) * (x - mean);
      center_ = mean;
      scale_ = std::sqrt(sq / v.size());  // population sd, as scikit-learn's StandardScaler
      break;
    }
    case Method::Robust: {
      std::sort(v.begin(), v.end());
      center_ = quantile_sorted(v, 0.5);
      scale_ = quantile_sorted(v, 0.75) - quantile_sorted(v, 0.25);
      break;
    }
    case Method::Log1p:
      center_ = 0;
      scale_ = 1;
      break;
  }
  if (!(scale_ > 0)) scale_ = 1;  // a constant feature maps to 0, not to NaN
  fitted_ = true;
}

double Normaliser::apply(double x) const {
  if (!fitted_) throw Error("normaliser used before it was fitted");
  if (method_ == Method::Log1p) return std::log1p(std::max(x, 0.0));
  return (x - center_) / scale_;
}

std::vector<double> Normaliser::apply(const std::vector<double>& values) const {
  std::vector<double> out;
  out.reserve(values.size());
  for (double x : values) out.push_back(apply(x));
  return out;
}

double Normaliser::invert(double y) const {
  if (method_ == Method::Log1p) return std::expm1(y);
  return y * scale_ + center_;
}

nlohmann::json Normaliser::to_json() const {
  return {{"method", method_name(method_)}, {"center", center_}, {"scale", scale_}, {"count", count_},
          {"fitted", fitted_}};
}

Normaliser Normaliser::from_json(const nlohmann::json& j) {
  try {
    Normaliser n(parse_method(j.at("method").get<std::string>()));
    n.center_ = j.at("center").get<double>();
    n.scale_ = j.at("scale").get<double>();
    n.count_ = j.value("count", size_t{0});
    n.fitted_ = j.value("fitted", true);
    if (!std::isfinite(n.center_) || !std::isfinite(n.scale_) || n.scale_ <= 0)
      throw Error("normaliser parameters are not finite and positive");
    return n;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("cannot read a saved normaliser: {}", e.what()));
  }
}

}  // namespace persona::prep
