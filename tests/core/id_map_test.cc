#include "persona/core/id_map.h"

#include <gtest/gtest.h>

namespace persona {

TEST(IdMap, InternsToDenseIdsInFirstSeenOrder) {
  IdMap m;
  EXPECT_EQ(m.intern("C-17"), 0u);
  EXPECT_EQ(m.intern("C-04"), 1u);
  EXPECT_EQ(m.intern("C-17"), 0u);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.name(1), "C-04");
  EXPECT_EQ(m.find("C-04"), 1u);
  EXPECT_FALSE(m.find("nobody").has_value());
}

TEST(IdMap, NamesStayValidAsTheMapGrows) {
  IdMap m;
  for (int i = 0; i < 100000; ++i) m.intern("user-" + std::to_string(i));
  EXPECT_EQ(m.size(), 100000u);
  EXPECT_EQ(m.name(0), "user-0");
  EXPECT_EQ(m.find("user-99999"), 99999u);
  EXPECT_EQ(m.find("user-12345"), 12345u);
}

}  // namespace persona
