#pragma once
// Normalisers for numeric features: fit on one set (say training data), apply to another, and
// save the fitted parameters with the dataset so later stages apply exactly the same transform.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace persona::prep {

class Normaliser {
 public:
  enum class Method { MinMax, ZScore, Robust, Log1p };

  explicit Normaliser(Method method = Method::ZScore) : method_(method) {}
  static Method parse_method(const std::string& name);  // minmax | zscore | robust | log1p
  static const char* method_name(Method m);

  // Non-finite values are ignored when fitting. Fitting on nothing is an error.
  void fit(const std::vector<double>& values);
  double apply(double x) const;
  std::vector<double> apply(const std::vector<double>& values) const;
  double invert(double y) const;

  Method method() const { return method_; }
  bool fitted() const { return fitted_; }
  nlohmann::json to_json() const;
  static Normaliser from_json(const nlohmann::json& j);  // throws persona::Error on bad input

 private:
  Method method_;
  bool fitted_ = false;
  double center_ = 0, scale_ = 1;  // y = (x - center) / scale; log1p: y = log1p(max(x, 0))
  size_t count_ = 0;
};

}  // namespace persona::prep
