// A user's orders from their events: grouped by session, returns marked, newest first; another
// user's order id is not found among them; purchases of a period summed by item.
#include <gtest/gtest.h>

#include <cmath>

#include "persona/assistant/orders.h"
#include "persona/core/model.h"

namespace persona::assistant {
namespace {

constexpr int64_t kDay = 86400, kStart = 1735689600;  // 2025-01-01

struct Log {
  store::EventColumns e;
  Log() {
    e.user_ids = {"alice", "bob"};
    e.item_ids = {"P1", "P2", "P3"};
    e.item_texts = {"Kettle Pro 3. A kettle", "Green Tea. 绿茶", "Mug"};
    e.item_prices = {39.5, 8, NAN};
    e.sessions = {"ORD-1", "ORD-2", "ORD-3"};
  }
  void add(int32_t user, int32_t item, EventType type, double quantity, double value, int64_t day, int32_t session) {
    e.user.push_back(user), e.item.push_back(item), e.type.push_back(static_cast<uint8_t>(type));
    e.quantity.push_back(quantity), e.value.push_back(value), e.timestamp.push_back(kStart + day * kDay);
    e.session.push_back(session);
  }
};

TEST(Orders, FromEventsNewestFirstWithReturns) {
  Log log;
  log.add(0, 0, EventType::View, 1, NAN, 0, 0);
  log.add(0, 0, EventType::Purchase, 1, 39.5, 0, 0);
  log.add(0, 1, EventType::Purchase, 3, NAN, 0, 0);   // no price paid: the list price
  log.add(0, 2, EventType::Purchase, 1, NAN, 40, 1);  // no price at all
  log.add(0, 0, EventType::Return, 1, NAN, 5, -1);    // the kettle went back
  log.add(0, 1, EventType::Purchase, 2, 8, 70, -1);   // no session: an order per user and day
  const auto orders = orders_from_events(log.e, {{"P1", "Kettle Pro 3"}, {"P2", "Green Tea"}});
  ASSERT_EQ(orders.size(), 3u);
  EXPECT_EQ(orders[0].id, "alice-2025-03-12");
  EXPECT_EQ(orders[1].id, "ORD-2");
  EXPECT_EQ(orders[2].id, "ORD-1");
  ASSERT_EQ(orders[2].lines.size(), 2u);
  EXPECT_TRUE(orders[2].lines[0].returned);
  EXPECT_EQ(orders[2].lines[0].title, "Kettle Pro 3");
  EXPECT_DOUBLE_EQ(orders[2].total(), 24);  // 3 x 8; the returned kettle does not count
  EXPECT_DOUBLE_EQ(orders[1].total(), 0);   // unpriced
  const auto text = describe_order(orders[2], false);
  EXPECT_NE(text.find("3 x Green Tea (8.00)"), std::string::npos) << text;
  EXPECT_NE(text.find("returned"), std::string::npos);
  EXPECT_NE(describe_order(orders[2], true).find("已退货"), std::string::npos);
  // In Chinese, items by their Chinese names where the catalogue has them.
  const std::unordered_map<std::string, std::string> zh = {{orders[2].lines[1].item, "绿茶"}};
  const auto chinese = describe_order(orders[2], true, &zh);
  EXPECT_NE(chinese.find("3 x 绿茶"), std::string::npos) << chinese;
  EXPECT_NE(chinese.find("Kettle Pro 3"), std::string::npos) << "no Chinese name: the title as it is";
  EXPECT_EQ(describe_order(orders[2], false, &zh).find("绿茶"), std::string::npos);
  EXPECT_TRUE(find_order(orders, "ord-2"));  // case does not matter
  EXPECT_FALSE(find_order(orders, "ORD-3"));
  const auto q1 = bought_between(orders, kStart, kStart + 60 * kDay);
  ASSERT_EQ(q1.size(), 3u);
  const auto march = bought_between(orders, kStart + 60 * kDay, kStart + 90 * kDay);
  ASSERT_EQ(march.size(), 1u);
  EXPECT_EQ(march[0].item, "P2");
}

TEST(Orders, OnlyTheUsersOwnEventsAndNothingFromNothing) {
  Log log;
  log.add(1, 2, EventType::Purchase, 1, 5, 3, 2);  // bob's order ORD-3
  store::EventColumns alice = log.e;               // alice's events: none
  alice.user.clear(), alice.item.clear(), alice.type.clear(), alice.quantity.clear(), alice.value.clear(),
      alice.timestamp.clear(), alice.session.clear();
  const auto orders = orders_from_events(alice);
  EXPECT_TRUE(orders.empty());
  EXPECT_FALSE(find_order(orders, "ORD-3"));  // bob's id means nothing in alice's account
  EXPECT_TRUE(bought_between(orders, 0, INT64_MAX).empty());
}

}  // namespace
}  // namespace persona::assistant
