// Labelled texts from files through presets: labels, sentiment scales, rows without text.
#include <gtest/gtest.h>

#include "persona/pipeline/labelled_texts.h"
#include "support/test_support.h"

namespace persona::pipeline {
namespace {

TEST(LabelledTexts, ReadsLabelsAndReportsBadRows) {
  test::TempDir dir;
  test::write_file(dir.file("t.csv"), "text,label\nwhere is my order,track\nrefund please,refund\n,refund\n"
                                      "no label here,\nmy parcel?,track\n");
  const auto source = preset_source("labelled_texts", dir.file("t.csv"));
  LabelledTextReport report;
  const auto d = read_labelled_texts(source, source.rules, "label", &report);
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(d.label_names, (std::vector<std::string>{"refund", "track"}));
  EXPECT_EQ(report.rows, 5);
  EXPECT_EQ(report.rejected, 1);  // the empty text
  EXPECT_EQ(report.without_label, 1);
  ASSERT_FALSE(report.problems.empty());
  EXPECT_NE(report.problems[0].find(":4:"), std::string::npos) << report.problems[0];  // file:line
  EXPECT_THROW(read_labelled_texts(source, source.rules, "colour", nullptr), std::invalid_argument);
}

TEST(LabelledTexts, SentimentFromBinaryLabelsOrRatings) {
  test::TempDir dir;
  test::write_file(dir.file("w.csv"), test::synthetic_reviews_csv(5));
  const auto waimai = preset_source("waimai_zh", dir.file("w.csv"));
  const auto d = read_labelled_texts(waimai, waimai.rules, "sentiment", nullptr);
  EXPECT_EQ(d.size(), 10u);
  EXPECT_EQ(d.label_names, (std::vector<std::string>{"negative", "positive"}));
  // Ratings 1-5: 4-5 positive, 1-2 negative, 3 left out as neutral.
  test::write_file(dir.file("r.csv"), "label,review\n5,great\n1,awful\n3,meh\n4,good\n2,bad\n");
  const auto ratings = preset_source("waimai_zh", dir.file("r.csv"));
  LabelledTextReport report;
  const auto r = read_labelled_texts(ratings, ratings.rules, "sentiment", &report);
  EXPECT_EQ(r.size(), 4u);
  EXPECT_EQ(report.neutral_ratings, 1);
  EXPECT_EQ(r.label_names[static_cast<size_t>(r.labels[0])], "positive");
  EXPECT_EQ(r.label_names[static_cast<size_t>(r.labels[1])], "negative");
}

TEST(LabelledTexts, DomainAndIntentTogether) {
  test::TempDir dir;
  test::write_file(dir.file("s.jsonl"), R"({"text": "打开微信", "domain": "app", "intent": "LAUNCH"}
{"text": "明天天气", "domain": "weather", "intent": "QUERY"}
{"text": "没有意图", "domain": "chat"}
)");
  const auto source = preset_source("smp2019", dir.file("s.jsonl"));
  LabelledTextReport report;
  const auto d = read_labelled_texts(source, source.rules, "category/label", &report);
  EXPECT_EQ(d.label_names, (std::vector<std::string>{"app/LAUNCH", "weather/QUERY"}));
  EXPECT_EQ(report.without_label, 1);
}

}  // namespace
}  // namespace persona::pipeline
