// The dashboard's numbers on hand-made data, where every figure is known.
#include <gtest/gtest.h>

#include <cmath>

#include "persona/server/dashboard.h"

namespace persona::server {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kStart = 20000 * kDay;  // 2024-10-04, a Friday

store::EventColumns three_users() {
  store::EventColumns ev;
  ev.user_ids = {"A", "B", "C"};
  ev.item_ids = {"i1", "i2"};
  ev.item_categories = {"shoes", "bags"};
  auto add = [&](int user, int item, EventType type, double quantity, double value, int64_t t) {
    ev.user.push_back(user);
    ev.item.push_back(item);
    ev.session.push_back(-1);
    ev.type.push_back(static_cast<uint8_t>(type));
    ev.quantity.push_back(quantity);
    ev.value.push_back(value);
    ev.timestamp.push_back(t);
  };
  const double none = std::nan("");
  add(0, 0, EventType::View, 1, none, kStart - 30 * kDay);  // before a 7-day window: only "ever first"
  add(0, 0, EventType::View, 1, none, kStart + 10);
  add(0, 0, EventType::Cart, 1, none, kStart + 20);
  add(0, 0, EventType::Purchase, 2, 10.5, kStart + 30);
  add(1, 1, EventType::View, 1, none, kStart + 40);
  add(1, 1, EventType::View, 1, none, kStart + kDay + 5);
  add(2, 1, EventType::Purchase, 1, 4, kStart + 2 * kDay);
  add(2, 1, EventType::Return, 1, 4, kStart + 2 * kDay + 9);
  return ev;
}

TEST(Dashboard, TimelineCountsEveryDayTypeUserAndTheFunnel) {
  const auto t = activity_timeline(three_users(), 7);
  ASSERT_EQ(t["days"].size(), 7u);
  EXPECT_EQ(t["days"].back(), "2024-10-06");  // the newest event's day ends the window
  EXPECT_EQ(t["days"][4], "2024-10-04");
  const auto& views = t["events"]["view"];
  EXPECT_EQ(views[4], 2);
  EXPECT_EQ(views[5], 1);
  EXPECT_EQ(views[0], 0);
  EXPECT_EQ(t["events"]["purchase"][6], 1);
  EXPECT_FALSE(t["events"].contains("click")) << "types never seen are left out";
  EXPECT_DOUBLE_EQ(t["revenue"][4].get<double>(), 21.0);  // 2 x 10.5
  EXPECT_DOUBLE_EQ(t["revenue"][6].get<double>(), 0.0);   // 4 bought, 4 returned
  EXPECT_EQ(t["active_users"][4], 2);                      // A (three events) and B
  EXPECT_EQ(t["active_users"][5], 1);
  EXPECT_EQ(t["new_users"][4], 1) << "A's first event was a month earlier: only B is new that day";
  EXPECT_EQ(t["new_users"][6], 1);
  ASSERT_EQ(t["funnel"].size(), 3u);
  EXPECT_EQ(t["funnel"][0]["step"], "view");
  EXPECT_EQ(t["funnel"][0]["users"], 2);   // A and B (A's old view is outside the window)
  EXPECT_EQ(t["funnel"][0]["events"], 3);
  EXPECT_EQ(t["funnel"][1]["users"], 1);
  EXPECT_EQ(t["funnel"][2]["users"], 2);   // A and C bought
}

TEST(Dashboard, UserTimelineIsNewestFirstAndLimited) {
  const auto t = user_timeline(three_users(), 3);
  ASSERT_EQ(t["events"].size(), 3u);
  EXPECT_EQ(t["total"], 8);
  EXPECT_EQ(t["events"][0]["type"], "return");
  EXPECT_EQ(t["events"][0]["category"], "bags");
  EXPECT_EQ(t["events"][0]["value"], 4);
  EXPECT_FALSE(t["events"][2].contains("value")) << "no value: none reported";
}

TEST(Dashboard, EmptyDataGivesEmptySeries) {
  const auto t = activity_timeline(store::EventColumns{}, 30);
  EXPECT_TRUE(t["days"].empty());
  EXPECT_TRUE(t["funnel"].empty());
}

}  // namespace
}  // namespace persona::server
