// A multilayer perceptron on Eigen: ReLU hidden layers, a sigmoid (two classes) or softmax
// output, cross-entropy loss with L2, mini-batches, Adam or SGD with momentum, early stopping
// on a validation split (the best epoch's weights are kept). Mini-batches are split across
// threads when they are large enough to pay for it.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>
#include <thread>

#include "persona/core/binary_io.h"
#include "persona/ml/tabular.h"

namespace persona::ml {

Params merge_params(const std::string& kind, const Params& defaults, const Params& given);

namespace {

using Mat = Eigen::MatrixXf;  // column-major for the GEMMs
using Row = Eigen::RowVectorXf;

struct Layers {
  std::vector<Mat> w;
  std::vector<Row> b;
  void zero_like(const Layers& o) {
    w.resize(o.w.size());
    b.resize(o.b.size());
    for (size_t l = 0; l < o.w.size(); ++l) {
      w[l] = Mat::Zero(o.w[l].rows(), o.w[l].cols());
      b[l] = Row::Zero(o.b[l].cols());
    }
  }
};

class Mlp : public TabularClassifier {
 public:
  explicit Mlp(Params p) : params_(std::move(p)) {}
  std::string kind() const override { return "mlp"; }
  nlohmann::json params() const override {
    nlohmann::json j = params_;
    j["epochs_run"] = epochs_run_;
    return j;
  }

  void fit(const TabularData& data) override {
    if (data.rows() == 0) throw std::invalid_argument("no training rows");
    classes_ = data.classes();
    scaler_.fit(data.x, params_.at("log_skewed") != 0);
    const Mat x = scaler_.apply(data.x);
    const Eigen::Index outputs = classes_ == 2 ? 1 : classes_;
    Mat y = Mat::Zero(x.rows(), outputs);
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      const int c = data.y[static_cast<size_t>(i)];
      if (classes_ == 2) y(i, 0) = static_cast<float>(c);
      else y(i, c) = 1;
    }
    std::mt19937_64 rng(static_cast<uint64_t>(params_.at("seed")));
    init(x.cols(), outputs, rng);

    // Validation rows for early stopping.
    std::vector<Eigen::Index> order(static_cast<size_t>(x.rows()));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    const auto hold = static_cast<size_t>(params_.at("validation_fraction") * static_cast<double>(order.size()));
    std::vector<Eigen::Index> valid(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(hold));
    std::vector<Eigen::Index> train(order.begin() + static_cast<std::ptrdiff_t>(hold), order.end());
    if (train.empty()) train = order;
    const Mat xv = x(valid, Eigen::all), yv = y(valid, Eigen::all);

    Layers m, v, grad;
    m.zero_like(layers_);
    v.zero_like(layers_);
    const int batch = std::max(1, static_cast<int>(params_.at("batch")));
    const int epochs = static_cast<int>(params_.at("epochs"));
    const int patience = static_cast<int>(params_.at("patience"));
    const bool adam = params_.at("optimizer") == 0;
    const float lr = static_cast<float>(params_.at("learning_rate"));
    const float alpha = static_cast<float>(params_.at("alpha"));
    const float momentum = static_cast<float>(params_.at("momentum"));
    double best = INFINITY;
    int since = 0;
    Layers best_layers = layers_;
    int64_t step = 0;
    for (int epoch = 0; epoch < epochs; ++epoch) {
      std::shuffle(train.begin(), train.end(), rng);
      double train_loss = 0;
      for (size_t start = 0; start < train.size(); start += static_cast<size_t>(batch)) {
        const size_t end = std::min(train.size(), start + static_cast<size_t>(batch));
        std::vector<Eigen::Index> rows(train.begin() + static_cast<std::ptrdiff_t>(start),
                                       train.begin() + static_cast<std::ptrdiff_t>(end));
        const Mat xb = x(rows, Eigen::all), yb = y(rows, Eigen::all);
        train_loss += gradient(xb, yb, grad);
        const float n = static_cast<float>(rows.size());
        for (size_t l = 0; l < layers_.w.size(); ++l) {
          grad.w[l] = grad.w[l] / n + alpha / n * layers_.w[l];
          grad.b[l] /= n;
        }
        ++step;
        update(grad, m, v, step, adam, lr, momentum);
      }
      epochs_run_ = epoch + 1;
      // Early stopping: validation loss when there is a validation part, else training loss.
      const double loss = valid.empty() ? train_loss / static_cast<double>(train.size()) : mean_loss(xv, yv);
      if (loss < best - 1e-4) {
        best = loss;
        since = 0;
        best_layers = layers_;
      } else if (++since >= patience) {
        break;
      }
    }
    layers_ = best_layers;
  }

