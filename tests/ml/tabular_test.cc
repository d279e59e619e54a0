// Tabular learners, cross-validation and search.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "persona/ml/metrics.h"
#include "persona/ml/tabular.h"
#include "persona/ml/validation.h"
#include "support/test_support.h"

namespace persona::ml {
namespace {

// Two informative features (one heavy-tailed), one noise feature; label from a logistic model.
TabularData binary_data(int rows, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  TabularData d;
  d.feature_names = {"a", "spend", "noise"};
  d.x.resize(rows, 3);
  for (int i = 0; i < rows; ++i) {
    const float a = n(rng), spend = std::exp(1.5f * n(rng)), noise = n(rng);
    d.x.row(i) << a, spend, noise;
    const double z = 1.5 * a + 1.2 * std::log1p(spend) - 1.0;
    d.y.push_back(u(rng) < 1 / (1 + std::exp(-z)) ? 1 : 0);
  }
  return d;
}

double test_auc(const std::string& kind, const Params& params = {}) {
  const auto train = binary_data(1500, 1), test = binary_data(800, 2);
  auto m = make_tabular_classifier(kind, params);
  m->fit(train);
  return roc_auc(test.y, m->predict_positive(test.x));
}

TEST(Tabular, EveryLearnerLearns) {
  // The true model's AUC on this data is about 0.84; a learner that learned nothing gets 0.5.
  EXPECT_GT(test_auc("logistic"), 0.8);
  EXPECT_GT(test_auc("mlp"), 0.8);
  EXPECT_GT(test_auc("xgboost"), 0.78);
  EXPECT_GT(test_auc("ensemble"), 0.8);
  EXPECT_GT(test_auc("mlp", {{"optimizer", 1}, {"learning_rate", 0.01}}), 0.8);  // SGD with momentum
}

TEST(Tabular, MlpSoftmaxForSeveralClasses) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0, 0.5f);
  TabularData d;
  d.class_names = {"a", "b", "c"};
  d.x.resize(600, 2);
  const float centres[3][2] = {{0, 0}, {3, 0}, {0, 3}};
  for (int i = 0; i < 600; ++i) {
    const int c = i % 3;
    d.x.row(i) << centres[c][0] + n(rng), centres[c][1] + n(rng);
    d.y.push_back(c);
  }
  for (const char* kind : {"mlp", "logistic", "xgboost"}) {
    auto m = make_tabular_classifier(kind, {});
    m->fit(d);
    const Matrix p = m->predict_proba(d.x);
    ASSERT_EQ(p.cols(), 3);
    int right = 0;
    for (int i = 0; i < 600; ++i) {
      Eigen::Index c;
      p.row(i).maxCoeff(&c);
      right += c == d.y[static_cast<size_t>(i)];
      EXPECT_NEAR(p.row(i).sum(), 1.0f, 1e-4f);
    }
    EXPECT_GT(right, 570) << kind;
  }
}

TEST(Tabular, SeededAndSavedModelsGiveTheSameAnswers) {
  const auto d = binary_data(500, 4);
  for (const char* kind : {"logistic", "mlp", "xgboost"}) {
    auto a = make_tabular_classifier(kind, {}), b = make_tabular_classifier(kind, {});
    a->fit(d);
    b->fit(d);
    const Matrix pa = a->predict_proba(d.x);
    EXPECT_TRUE(pa.isApprox(b->predict_proba(d.x))) << kind << ": same seed, same model";
    test::TempDir dir;
    save_tabular_model(dir.file("m.model"), "test", *a, d.feature_names, d.class_names, {{"auc", 0.9}});
    const auto loaded = load_tabular_model(dir.file("m.model"), d.feature_names);
    EXPECT_EQ(loaded.model->kind(), kind);
    EXPECT_TRUE(loaded.model->predict_proba(d.x).isApprox(pa)) << kind;
    try {
      load_tabular_model(dir.file("m.model"), {"other", "features"});
      ADD_FAILURE() << "a feature mismatch must be an error";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("was trained on features"), std::string::npos);
    }
  }
}

TEST(Tabular, MlpThreadsGiveTheSameModelAsOne) {
  const auto d = binary_data(3000, 5);
  auto one = make_tabular_classifier("mlp", {{"batch", 1024}, {"threads", 1}, {"epochs", 5}});
  auto two = make_tabular_classifier("mlp", {{"batch", 1024}, {"threads", 2}, {"epochs", 5}});
  one->fit(d);
  two->fit(d);
  EXPECT_TRUE(one->predict_proba(d.x).isApprox(two->predict_proba(d.x), 1e-4f));
}

