#include "persona/prep/normaliser.h"

#include <gtest/gtest.h>

#include <cmath>

#include "persona/core/error.h"

namespace persona::prep {
namespace {

TEST(Normaliser, MinMax) {
  Normaliser n(Normaliser::Method::MinMax);
  n.fit({2, 4, 6, 10});
  EXPECT_DOUBLE_EQ(n.apply(2), 0);
  EXPECT_DOUBLE_EQ(n.apply(10), 1);
  EXPECT_DOUBLE_EQ(n.apply(14), 1.5);  // fitted on one set, applied to another: not clipped
}

TEST(Normaliser, ZScoreUsesPopulationSd) {
  Normaliser n(Normaliser::Method::ZScore);
  n.fit({1, 2, 3, 4, 5});
  EXPECT_DOUBLE_EQ(n.apply(3), 0);
  EXPECT_NEAR(n.apply(5), 2 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(n.invert(n.apply(4.2)), 4.2, 1e-12);
}

TEST(Normaliser, RobustUsesMedianAndIqr) {
  Normaliser n(Normaliser::Method::Robust);
  n.fit({1, 2, 3, 4, 100});
  EXPECT_DOUBLE_EQ(n.apply(3), 0);          // median 3
  EXPECT_DOUBLE_EQ(n.apply(5), 1);          // IQR 4 - 2 = 2
}

TEST(Normaliser, Log1pAndConstantFeatures) {
  Normaliser log(Normaliser::Method::Log1p);
  log.fit({0, 1});
  EXPECT_DOUBLE_EQ(log.apply(std::exp(1.0) - 1), 1.0);
  Normaliser flat(Normaliser::Method::ZScore);
  flat.fit({7, 7, 7});
  EXPECT_DOUBLE_EQ(flat.apply(7), 0);  // no division by zero
}

TEST(Normaliser, SavedAndLoadedGivesTheSameTransform) {
  Normaliser n(Normaliser::Method::Robust);
  n.fit({3, 8, 1, 9, 4, 4, 2});
  const auto loaded = Normaliser::from_json(nlohmann::json::parse(n.to_json().dump()));
  for (double x : {-3.0, 0.0, 4.5, 100.0}) EXPECT_DOUBLE_EQ(loaded.apply(x), n.apply(x));
}

TEST(Normaliser, BadInputIsAnError) {
  Normaliser n;
  EXPECT_THROW(n.apply(1), Error);
  EXPECT_THROW(n.fit({NAN, INFINITY}), Error);
  EXPECT_THROW(Normaliser::from_json({{"method", "zscore"}}), Error);
  EXPECT_THROW(Normaliser::from_json({{"method", "zscore"}, {"center", 0}, {"scale", -1}}), Error);
  EXPECT_THROW(Normaliser::parse_method("whiten"), Error);
}

}  // namespace
}  // namespace persona::prep