  Matrix predict_proba(const Matrix& raw) const override {
    const Mat out = forward(scaler_.apply(raw));
    Matrix p(out.rows(), classes_);
    if (classes_ == 2) {
      p.col(1) = out.col(0);
      p.col(0) = (1 - out.col(0).array()).matrix();
    } else {
      p = out;
    }
    return p;
  }

  std::string to_bytes() const override {
    ByteWriter w;
    w.put<int32_t>(classes_);
    w.put<int32_t>(epochs_run_);
    w.put<uint32_t>(static_cast<uint32_t>(layers_.w.size()));
    for (size_t l = 0; l < layers_.w.size(); ++l) {
      w.put<int64_t>(layers_.w[l].rows());
      w.put<int64_t>(layers_.w[l].cols());
      for (Eigen::Index i = 0; i < layers_.w[l].size(); ++i) w.put<float>(layers_.w[l].data()[i]);
      for (Eigen::Index i = 0; i < layers_.b[l].size(); ++i) w.put<float>(layers_.b[l].data()[i]);
    }
    scaler_.write(w);
    return std::move(w.bytes());
  }

  void from_bytes(std::string_view bytes) override {
    ByteReader r(bytes);
    classes_ = r.get<int32_t>();
    epochs_run_ = r.get<int32_t>();
    const auto n = r.get<uint32_t>();
    if (n > 64) throw std::runtime_error("model payload is inconsistent");
    layers_.w.resize(n);
    layers_.b.resize(n);
    for (uint32_t l = 0; l < n; ++l) {
      const auto rows = r.get<int64_t>(), cols = r.get<int64_t>();
      const auto size = static_cast<int64_t>(bytes.size());
      if (rows <= 0 || cols <= 0 || rows > size || cols > size || rows * cols * 4 > size)
        throw std::runtime_error("model payload is truncated");
      layers_.w[l].resize(rows, cols);
      for (Eigen::Index i = 0; i < layers_.w[l].size(); ++i) layers_.w[l].data()[i] = r.get<float>();
      layers_.b[l].resize(cols);
      for (Eigen::Index i = 0; i < cols; ++i) layers_.b[l](i) = r.get<float>();
    }
    if (n == 0) throw std::runtime_error("model payload is inconsistent");
    scaler_.read(r, layers_.w[0].rows());
  }

 private:
  void init(Eigen::Index inputs, Eigen::Index outputs, std::mt19937_64& rng) {
    std::vector<Eigen::Index> sizes{inputs};
    for (const char* h : {"hidden1", "hidden2"})
      if (params_.at(h) > 0) sizes.push_back(static_cast<Eigen::Index>(params_.at(h)));
    sizes.push_back(outputs);
    layers_.w.clear();
    layers_.b.clear();
    for (size_t l = 0; l + 1 < sizes.size(); ++l) {
      // Glorot uniform initialisation (factor 6, as scikit-learn uses for ReLU networks).
      const float bound = std::sqrt(6.0f / static_cast<float>(sizes[l] + sizes[l + 1]));
      std::uniform_real_distribution<float> u(-bound, bound);
      Mat w(sizes[l], sizes[l + 1]);
      for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = u(rng);
      Row b(sizes[l + 1]);
      for (Eigen::Index i = 0; i < b.size(); ++i) b(i) = u(rng);
      layers_.w.push_back(std::move(w));
      layers_.b.push_back(std::move(b));
    }
  }

  Mat output_activation(Mat z) const {
    if (classes_ == 2) return z.unaryExpr([](float v) { return 1 / (1 + std::exp(-v)); });
    for (Eigen::Index i = 0; i < z.rows(); ++i) {
      z.row(i).array() -= z.row(i).maxCoeff();
      z.row(i) = z.row(i).array().exp().matrix();
      z.row(i) /= z.row(i).sum();
    }
    return z;
  }

  Mat forward(const Mat& x) const {
    Mat a = x;
    for (size_t l = 0; l < layers_.w.size(); ++l) {
      Mat z = (a * layers_.w[l]).rowwise() + layers_.b[l];
      a = l + 1 < layers_.w.size() ? Mat(z.cwiseMax(0.0f)) : output_activation(std::move(z));
    }
    return a;
  }

  double loss_of(const Mat& p, const Mat& y) const {
    double loss = 0;
    if (classes_ == 2) {
      for (Eigen::Index i = 0; i < p.rows(); ++i) {
        const double q = std::clamp(static_cast<double>(p(i, 0)), 1e-7, 1 - 1e-7);
        loss -= y(i, 0) > 0.5f ? std::log(q) : std::log(1 - q);
      }
    } else {
      for (Eigen::Index i = 0; i < p.rows(); ++i) {
        Eigen::Index c;
        y.row(i).maxCoeff(&c);
        loss -= std::log(std::max(1e-7f, p(i, c)));
      }
    }
    return loss;
  }

