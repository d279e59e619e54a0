#include "persona/core/error.h"

#include <gtest/gtest.h>

namespace persona {

TEST(Error, NamesFileLineFieldValueAndHint) {
  const Error e("is not a number", {"events.csv", 42, "quantity", "two"}, "use digits");
  EXPECT_STREQ(e.what(), "events.csv:42: field 'quantity': is not a number (value \"two\"); use digits");
  EXPECT_EQ(e.where().line, 42);
  EXPECT_EQ(e.reason(), "is not a number");
}

TEST(Error, QuoteValueEscapesControlBytesAndCutsLongValues) {
  EXPECT_EQ(quote_value(std::string("a\0b\n", 4)), "\"a\\x00b\\n\"");
  const std::string long_value(500, 'x');
  const auto quoted = quote_value(long_value, 10);
  EXPECT_NE(quoted.find("(500 bytes)"), std::string::npos);
  EXPECT_LT(quoted.size(), 40u);
}

}  // namespace persona
