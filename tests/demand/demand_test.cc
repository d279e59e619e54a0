// Demand: propensity features and labels, forecasts, next category, text analysis.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <random>

#include "persona/core/model.h"
#include "persona/demand/forecast.h"
#include "persona/demand/next_category.h"
#include "persona/demand/propensity.h"
#include "persona/demand/text_analysis.h"
#include "support/test_support.h"

namespace persona::demand {
namespace {

constexpr int64_t kDay = 86400;
const float kNaN = std::numeric_limits<float>::quiet_NaN();

// A tiny event table: users, items with categories, events appended in time order.
struct Events {
  store::EventColumns e;
  Events() {
    e.user_ids = {"u0", "u1", "u2"};
    e.user_regions = {"UK", "UK", "FR"};
    e.item_ids = {"i0", "i1", "i2"};
    e.item_categories = {"tea", "cups", "tea"};
  }
  void add(int user, int item, EventType type, float qty, float price, int64_t day, int session) {
    e.user.push_back(user);
    e.item.push_back(item);
    e.type.push_back(static_cast<uint8_t>(type));
    e.quantity.push_back(qty);
    e.value.push_back(price);
    e.timestamp.push_back(day * kDay);
    e.session.push_back(session);
  }
};

TEST(Propensity, FeaturesAndLabelsByHand) {
  Events ev;
  // u0: invoices on day 10 (two lines) and day 80; buys again on day 120 (within 90 days of 100).
  ev.add(0, 0, EventType::Purchase, 2, 5, 10, 1);
  ev.add(0, 1, EventType::Purchase, 1, 10, 10, 1);
  ev.add(0, 0, EventType::Purchase, 1, 5, 80, 2);
  ev.add(0, 1, EventType::View, 1, 10, 90, -1);  // views are not purchases
  ev.add(1, 2, EventType::Purchase, 1, 8, 95, 3);
  ev.add(2, 2, EventType::Purchase, 3, kNaN, 99, -1);  // no price, no session
  ev.add(0, 0, EventType::Purchase, 1, 5, 120, 4);
  ev.add(1, 2, EventType::Purchase, 1, 8, 200, 5);  // after the horizon
  const auto set = propensity_set(ev.e, 100 * kDay, 90);
  ASSERT_EQ(set.data.rows(), 3u);
  EXPECT_EQ(set.home_region, "UK");
  ASSERT_EQ(set.users, (std::vector<int32_t>{0, 1, 2}));
  const auto& x = set.data.x;
  EXPECT_FLOAT_EQ(x(0, 0), 20);       // recency: day 100 - day 80
  EXPECT_FLOAT_EQ(x(0, 1), 2);        // two invoices
  EXPECT_FLOAT_EQ(x(0, 2), 25);       // 2*5 + 10 + 5
  EXPECT_FLOAT_EQ(x(0, 3), 90);       // tenure
  EXPECT_FLOAT_EQ(x(0, 4), 12.5);     // mean basket
  EXPECT_FLOAT_EQ(x(0, 5), 2);        // distinct items
  EXPECT_FLOAT_EQ(x(0, 6), 1);        // invoices in the last 30 days
  EXPECT_FLOAT_EQ(x(0, 7), 2);        // ... and 90
  EXPECT_FLOAT_EQ(x(0, 8), 70);       // days between the two invoices
  EXPECT_FLOAT_EQ(x(0, 9), 1);        // UK
  EXPECT_FLOAT_EQ(x(2, 9), 0);
  EXPECT_FLOAT_EQ(x(2, 2), 0);        // no price: no money
  EXPECT_EQ(set.data.y, (std::vector<int>{1, 0, 0}));
  EXPECT_NEAR(set.positive_rate(), 1.0 / 3, 1e-12);
  EXPECT_EQ(propensity_set(ev.e, 5 * kDay).data.rows(), 0u);  // nobody bought before day 5
}

TEST(Forecast, HoltWintersFollowsTrendAndWeek) {
  std::vector<double> y;
  for (int d = 0; d < 120; ++d) y.push_back(50 + 0.5 * d + (d % 7 == 5 || d % 7 == 6 ? 20 : 0));
  const auto m = fit_holt_winters(y);
  const auto f = m.forecast(14);
  for (int h = 0; h < 14; ++h) {
    const int d = 120 + h;
    const double truth = 50 + 0.5 * d + (d % 7 == 5 || d % 7 == 6 ? 20 : 0);
    EXPECT_NEAR(f[static_cast<size_t>(h)], truth, 3.0) << h;
  }
  const auto b = backtest(y, 14);
  EXPECT_LT(b.mae, b.naive_mae);  // a trend the seasonal naive forecast cannot see
  EXPECT_THROW(fit_holt_winters({1, 2, 3}), std::invalid_argument);
}

TEST(Forecast, EachSeriesUsesTheMethodThatDidBetterAndSaysSo) {
  const DailySeries trend{0, [] {
    std::vector<double> y;
    for (int d = 0; d < 120; ++d) y.push_back(50 + 0.8 * d + (d % 7 == 5 ? 20 : 0));
    return y;
  }()};
  const auto t = forecast_category("trend", trend, 14);
  EXPECT_EQ(t.method, "holt-winters") << t.to_json().dump();
  EXPECT_LT(t.backtest.mae, t.backtest.naive_mae);
  // A weekly pattern under heavy day-to-day noise: last week alone is a noisy guess, the mean of
  // four weeks a better one, and Holt-Winters chases the noise.
  std::mt19937 rng(5);
  std::normal_distribution<double> noise(0, 15);
  DailySeries noisy{0, {}};
  for (int d = 0; d < 180; ++d) noisy.values.push_back(std::max(0.0, 60 + (d % 7 == 5 || d % 7 == 6 ? 30 : 0) + noise(rng)));
  const auto n = forecast_category("noisy", noisy, 14);
  EXPECT_EQ(n.method, "seasonal-mean") << n.to_json().dump();
  EXPECT_EQ(n.selection_mae.size(), 3u);
  for (const auto& [m, e] : n.selection_mae) EXPECT_LE(n.selection_mae.at(n.method), e) << m;
  EXPECT_LT(n.backtest.mae, n.backtest.naive_mae) << "the chosen method beats the baseline it is shown beside";
  const auto j = n.to_json();
  EXPECT_EQ(j["method"], "seasonal-mean");
  EXPECT_EQ(j["backtest"]["method"], "seasonal-mean");
  ASSERT_EQ(n.forecast.size(), 14u);
  for (int h = 0; h < 14; ++h) {  // the mean of the same weekday over the last four weeks
    double sum = 0;
    for (int w = 1; w <= 4; ++w) sum += noisy.values[180 - 7 * w + h % 7];
    EXPECT_NEAR(n.forecast[static_cast<size_t>(h)], sum / 4, 1e-9) << h;
  }
  EXPECT_THROW(forecast_with("crystal-ball", noisy.values, 7), std::invalid_argument);
}

TEST(Forecast, DailyDemandPerCategory) {
  Events ev;
  ev.add(0, 0, EventType::Purchase, 2, 5, 10, 1);
  ev.add(1, 1, EventType::Purchase, 1, 5, 12, 2);
  ev.add(1, 1, EventType::View, 1, 5, 12, 2);
  const auto s = daily_demand(ev.e);
  ASSERT_EQ(s.size(), 3u);  // all, cups, tea
  EXPECT_EQ(s.at("all").values, (std::vector<double>{2, 0, 1}));
  EXPECT_EQ(s.at("tea").values, (std::vector<double>{2, 0, 0}));
  EXPECT_TRUE(daily_demand(store::EventColumns{}).empty());
}

TEST(NextCategory, LearnsAlternation) {
  Events ev;
  ev.e.user_ids.clear();
  ev.e.user_regions.clear();
  for (int u = 0; u < 30; ++u) {
    ev.e.user_ids.push_back("u" + std::to_string(u));
    ev.e.user_regions.push_back("");
  }
  // Every customer alternates tea -> cups -> tea -> cups; the last purchase comes after day 50.
  std::vector<std::tuple<int64_t, int, int>> rows;
  for (int u = 0; u < 30; ++u)
    for (int k = 0; k < 5; ++k) rows.emplace_back(k * 12 + u % 5, u, k % 2 == 0 ? 0 : 1);
  std::sort(rows.begin(), rows.end());
  for (const auto& [day, u, item] : rows) ev.add(u, item, EventType::Purchase, 1, 1, day, -1);
  const auto model = NextCategoryModel::fit(ev.e, 50 * kDay);
  EXPECT_GT(model.transition_weight(), 0.0);  // the alternation is only visible through transitions
  EXPECT_EQ(model.predict({"tea", "cups", "tea"})[0].first, "cups");
  EXPECT_EQ(model.predict({"cups"})[0].first, "tea");
  const auto eval = model.evaluate(ev.e, 48 * kDay);
  EXPECT_GT(eval.customers, 0);
  EXPECT_DOUBLE_EQ(eval.top1, 1.0);
  test::TempDir dir;
  model.save(dir.file("n.model"), eval.to_json());
  const auto loaded = NextCategoryModel::load(dir.file("n.model"));
  EXPECT_EQ(loaded.predict({"tea"}), model.predict({"tea"}));
}

TEST(TextAnalysis, NoModelsNoGuesses) {
  test::TempDir dir;
  const auto a = TextAnalyzer::load(dir.path());
  EXPECT_EQ(a.missing_tasks().size(), 3u);
  const auto r = a.analyze("这个手机质量很好，电池很耐用");
  EXPECT_EQ(text::language_code(r.language.language), std::string("zh"));
  EXPECT_FALSE(r.sentiment.has_value());
  EXPECT_FALSE(r.keywords.empty());
  const auto empty = a.analyze("");
  EXPECT_EQ(empty.token_count, 0u);
  EXPECT_TRUE(empty.keywords.empty());
  EXPECT_EQ(empty.to_json()["language"], "unknown");
}

TEST(TextAnalysis, LoadsModelsAndRejectsForeignFiles) {
  test::TempDir dir;
  ml::LabelledTexts d;
  d.label_names = {"negative", "positive"};
  for (int i = 0; i < 40; ++i) {
    d.texts.push_back(i % 2 ? "很好吃 great" : "太难吃 awful");
    d.labels.push_back(i % 2);
  }
  ml::TextClassifierOptions o;
  o.candidates = {"tfidf-linear"};
  o.tune = false;
  o.threads = 1;
  ml::TextClassifier::train(d, o).save(model_path(dir.path(), TextTask::Sentiment), "sentiment");
  const auto a = TextAnalyzer::load(dir.path());
  EXPECT_EQ(a.missing_tasks(), (std::vector<std::string>{"category", "intent"}));
  const auto r = a.analyze("很好吃");
  ASSERT_TRUE(r.sentiment.has_value());
  EXPECT_EQ(r.sentiment->best, "positive");
  EXPECT_FALSE(a.analyze("😀!!").sentiment.has_value());  // no words: no answer
  // A keyword index where a classifier belongs is refused with the file's name.
  save_keyword_index(text::KeywordIndex{}, model_path(dir.path(), TextTask::Intent));
  try {
    TextAnalyzer::load(dir.path());
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("intent.model"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("keyword-index"), std::string::npos);
  }
}

}  // namespace
}  // namespace persona::demand