  double mean_loss(const Mat& x, const Mat& y) const { return loss_of(forward(x), y) / static_cast<double>(x.rows()); }

  // Sums (not means) of the loss gradient over the rows of one shard.
  double shard_gradient(const Mat& x, const Mat& y, Layers& g) const {
    const size_t n = layers_.w.size();
    std::vector<Mat> acts{x}, pre;
    for (size_t l = 0; l < n; ++l) {
      Mat z = (acts.back() * layers_.w[l]).rowwise() + layers_.b[l];
      pre.push_back(z);
      acts.push_back(l + 1 < n ? Mat(z.cwiseMax(0.0f)) : output_activation(std::move(z)));
    }
    const double loss = loss_of(acts.back(), y);
    Mat delta = acts.back() - y;  // sigmoid + BCE and softmax + CE share this gradient
    for (size_t l = n; l-- > 0;) {
      g.w[l] = acts[l].transpose() * delta;
      g.b[l] = delta.colwise().sum();
      if (l > 0) delta = (delta * layers_.w[l].transpose()).cwiseProduct(Mat((pre[l - 1].array() > 0).cast<float>()));
    }
    return loss;
  }

  double gradient(const Mat& x, const Mat& y, Layers& g) const {
    g.zero_like(layers_);
    const int threads = std::max(1, static_cast<int>(params_.at("threads")));
    // Below a few hundred rows per thread, starting threads costs more than it saves.
    if (threads == 1 || x.rows() < 256 * threads) return shard_gradient(x, y, g);
    std::vector<Layers> parts(static_cast<size_t>(threads));
    std::vector<double> losses(static_cast<size_t>(threads), 0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const Eigen::Index lo = x.rows() * t / threads, hi = x.rows() * (t + 1) / threads;
        parts[static_cast<size_t>(t)].zero_like(layers_);
        losses[static_cast<size_t>(t)] = shard_gradient(x.middleRows(lo, hi - lo), y.middleRows(lo, hi - lo),
                                                        parts[static_cast<size_t>(t)]);
      });
    for (auto& th : pool) th.join();
    double loss = 0;
    for (int t = 0; t < threads; ++t) {
      loss += losses[static_cast<size_t>(t)];
      for (size_t l = 0; l < g.w.size(); ++l) {
        g.w[l] += parts[static_cast<size_t>(t)].w[l];
        g.b[l] += parts[static_cast<size_t>(t)].b[l];
      }
    }
    return loss;
  }

  void update(const Layers& g, Layers& m, Layers& v, int64_t step, bool adam, float lr, float momentum) {
    constexpr float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const float corrected =
        lr * std::sqrt(1 - std::pow(b2, static_cast<float>(step))) / (1 - std::pow(b1, static_cast<float>(step)));
    for (size_t l = 0; l < layers_.w.size(); ++l) {
      if (adam) {
        m.w[l] = b1 * m.w[l] + (1 - b1) * g.w[l];
        v.w[l] = b2 * v.w[l] + (1 - b2) * g.w[l].cwiseAbs2();
        layers_.w[l].array() -= corrected * m.w[l].array() / (v.w[l].array().sqrt() + eps);
        m.b[l] = b1 * m.b[l] + (1 - b1) * g.b[l];
        v.b[l] = b2 * v.b[l] + (1 - b2) * g.b[l].cwiseAbs2();
        layers_.b[l].array() -= corrected * m.b[l].array() / (v.b[l].array().sqrt() + eps);
      } else {
        m.w[l] = momentum * m.w[l] - lr * g.w[l];
        layers_.w[l] += m.w[l];
        m.b[l] = momentum * m.b[l] - lr * g.b[l];
        layers_.b[l] += m.b[l];
      }
    }
  }

  Params params_;
  Standardizer scaler_;
  Layers layers_;
  int classes_ = 2, epochs_run_ = 0;
};

}  // namespace

std::unique_ptr<TabularClassifier> make_mlp(const Params& params) {
  return std::make_unique<Mlp>(merge_params("mlp",
                                            {{"hidden1", 64},
                                             {"hidden2", 64},
                                             {"learning_rate", 1e-3},
                                             {"alpha", 1e-4},
                                             {"batch", 200},
                                             {"epochs", 200},
                                             {"patience", 10},
                                             {"validation_fraction", 0.1},
                                             {"optimizer", 0},
                                             {"momentum", 0.9},
                                             {"threads", 1},
                                             {"seed", 1},
                                             {"log_skewed", 1}},
                                            params));
}

}  // namespace persona::ml
