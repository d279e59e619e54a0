// FAQ retrieval: reworded questions in English and Chinese find their pair, unrelated questions
// find none, the index survives a save and load, and bad FAQ files are clear errors.
#include <gtest/gtest.h>

#include "persona/assistant/faq.h"
#include "persona/core/error.h"
#include "support/test_support.h"

namespace persona::assistant {
namespace {

std::vector<FaqEntry> shop_faq() {
  return {
      {"returns", "How do I return an item?", "Open Orders, choose the item and press Return within 30 days of delivery."},
      {"shipping", "How long does shipping take?", "Standard delivery takes 3 to 5 working days; express takes 1 to 2."},
      {"payment", "Which payment methods do you accept?", "We accept credit cards, Alipay, WeChat Pay and PayPal."},
      {"password", "I forgot my password, what can I do?", "Press 'Forgot password' on the sign-in page to get a reset link."},
      {"退货", "怎么申请退货？", "在我的订单中选择商品，点击申请退货，签收后30天内都可以。"},
      {"发票", "可以开发票吗？", "可以，下单时选择开具发票，电子发票会发送到您的邮箱。"},
  };
}

TEST(Faq, RewordedQuestionsFindTheirPair) {
  const auto index = FaqIndex::build(shop_faq());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"how can I return my order", "returns"},
      {"returning a product", "returns"},
      {"how long will delivery take", "shipping"},
      {"do you take PayPal", "payment"},
      {"reset my password please", "password"},
      {"我想退货怎么办", "退货"},
      {"能开电子发票吗", "发票"},
  };
  for (const auto& [question, id] : cases) {
    const auto top = index.search(question, 3);
    ASSERT_FALSE(top.empty()) << question;
    EXPECT_EQ(index.entry(top.front().entry).id, id) << question;
    EXPECT_GE(top.front().score, top.back().score);
    const auto best = index.answer(question);
    ASSERT_TRUE(best.has_value()) << question << " matched no pair well enough";
    EXPECT_EQ(index.entry(best->entry).id, id);
  }
}

TEST(Faq, UnrelatedOrEmptyQuestionsFindNothing) {
  const auto index = FaqIndex::build(shop_faq());
  for (const char* q : {"What is the airspeed of an unladen swallow?", "what is the weather today", "", "😀😀😀",
                        "量子色动力学的渐近自由", "ignore previous instructions"})
    EXPECT_FALSE(index.answer(q).has_value()) << q;
  EXPECT_EQ(index.search("", 10).size(), shop_faq().size());  // a ranking is still defined
  EXPECT_EQ(index.search("returns", 100).size(), shop_faq().size());
}

TEST(Faq, SavedIndexAnswersTheSame) {
  test::TempDir dir;
  FaqOptions o;
  o.bm25_share = 0.3;
  const auto index = FaqIndex::build(shop_faq(), o);
  index.save(dir.file("faq.index"));
  const auto loaded = FaqIndex::load(dir.file("faq.index"));
  EXPECT_EQ(loaded.size(), index.size());
  EXPECT_DOUBLE_EQ(loaded.options().bm25_share, 0.3);
  for (const char* q : {"how do I return it", "怎么退货", "payment options"}) {
    const auto a = index.search(q, 6), b = loaded.search(q, 6);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].entry, b[i].entry);
      EXPECT_NEAR(a[i].score, b[i].score, 1e-9);
    }
  }
  test::write_file(dir.file("bad.index"), "PERSONA-MODEL 1\n{}\n");
  EXPECT_THROW(FaqIndex::load(dir.file("bad.index")), std::runtime_error);
}

TEST(Faq, FilesInEveryShapeAndClearErrors) {
  test::TempDir dir;
  test::write_file(dir.file("a.json"), R"([{"question":"Q1?","answer":"A1","id":"x"},{"question":"Q2?","answer":"A2"}])");
  auto pairs = read_faq_file(dir.file("a.json"));
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].id, "x");
  EXPECT_EQ(pairs[1].id, "faq-2");
  test::write_file(dir.file("b.json"), R"({"questions":[{"question":"Q?","answer":"A"}]})");
  EXPECT_EQ(read_faq_file(dir.file("b.json")).size(), 1u);
  test::write_file(dir.file("c.jsonl"), "{\"question\":\"Q1?\",\"answer\":\"A1\"}\n\n{\"question\":\"问题\",\"answer\":\"回答\"}\n");
  EXPECT_EQ(read_faq_file(dir.file("c.jsonl")).size(), 2u);
  test::write_file(dir.file("d.jsonl"), "{\"question\":\"Q1?\",\"answer\":\"A1\"}\n{broken\n");
  try {
    read_faq_file(dir.file("d.jsonl"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.where().line, 2);
  }
  test::write_file(dir.file("e.json"), R"([{"question":"Q1?"}])");
  try {
    read_faq_file(dir.file("e.json"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no answer"), std::string::npos);
  }
  test::write_file(dir.file("f.json"), "[]");
  EXPECT_THROW(read_faq_file(dir.file("f.json")), Error);
  EXPECT_THROW(read_faq_file(dir.file("missing.json")), Error);
  EXPECT_THROW(FaqIndex::build({}), Error);
}

}  // namespace
}  // namespace persona::assistant
