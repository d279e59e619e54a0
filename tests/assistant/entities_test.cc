// Entities of customer messages: ids, contacts, money, quantities, and dates relative to a fixed
// "now" (Wednesday 2025-11-26), in English and Chinese; catalogue names through the graph.
#include <gtest/gtest.h>

#include <map>

#include "persona/assistant/entities.h"
#include "persona/assistant/graph_answerer.h"

namespace persona::assistant {
namespace {

constexpr int64_t kWednesday = 1764158400;  // 2025-11-26 12:00 UTC

std::multimap<std::string, std::string> found(const std::string& message, const GraphAnswerer* graph = nullptr) {
  EntityOptions o;
  o.now = kWednesday;
  std::multimap<std::string, std::string> out;
  for (const auto& e : extract_entities(message, o, graph)) out.emplace(e.kind, e.value);
  return out;
}

using M = std::multimap<std::string, std::string>;

TEST(Entities, IdsContactsMoneyAndQuantities) {
  EXPECT_EQ(found("Where is my order ORD-2025-000123?"), (M{{"order_id", "ord-2025-000123"}}));
  EXPECT_EQ(found("我的订单ord-2025-004567还没到"), (M{{"order_id", "ord-2025-004567"}}));
  EXPECT_EQ(found("mail me at Li.Wei@example.COM"), (M{{"email", "li.wei@example.com"}}));
  EXPECT_EQ(found("我的手机是138 1234 5678"), (M{{"phone", "13812345678"}}));
  EXPECT_EQ(found("call +86 13812345678 or 010-51979888"), (M{{"phone", "13812345678"}, {"phone", "01051979888"}}));
  EXPECT_EQ(found("it cost ¥12.5, not 30元"), (M{{"money", "12.50"}, {"money", "30.00"}}));
  EXPECT_EQ(found("I paid $30"), (M{{"money", "30.00"}}));
  EXPECT_EQ(found("我要退两件，还有3个"), (M{{"quantity", "2"}, {"quantity", "3"}}));
  EXPECT_EQ(found("send 2 pieces, x3 of the other"), (M{{"quantity", "2"}, {"quantity", "3"}}));
  EXPECT_EQ(found("the box 3 is fine"), M{});  // "x 3" inside a word is no quantity
  EXPECT_EQ(found("订单ord-2025-000123"), (M{{"order_id", "ord-2025-000123"}}));  // its digits are no phone
}

TEST(Entities, DatesAbsoluteAndRelative) {
  EXPECT_EQ(found("yesterday"), (M{{"date", "2025-11-25"}}));
  EXPECT_EQ(found("我前天下的单"), (M{{"date", "2025-11-24"}}));
  EXPECT_EQ(found("3天前"), (M{{"date", "2025-11-23"}}));
  EXPECT_EQ(found("2 days ago"), (M{{"date", "2025-11-24"}}));
  EXPECT_EQ(found("上周五买的"), (M{{"date", "2025-11-21"}}));
  EXPECT_EQ(found("这周一"), (M{{"date", "2025-11-24"}}));
  EXPECT_EQ(found("下星期三"), (M{{"date", "2025-12-03"}}));
  EXPECT_EQ(found("last Friday"), (M{{"date", "2025-11-21"}}));
  EXPECT_EQ(found("on friday"), (M{{"date", "2025-11-21"}}));  // the most recent Friday
  EXPECT_EQ(found("on monday"), (M{{"date", "2025-11-24"}}));
  EXPECT_EQ(found("2025-10-03"), (M{{"date", "2025-10-03"}}));
  EXPECT_EQ(found("2025年1月5日"), (M{{"date", "2025-01-05"}}));
  EXPECT_EQ(found("12月30号"), (M{{"date", "2024-12-30"}}));  // a December date after today: last year's
  EXPECT_EQ(found("11月3日"), (M{{"date", "2025-11-03"}}));
  EXPECT_EQ(found("2025-13-45"), M{});
}

TEST(Entities, CatalogueNamesAndNothingFromNoise) {
  store::Graph rows;
  rows.entities = {{"Kettle Pro 3", "item"}, {"Philips", "brand"}};
  const KnowledgeGraph g(rows);
  const GraphAnswerer a(g);
  EXPECT_EQ(found("is the kettle pro 3 by PHILIPS?", &a), (M{{"product", "Kettle Pro 3"}, {"brand", "Philips"}}));
  EXPECT_EQ(found("", &a), M{});
  EXPECT_EQ(found("😀😀😀", &a), M{});
  EXPECT_EQ(found("'; DROP TABLE users; --", &a), M{});
  EXPECT_EQ(found(std::string(100000, '9')).count("phone"), 0u);  // a wall of digits is no phone
  EXPECT_NO_THROW(found("\xff\xfe\xfd"));
}

}  // namespace
}  // namespace persona::assistant