TEST(Tabular, HugeSizesInAPayloadAreErrorsNotAllocations) {
  // Found by fuzz_model_file: sizes whose product overflowed were allocated before being checked.
  for (const char* kind : {"logistic", "mlp"}) {
    ByteWriter w;
    w.put<int32_t>(2);
    if (std::string(kind) == "mlp") {
      w.put<int32_t>(1);
      w.put<uint32_t>(1);
    }
    w.put<int64_t>(int64_t{1} << 40);
    w.put<int64_t>(int64_t{1} << 40);
    auto m = make_tabular_classifier(kind);
    EXPECT_THROW(m->from_bytes(w.bytes()), std::runtime_error) << kind;
  }
}

TEST(Tabular, UnknownLearnerOrParameterIsAnError) {
  EXPECT_THROW(make_tabular_classifier("forest"), std::invalid_argument);
  try {
    make_tabular_classifier("mlp", {{"hiden1", 3}});
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("hidden1"), std::string::npos);  // lists the known names
  }
}

TEST(Validation, FoldsCoverEveryRowOnce) {
  std::vector<int> y;
  for (int i = 0; i < 103; ++i) y.push_back(i % 5 == 0);
  const auto folds = kfold(103, 5, 1, &y);
  ASSERT_EQ(folds.size(), 5u);
  std::multiset<size_t> seen;
  for (const auto& f : folds) {
    EXPECT_EQ(f.train.size() + f.test.size(), 103u);
    int positives = 0;
    for (size_t i : f.test) {
      seen.insert(i);
      positives += y[i];
    }
    EXPECT_NEAR(positives, 21.0 / 5, 1.0);  // stratified
  }
  EXPECT_EQ(seen.size(), 103u);
  EXPECT_EQ(std::set<size_t>(seen.begin(), seen.end()).size(), 103u);
  EXPECT_EQ(kfold(103, 5, 1, &y)[2].test, folds[2].test);  // seeded
  EXPECT_THROW(kfold(3, 5, 1), std::invalid_argument);
}

TEST(Validation, TimeFoldsNeverTrainOnTheFuture) {
  std::vector<int64_t> t;
  for (int i = 0; i < 60; ++i) t.push_back((i * 7919) % 60 / 2);  // shuffled, with ties
  const auto folds = time_folds(t, 3);
  ASSERT_FALSE(folds.empty());
  for (const auto& f : folds) {
    int64_t latest_train = INT64_MIN, earliest_test = INT64_MAX;
    for (size_t i : f.train) latest_train = std::max(latest_train, t[i]);
    for (size_t i : f.test) earliest_test = std::min(earliest_test, t[i]);
    EXPECT_LT(latest_train, earliest_test);
  }
}

TEST(Validation, SearchFindsTheBetterSettingReproducibly) {
  const auto d = binary_data(600, 6);
  const auto folds = kfold(d.rows(), 3, 1, &d.y);
  // Heavy regularisation (C tiny) pulls every probability to the base rate: worse log-loss.
  const auto grid = grid_search("logistic", {{"C", {1e-6, 1.0}}}, {}, d, folds, "logloss");
  EXPECT_EQ(grid.trials.size(), 2u);
  EXPECT_DOUBLE_EQ(grid.best.at("C"), 1.0);
  const auto a = random_search("mlp", {{"alpha", {1e-4, 1e-2}}, {"hidden1", {8, 16}}}, {{"epochs", 20}}, 3, 9, d, folds,
                               "logloss");
  const auto b = random_search("mlp", {{"alpha", {1e-4, 1e-2}}, {"hidden1", {8, 16}}}, {{"epochs", 20}}, 3, 9, d, folds,
                               "logloss");
  EXPECT_EQ(a.best, b.best);
  EXPECT_DOUBLE_EQ(a.best_score, b.best_score);
  const auto cv = cross_validate("logistic", {}, d, folds, "accuracy");
  EXPECT_EQ(cv.scores.size(), 3u);
  EXPECT_GT(cv.mean, 0.6);
}

}  // namespace
}  // namespace persona::ml
