#include "persona/experiment/assignment.h"

#include <gtest/gtest.h>

#include "persona/core/error.h"
#include "persona/experiment/stats.h"

namespace persona::experiment {
namespace {

TEST(Assignment, IsStickyAndFollowsTheSplit) {
  const auto variants = parse_variants("a=current,b=other.model", "90/10");
  EXPECT_DOUBLE_EQ(variants[0].share, 0.9);
  const auto salt = new_salt();
  EXPECT_EQ(salt.size(), 64u);
  std::vector<double> users(2);
  for (int u = 0; u < 20000; ++u) {
    const std::string id = "user" + std::to_string(u);
    const size_t v = assign(salt, id, variants);
    EXPECT_EQ(v, assign(salt, id, variants));
    ++users[v];
  }
  EXPECT_FALSE(sample_ratio_check(users, {0.9, 0.1}).mismatch) << users[0] << "/" << users[1];
  EXPECT_NEAR(users[1] / 20000, 0.1, 0.01);
}

TEST(Assignment, TwoExperimentsAssignIndependently) {
  const auto variants = parse_variants("a=x,b=y", "");
  const auto s1 = new_salt(), s2 = new_salt();
  ASSERT_NE(s1, s2);
  int same = 0;
  for (int u = 0; u < 10000; ++u) same += assign(s1, std::to_string(u), variants) == assign(s2, std::to_string(u), variants);
  EXPECT_NEAR(same / 10000.0, 0.5, 0.03);
}

TEST(Assignment, BadVariantsAreRefusedClearly) {
  EXPECT_THROW(parse_variants("a=x", ""), Error);
  EXPECT_THROW(parse_variants("a=x,a=y", ""), Error);
  EXPECT_THROW(parse_variants("a=x,b", ""), Error);
  EXPECT_THROW(parse_variants("a=x,b=y", "50/40/10"), Error);
  EXPECT_THROW(parse_variants("a=x,b=y", "50/-5"), Error);
  EXPECT_THROW(parse_variants("a b=x,c=y", ""), Error);
  try {
    parse_variants("a=x,b=y", "50/abc");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("abc"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace persona::experiment
