#include "persona/core/time.h"

#include <gtest/gtest.h>

#include "persona/core/error.h"

namespace persona {

TEST(Time, CivilDaysRoundTrip) {
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 11017);
  EXPECT_EQ(days_from_civil(1969, 12, 31), -1);
  for (int64_t d = -800000; d < 800000; d += 997) {
    int y;
    unsigned m, day;
    civil_from_days(d, y, m, day);
    ASSERT_EQ(days_from_civil(y, m, day), d);
  }
  EXPECT_EQ(format_timestamp(1291191960), "2010-12-01 08:26:00");
  EXPECT_EQ(format_timestamp(-1), "1969-12-31 23:59:59");
}

TEST(Time, Iso8601Variants) {
  TimestampParser p("iso8601");
  EXPECT_EQ(p.parse("2010-12-01 08:26:00"), 1291191960);
  EXPECT_EQ(p.parse("2010-12-01T08:26:00Z"), 1291191960);
  EXPECT_EQ(p.parse("2010-12-01T08:26"), 1291191960);
  EXPECT_EQ(p.parse("2010-12-01T16:26:00+08:00"), 1291191960);
  EXPECT_EQ(p.parse("2010-12-01T08:26:00.123456Z"), 1291191960);
  EXPECT_EQ(p.parse("2010-12-01"), 1291161600);
  EXPECT_EQ(p.parse(" 2010/12/01 "), 1291161600);
  EXPECT_FALSE(p.parse("2010-13-01"));
  EXPECT_FALSE(p.parse("2011-02-29"));
  EXPECT_TRUE(p.parse("2012-02-29"));
  EXPECT_FALSE(p.parse("2010-12-01 25:00:00"));
  EXPECT_FALSE(p.parse("yesterday"));
  EXPECT_FALSE(p.parse(""));
  EXPECT_FALSE(p.parse("2010-12-01 08:26:00 garbage"));
}

TEST(Time, PatternsAcceptOneOrTwoDigitFields) {
  TimestampParser p("%m/%d/%Y %H:%M");
  EXPECT_EQ(p.parse("12/1/2010 8:26"), 1291191960);
  EXPECT_EQ(p.parse("12/01/2010 08:26"), 1291191960);
  EXPECT_FALSE(p.parse("2010-12-01 08:26"));
  TimestampParser months("%d %b %Y");
  EXPECT_EQ(months.parse("01 Dec 2010"), 1291161600);
  EXPECT_EQ(months.parse("1 dec 2010"), 1291161600);
}

TEST(Time, EpochsAndAlternatives) {
  EXPECT_EQ(TimestampParser("unix").parse("978300760"), 978300760);
  EXPECT_EQ(TimestampParser("unix").parse("978300760.9"), 978300760);
  EXPECT_EQ(TimestampParser("unix_ms").parse("978300760123"), 978300760);
  EXPECT_FALSE(TimestampParser("unix").parse("12abc"));
  TimestampParser either("iso8601|%m/%d/%Y %H:%M");
  EXPECT_EQ(either.parse("2010-12-01 08:26:00"), 1291191960);
  EXPECT_EQ(either.parse("12/1/2010 8:26"), 1291191960);
}

TEST(Time, UnknownDirectiveIsAClearError) {
  try {
    TimestampParser p("%Y-%q");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("%q"), std::string::npos);
  }
}

}  // namespace persona

namespace persona {

// "+99:99" used to shift a time by four days without a word; real offsets run -12:00..+14:00.
TEST(Time, OffsetsOutsideTheWorldAreNotTimes) {
  TimestampParser p("iso8601");
  EXPECT_EQ(p.parse("2010-12-02T08:26:00+14:00"), 1291191960 + 86400 - 14 * 3600);
  EXPECT_EQ(p.parse("2010-12-01T08:26:00-12:00"), 1291191960 + 12 * 3600);
  for (const char* bad : {"2010-12-01T08:26:00+99:99", "2010-12-01T08:26:00+14:01", "2010-12-01T08:26:00-12:30",
                          "2010-12-01T08:26:00+05:60", "2010-12-01T08:26:00+2400"})
    EXPECT_FALSE(p.parse(bad)) << bad;
  TimestampParser pattern("%Y-%m-%d %H:%M %z");
  EXPECT_FALSE(pattern.parse("2010-12-01 08:26 +99:99"));
}

TEST(Time, TheWindowSaysWhatItHolds) {
  const TimeWindow w;
  EXPECT_TRUE(w.contains(0));
  EXPECT_TRUE(w.contains(4102444799));
  EXPECT_FALSE(w.contains(4102444800));  // 2100-01-01
  EXPECT_FALSE(w.contains(-1));
  EXPECT_FALSE(w.contains(INT64_MAX));
  EXPECT_EQ(w.describe(), "from 1970-01-01 to 2100-01-01");
}

}  // namespace persona
