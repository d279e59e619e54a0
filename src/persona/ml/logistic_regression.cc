// Logistic regression with L2 (penalty ||w||^2 / (2C), bias free), fitted by Newton's method:
// exact and fast for the tens of features tabular tasks have. Several classes: one against the
// rest, probabilities normalised.
#include <cmath>

#include "persona/core/binary_io.h"
#include "persona/ml/tabular.h"

namespace persona::ml {

Params merge_params(const std::string& kind, const Params& defaults, const Params& given);

namespace {

class LogisticRegression : public TabularClassifier {
 public:
  explicit LogisticRegression(Params p) : params_(std::move(p)) {}
  std::string kind() const override { return "logistic"; }
  nlohmann::json params() const override { return params_; }

  void fit(const TabularData& data) override {
    scaler_.fit(data.x, params_.at("log_skewed") != 0);
    const Matrix x = scaler_.apply(data.x);
    classes_ = data.classes();
    const int fits = classes_ == 2 ? 1 : classes_;
    weights_.resize(fits, x.cols() + 1);
    for (int c = 0; c < fits; ++c) {
      Eigen::VectorXd y(x.rows());
      for (Eigen::Index i = 0; i < x.rows(); ++i)
        y(i) = data.y[static_cast<size_t>(i)] == (classes_ == 2 ? 1 : c) ? 1.0 : 0.0;
      weights_.row(c) = fit_binary(x, y).transpose();
    }
  }

  Matrix predict_proba(const Matrix& raw) const override {
    const Matrix x = scaler_.apply(raw);
    Matrix p(x.rows(), classes_);
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      if (classes_ == 2) {
        const double z = weights_.row(0).head(x.cols()).dot(x.row(i).cast<double>()) + weights_(0, x.cols());
        p(i, 1) = static_cast<float>(1 / (1 + std::exp(-z)));
        p(i, 0) = 1 - p(i, 1);
        continue;
      }
      double sum = 0;
      for (int c = 0; c < classes_; ++c) {
        const double z = weights_.row(c).head(x.cols()).dot(x.row(i).cast<double>()) + weights_(c, x.cols());
        sum += p(i, c) = static_cast<float>(1 / (1 + std::exp(-z)));
      }
      p.row(i) /= static_cast<float>(sum);
    }
    return p;
  }

  std::string to_bytes() const override {
    ByteWriter w;
    w.put<int32_t>(classes_);
    w.put<int64_t>(weights_.rows());
    w.put<int64_t>(weights_.cols());
    for (Eigen::Index i = 0; i < weights_.size(); ++i) w.put<double>(weights_.data()[i]);
    scaler_.write(w);
    return std::move(w.bytes());
  }
  void from_bytes(std::string_view bytes) override {
    ByteReader r(bytes);
    classes_ = r.get<int32_t>();
    const auto rows = r.get<int64_t>(), cols = r.get<int64_t>();
    const auto size = static_cast<int64_t>(bytes.size());
    if (rows <= 0 || cols <= 0 || rows > size || cols > size || rows * cols * 8 > size)
      throw std::runtime_error("model payload is truncated");
    weights_.resize(rows, cols);
    for (Eigen::Index i = 0; i < weights_.size(); ++i) weights_.data()[i] = r.get<double>();
    scaler_.read(r, cols - 1);
  }

 private:
  Eigen::VectorXd fit_binary(const Matrix& xf, const Eigen::VectorXd& y) const {
    const Eigen::Index n = xf.rows(), d = xf.cols();
    Eigen::MatrixXd x(n, d + 1);
    x.leftCols(d) = xf.cast<double>();
    x.col(d).setOnes();
    const double lambda = 1.0 / params_.at("C");
    Eigen::VectorXd w = Eigen::VectorXd::Zero(d + 1);
    for (int iter = 0; iter < static_cast<int>(params_.at("max_iter")); ++iter) {
      const Eigen::VectorXd z = x * w;
      const Eigen::VectorXd p = z.unaryExpr([](double v) { return 1 / (1 + std::exp(-v)); });
      Eigen::VectorXd grad = x.transpose() * (p - y);
      grad.head(d) += lambda * w.head(d);
      const Eigen::VectorXd s = (p.array() * (1 - p.array())).matrix();
      Eigen::MatrixXd h = x.transpose() * s.asDiagonal() * x;
      h.diagonal().head(d).array() += lambda;
      h.diagonal().array() += 1e-9;
      const Eigen::VectorXd step = h.ldlt().solve(grad);
      w -= step;
      if (step.cwiseAbs().maxCoeff() < 1e-8) break;
    }
    return w;
  }

  Params params_;
  Standardizer scaler_;
  int classes_ = 2;
  Eigen::MatrixXd weights_;  // one row per fitted class: weights, then bias
};

}  // namespace

std::unique_ptr<TabularClassifier> make_logistic(const Params& params) {
  return std::make_unique<LogisticRegression>(merge_params("logistic", {{"C", 1.0}, {"max_iter", 100}, {"log_skewed", 1}}, params));
}

}  // namespace persona::ml
