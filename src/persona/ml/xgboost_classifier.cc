// Gradient-boosted trees through xgboost's C API (Debian's libxgboost-dev), with early stopping
// on a validation split carved from the training rows.
#include <xgboost/c_api.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "persona/core/binary_io.h"
#include "persona/ml/metrics.h"
#include "persona/ml/tabular.h"

namespace persona::ml {

Params merge_params(const std::string& kind, const Params& defaults, const Params& given);

namespace {

void check(int rc) {
  if (rc != 0) throw std::runtime_error(std::string("xgboost: ") + XGBGetLastError());
}

class DMatrix {
 public:
  DMatrix(const Matrix& x, const std::vector<int>* y) {
    check(XGDMatrixCreateFromMat(x.data(), static_cast<bst_ulong>(x.rows()), static_cast<bst_ulong>(x.cols()), NAN,
                                 &handle_));
    if (y) {
      std::vector<float> labels(y->begin(), y->end());
      check(XGDMatrixSetFloatInfo(handle_, "label", labels.data(), static_cast<bst_ulong>(labels.size())));
    }
  }
  ~DMatrix() { XGDMatrixFree(handle_); }
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;
  DMatrixHandle get() const { return handle_; }

 private:
  DMatrixHandle handle_ = nullptr;
};

class GradientBoostedTrees : public TabularClassifier {
 public:
  explicit GradientBoostedTrees(Params p) : params_(std::move(p)) {}
  ~GradientBoostedTrees() override {
    if (booster_) XGBoosterFree(booster_);
  }
  std::string kind() const override { return "xgboost"; }
  nlohmann::json params() const override {
    nlohmann::json j = params_;
    j["best_rounds"] = rounds_;
    return j;
  }

  void fit(const TabularData& data) override {
    classes_ = data.classes();
    // Hold out 15% for early stopping (seeded), then refit on all rows with the best round count.
    std::vector<size_t> order(data.rows());
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(static_cast<uint64_t>(params_.at("seed")));
    std::shuffle(order.begin(), order.end(), rng);
    const size_t hold = params_.at("early_stopping") > 0 ? data.rows() * 15 / 100 : 0;
    int rounds = static_cast<int>(params_.at("rounds"));
    if (hold >= 20) {
      std::vector<size_t> valid(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(hold));
      std::vector<size_t> train(order.begin() + static_cast<std::ptrdiff_t>(hold), order.end());
      const TabularData t = data.subset(train), v = data.subset(valid);
      const DMatrix dt(t.x, &t.y), dv(v.x, nullptr);
      BoosterHandle b = create(dt);
      double best = INFINITY;
      int best_round = 1, since = 0;
      for (int r = 0; r < rounds; ++r) {
        check(XGBoosterUpdateOneIter(b, r, dt.get()));
        const double loss = validation_loss(b, dv, v);
        if (loss < best - 1e-7) {
          best = loss;
          best_round = r + 1;
          since = 0;
        } else if (++since >= static_cast<int>(params_.at("early_stopping"))) {
          break;
        }
      }
      XGBoosterFree(b);
      rounds = best_round;
    }
    const DMatrix all(data.x, &data.y);
    if (booster_) XGBoosterFree(booster_);
    booster_ = create(all);
    for (int r = 0; r < rounds; ++r) check(XGBoosterUpdateOneIter(booster_, r, all.get()));
    rounds_ = rounds;
  }

  Matrix predict_proba(const Matrix& x) const override {
    const DMatrix d(x, nullptr);
    const Matrix p = raw_predict(booster_, d, static_cast<size_t>(x.rows()));
    return p;
  }

  std::string to_bytes() const override {
    bst_ulong len = 0;
    const char* buf = nullptr;
    check(XGBoosterSaveModelToBuffer(booster_, R"({"format": "ubj"})", &len, &buf));
    ByteWriter w;
    w.put<int32_t>(classes_);
    w.put<int32_t>(rounds_);
    w.put_string(std::string_view(buf, len));
    return std::move(w.bytes());
  }
  void from_bytes(std::string_view bytes) override {
    ByteReader r(bytes);
    classes_ = r.get<int32_t>();
    rounds_ = r.get<int32_t>();
    const std::string model = r.get_string();
    if (booster_) XGBoosterFree(booster_);
    check(XGBoosterCreate(nullptr, 0, &booster_));
    check(XGBoosterLoadModelFromBuffer(booster_, model.data(), model.size()));
  }

 private:
  BoosterHandle create(const DMatrix& d) const {
    BoosterHandle b = nullptr;
    DMatrixHandle h = d.get();
    check(XGBoosterCreate(&h, 1, &b));
    auto set = [&](const char* k, const std::string& v) { check(XGBoosterSetParam(b, k, v.c_str())); };
    set("objective", classes_ == 2 ? "binary:logistic" : "multi:softprob");
    if (classes_ > 2) set("num_class", std::to_string(classes_));
    set("max_depth", fmt::format("{}", static_cast<int>(params_.at("max_depth"))));
    set("eta", fmt::format("{}", params_.at("eta")));
    set("subsample", fmt::format("{}", params_.at("subsample")));
    set("colsample_bytree", fmt::format("{}", params_.at("colsample")));
    set("min_child_weight", fmt::format("{}", params_.at("min_child_weight")));
    set("lambda", fmt::format("{}", params_.at("lambda")));
    set("nthread", fmt::format("{}", static_cast<int>(params_.at("threads"))));
    set("seed", fmt::format("{}", static_cast<int>(params_.at("seed"))));
    set("tree_method", "hist");
    set("verbosity", "0");
    return b;
  }

  Matrix raw_predict(BoosterHandle b, const DMatrix& d, size_t rows) const {
    bst_ulong len = 0;
    const float* out = nullptr;
    check(XGBoosterPredict(b, d.get(), 0, 0, 0, &len, &out));
    Matrix p(static_cast<Eigen::Index>(rows), classes_);
    for (size_t i = 0; i < rows; ++i) {
      if (classes_ == 2) {
        p(static_cast<Eigen::Index>(i), 1) = out[i];
        p(static_cast<Eigen::Index>(i), 0) = 1 - out[i];
      } else {
        for (int c = 0; c < classes_; ++c)
          p(static_cast<Eigen::Index>(i), c) = out[i * static_cast<size_t>(classes_) + static_cast<size_t>(c)];
      }
    }
    return p;
  }

  double validation_loss(BoosterHandle b, const DMatrix& d, const TabularData& v) const {
    const Matrix p = raw_predict(b, d, v.rows());
    double loss = 0;
    for (size_t i = 0; i < v.rows(); ++i)
      loss -= std::log(std::max(1e-15f, p(static_cast<Eigen::Index>(i), v.y[i])));
    return loss / static_cast<double>(v.rows());
  }

  Params params_;
  BoosterHandle booster_ = nullptr;
  int classes_ = 2, rounds_ = 0;
};

}  // namespace

std::unique_ptr<TabularClassifier> make_xgboost(const Params& params) {
  return std::make_unique<GradientBoostedTrees>(merge_params(
      "xgboost",
      {{"rounds", 300}, {"max_depth", 4}, {"eta", 0.05}, {"subsample", 0.8}, {"colsample", 1.0},
       {"min_child_weight", 1}, {"lambda", 1}, {"early_stopping", 30}, {"threads", 2}, {"seed", 1}},
      params));
}

}  // namespace persona::ml
