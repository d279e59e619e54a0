// Recommendation: the interaction matrix, the metrics on a hand-worked example, every method on
// a world with two tastes, model files, filters, the live path and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "persona/core/error.h"
#include "persona/ml/model_file.h"
#include "persona/recommend/evaluation.h"
#include "persona/recommend/recommend_model.h"
#include "support/test_support.h"

namespace persona::recommend {
namespace {

constexpr int64_t kDay = 86400;

void add(store::EventColumns& e, int32_t user, int32_t item, EventType type, int64_t ts) {
  e.user.push_back(user);
  e.item.push_back(item);
  e.type.push_back(static_cast<uint8_t>(type));
  e.quantity.push_back(1);
  e.value.push_back(std::nan(""));
  e.timestamp.push_back(ts);
  e.session.push_back(-1);
}

// Two tastes: users 0-19 buy among items 0-9 ("books"), users 20-39 among items 10-19
// ("shoes"); each user buys five items of their taste in January and one more in March.
store::EventColumns two_tastes() {
  store::EventColumns e;
  for (int u = 0; u < 40; ++u) e.user_ids.push_back("u" + std::to_string(u));
  for (int i = 0; i < 20; ++i) {
    e.item_ids.push_back("i" + std::to_string(i));
    e.item_categories.push_back(i < 10 ? "Books > Novels" : "Shoes");
    e.item_prices.push_back(10.0 + i);
  }
  for (int u = 0; u < 40; ++u) {
    const int base = u < 20 ? 0 : 10;
    for (int n = 0; n < 5; ++n) add(e, u, base + (u + n * 3) % 10, EventType::Purchase, (n + 1) * kDay);
    add(e, u, base + (u + 7) % 10, EventType::Purchase, 60 * kDay);
  }
  return e;
}

TEST(Interactions, WeightsWindowsAndDecay) {
  store::EventColumns e;
  e.user_ids = {"a", "b"};
  e.item_ids = {"x", "y", "z"};
  e.item_categories = {"c", "c", "d"};
  add(e, 0, 0, EventType::View, 0);
  add(e, 0, 0, EventType::Purchase, kDay);
  add(e, 0, 1, EventType::Return, kDay);  // weight 0: not an interaction
  add(e, 1, 2, EventType::Cart, 2 * kDay);
  InteractionOptions o;
  auto x = build_interactions(e, o);
  ASSERT_EQ(x.user_count(), 2u);
  EXPECT_EQ(x.item_count(), 3u);
  EXPECT_EQ(x.rows[0].items, std::vector<int32_t>{0});
  EXPECT_FLOAT_EQ(x.rows[0].weights[0], 6);  // view 1 + purchase 5
  EXPECT_FLOAT_EQ(x.rows[1].weights[0], 3);
  const auto cols = x.columns();
  EXPECT_EQ(cols[2].items, std::vector<int32_t>{1});
  o.before = 2 * kDay;
  EXPECT_EQ(build_interactions(e, o).user_count(), 1u);
  o.before = std::numeric_limits<int64_t>::max();
  o.half_life_days = 1;  // the view, a day before the user's newest event, counts half
  EXPECT_FLOAT_EQ(build_interactions(e, o).rows[0].weights[0], 5.5f);
}

// Scores fixed in advance, to check the metrics by hand.
class Fixed : public Recommender {
 public:
  explicit Fixed(std::vector<float> s) : s_(std::move(s)) {}
  std::string method() const override { return "fixed"; }
  nlohmann::json params() const override { return {}; }
  void score(const Row&, std::vector<float>& scores) const override { scores = s_; }
  void write(ByteWriter&) const override {}

 private:
  std::vector<float> s_;
};

TEST(Evaluation, MetricsOnAHandWorkedExample) {
  HoldOut h;
  h.train.items.intern("a");
  for (const char* i : {"b", "c", "d", "e"}) h.train.items.intern(i);
  h.train.item_categories.assign(5, "");
  h.train.item_prices.assign(5, std::nan(""));
  h.train.rows = {make_row({{0, 1, 0}, {1, 1, 0}, {2, 1, 0}, {3, 1, 0}, {4, 1, 0}}, 0)};
  h.candidate.assign(5, 1);
  h.relevant = {{1, 3, 4}};  // relevant: b, d, e
  // Ranking: a, b, c, d (k = 4): hits at ranks 2 and 4.
  const Fixed r({4, 3, 2, 1, 0});
  const auto m = evaluate(r, h, {.k = 4, .threads = 1});
  EXPECT_EQ(m.users, 1u);
  EXPECT_DOUBLE_EQ(m.precision, 2.0 / 4);
  EXPECT_DOUBLE_EQ(m.recall, 2.0 / 3);
  const double dcg = 1 / std::log2(3.0) + 1 / std::log2(5.0);
  const double idcg = 1 + 1 / std::log2(3.0) + 1 / std::log2(4.0);
  EXPECT_NEAR(m.ndcg, dcg / idcg, 1e-12);
  EXPECT_NEAR(m.map, (1.0 / 2 + 2.0 / 4) / 3, 1e-12);
  EXPECT_DOUBLE_EQ(m.hit_rate, 1);
  EXPECT_DOUBLE_EQ(m.coverage, 4.0 / 5);
  // Excluding what the user has seen leaves nothing to rank here.
  EXPECT_EQ(evaluate(r, h, {.k = 4, .exclude_seen = true, .threads = 1}).precision, 0);
}

TEST(Recommenders, EveryMethodFindsTheTaste) {
  const auto e = two_tastes();
  const auto h = temporal_holdout(e, InteractionOptions{}, 30 * kDay);
  ASSERT_EQ(h.evaluated_users(), 40u);
  for (const char* variant : {"item-knn", "item-knn/tfidf", "item-knn/bm25", "user-knn", "ease", "als", "bpr", "hybrid"}) {
    const std::string name = variant, method = name.substr(0, name.find('/'));
    MethodSpec s;
    s.method = method;
    if (name.find('/') != std::string::npos) s.weighting = name.substr(name.find('/') + 1);
    s.lambda = 10;
    s.users = 10;
    s.epochs = 300;
    s.factors = 4;
    // A small world: strong regularisation keeps ALS's factors to the two tastes.
    s.regularization = method == "als" ? 5 : 0.01;
    const auto r = fit_recommender(h.train, s, 2);
    std::vector<float> scores;
    r->score(h.train.rows[0], scores);  // a books reader
    const auto top = top_k(scores, h.candidate, 5, &h.train.rows[0]);
    ASSERT_EQ(top.size(), 5u) << name;
    for (const auto& t : top) EXPECT_LT(t.item, 10) << name << " recommended a shoe to a books reader";
    const auto m = evaluate(*r, h, {.k = 10, .threads = 2});
    EXPECT_GT(m.hit_rate, 0.99) << name;  // the March item is always among the ten of the taste
  }
  MethodSpec pop;
  pop.method = "popularity";
  const auto p = fit_recommender(h.train, pop);
  EXPECT_LT(evaluate(*p, h, {.k = 3, .threads = 1}).hit_rate, 1.0);  // one list for all: cannot serve both tastes
  MethodSpec knn;
  knn.method = "item-knn";
  const auto k = fit_recommender(h.train, knn);
  for (const auto& s : k->similar(12, 5)) EXPECT_GE(s.item, 10);
}

// Item-item similarities under TF-IDF and BM25 weighting, worked by hand (implicit's formulas):
// items x users, N = 3 items; user a chose items 0 and 1 (weights 2 and 1), user b items 0, 1, 2
// (weights 1, 1, 4).
TEST(Recommenders, ItemKnnWeightingsMatchTheFormulas) {
  Interactions x;
  x.users.intern("a"), x.users.intern("b");
  for (const char* i : {"i0", "i1", "i2"}) x.items.intern(i);
  x.item_categories.assign(3, "");
  x.item_prices.assign(3, std::nan(""));
  x.rows = {make_row({{0, 2, 0}, {1, 1, 0}}, 0), make_row({{0, 1, 0}, {1, 1, 0}, {2, 4, 0}}, 0)};
  const double idf_a = std::log(3.0) - std::log1p(2.0), idf_b = std::log(3.0) - std::log1p(3.0);
  auto similarity = [&](const MethodSpec& s, int32_t from, int32_t to) {
    for (const auto& n : fit_recommender(x, s, 1)->similar(from, 10))
      if (n.item == to) return static_cast<double>(n.score);
    return 0.0;
  };
  MethodSpec s;
  s.method = "item-knn";
  s.weighting = "tfidf";
  // sim(0, 1) = sum over users of (sqrt(w_0u) idf_u)(sqrt(w_1u) idf_u)
  EXPECT_NEAR(similarity(s, 0, 1), std::sqrt(2.0) * idf_a * idf_a + idf_b * idf_b, 1e-5);
  s.weighting = "bm25";
  s.bm25_k1 = 1.2, s.bm25_b = 0.75;
  const double average = (3 + 2 + 4) / 3.0;  // items' total weights 3, 2, 4
  const double k1 = 1.2 * 9 / 5;             // in units of the mean entry weight: 9 over 5 entries
  auto bm25 = [&](double w, double length, double idf) {
    const double norm = (1 - 0.75) + 0.75 * length / average;
    return w * (k1 + 1) / (k1 * norm + w) * idf;
  };
  EXPECT_NEAR(similarity(s, 0, 2), bm25(1, 3, idf_b) * bm25(4, 4, idf_b), 1e-5);
  EXPECT_NEAR(similarity(s, 1, 0), bm25(1, 2, idf_a) * bm25(2, 3, idf_a) + bm25(1, 2, idf_b) * bm25(1, 3, idf_b), 1e-5);
  s.weighting = "manhattan";
  EXPECT_THROW(fit_recommender(x, s, 1), Error);
  s.weighting = "bm25";
  EXPECT_EQ(MethodSpec::from_json(s.to_json()).weighting, "bm25");
  EXPECT_EQ(MethodSpec::from_json(s.to_json()).bm25_k1, 1.2);
}

TEST(Recommenders, TrainingIsReproducibleWhateverTheThreads) {
  // The same seed gives the same model with one thread or several (BPR's SGD runs on one).
  const auto x = build_interactions(two_tastes(), InteractionOptions{});
  for (const char* method : {"bpr", "als", "item-knn", "ease", "user-knn"}) {
    MethodSpec s;
    s.method = method;
    s.factors = 8;
    ByteWriter one, two, again;
    write_recommender(*fit_recommender(x, s, 1), one);
    write_recommender(*fit_recommender(x, s, 2), two);
    write_recommender(*fit_recommender(x, s, 2), again);
    EXPECT_EQ(one.bytes(), two.bytes()) << method;
    EXPECT_EQ(two.bytes(), again.bytes()) << method;
  }
}

TEST(Recommenders, RepurchaseRanksTheUsersOwnItemsFirst) {
  const auto e = two_tastes();
  const auto x = build_interactions(e, InteractionOptions{});
  MethodSpec s;
  s.method = "repurchase";
  const auto r = fit_recommender(x, s);
  Row history = make_row({{15, 5, 0}, {15, 5, 1}, {3, 5, 2}}, 0);  // item 15 twice, item 3 once
  std::vector<float> scores;
  r->score(history, scores);
  const auto top = top_k(scores, std::vector<uint8_t>(20, 1), 3);
  EXPECT_EQ(top[0].item, 15);
  EXPECT_EQ(top[1].item, 3);
  EXPECT_EQ(r->because_of(history, 15), 15);
}

TEST(RecommendModel, RoundTripsFiltersAndLiveHistory) {
  const auto e = two_tastes();
  test::TempDir dir;
  for (const char* method : {"popularity", "repurchase", "item-knn", "user-knn", "ease", "als", "bpr", "hybrid"}) {
    MethodSpec s;
    s.method = method;
    s.factors = 8;
    const auto m = RecommendModel::train(e, InteractionOptions{}, s);
    const auto path = dir.file(std::string(method) + ".model");
    m.save(path, {{"ndcg", 0.5}});
    const auto loaded = RecommendModel::load(path);
    RecommendRequest q;
    const auto history = m.history(e);  // everyone's events: a heavy user
    const auto a = m.recommend(history, q), b = loaded.recommend(loaded.history(e), q);
    ASSERT_EQ(a.size(), b.size()) << method;
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].item, b[i].item) << method;
    EXPECT_EQ(loaded.metrics()["ndcg"], 0.5);
    // Similar items whatever the method (an item-kNN beside those without item similarity),
    // kept in the file; a shoe's neighbours are mostly shoes (ALS's 8 factors on 40 users blur a little).
    const auto similar = loaded.similar("i14", 3);
    ASSERT_EQ(similar.size(), 3u) << method;
    EXPECT_GE(std::count_if(similar.begin(), similar.end(), [](const Recommendation& r) { return r.category == "Shoes"; }), 2)
        << method;
    // No history item behind a recommendation: the reason says what is true of the method.
    for (const auto& r : a)
      if (r.because.empty() && r.reason != "you chose it before") {
        if (std::string(method) == "popularity") {
          EXPECT_EQ(r.reason, "popular across the shop");
        }
        EXPECT_NE(r.reason, "popular with customers like you") << method;
      }
  }
  MethodSpec s;
  s.method = "item-knn";
  const auto m = RecommendModel::train(e, InteractionOptions{}, s);
  // Live: a user with no history gets popular items; one view of a shoe brings shoes.
  RecommendRequest q;
  q.k = 3;
  const auto cold = m.recommend(Row{}, q);
  ASSERT_EQ(cold.size(), 3u);
  EXPECT_EQ(cold[0].reason, "popular now");
  store::EventColumns one = e;
  one.user.clear(), one.item.clear(), one.type.clear(), one.quantity.clear(), one.value.clear(), one.timestamp.clear(),
      one.session.clear();
  add(one, 0, 14, EventType::View, kDay);
  q.exclude_seen = true;
  const auto warm = m.recommend(m.history(one), q);
  ASSERT_EQ(warm.size(), 3u);
  for (const auto& r : warm) {
    EXPECT_EQ(r.category, "Shoes");
    EXPECT_NE(r.item, "i14");
    EXPECT_EQ(r.because, "i14");
  }
  // Filters: a category prefix and a price range.
  q.exclude_seen = false;
  q.k = 100;
  q.category = "Books";
  for (const auto& r : m.recommend(m.history(one), q)) EXPECT_EQ(r.category.rfind("Books", 0), 0u);
  q.category.clear();
  q.min_price = 12;
  q.max_price = 13;
  const auto priced = m.recommend(Row{}, q);
  ASSERT_EQ(priced.size(), 2u);  // items 2 and 3 cost 12 and 13
  q.k = 0;
  EXPECT_TRUE(m.recommend(Row{}, q).empty());
  q.k = 1000000;
  q.min_price.reset(), q.max_price.reset();
  EXPECT_EQ(m.recommend(Row{}, q).size(), 20u);
  EXPECT_EQ(m.similar("i3", 4).size(), 4u);
  EXPECT_THROW(m.similar("no-such-item", 4), Error);
}

TEST(RecommendModel, BadInputIsAClearError) {
  store::EventColumns empty;
  MethodSpec s;
  EXPECT_THROW(RecommendModel::train(empty, InteractionOptions{}, s), Error);
  s.method = "deep-magic";
  EXPECT_THROW(RecommendModel::train(two_tastes(), InteractionOptions{}, s), Error);
  // EASE refuses a catalogue whose item x item matrix would not fit.
  Interactions huge;
  std::vector<Choice> all;
  for (int i = 0; i < static_cast<int>(kEaseMaxItems) + 1; ++i) {
    huge.items.intern("i" + std::to_string(i));
    all.push_back({i, 1, 0});
  }
  huge.item_categories.assign(kEaseMaxItems + 1, "");
  huge.item_prices.assign(kEaseMaxItems + 1, 0);
  huge.rows = {make_row(all, 0)};
  MethodSpec ease;
  ease.method = "ease";
  EXPECT_THROW(fit_recommender(huge, ease), Error);
  // A user with every item (of 600; EASE inverts an items x items matrix, slow in a debug build): still a full, defined answer.
  Interactions every;
  std::vector<Choice> items;
  for (int i = 0; i < 600; ++i) {
    every.items.intern("i" + std::to_string(i));
    items.push_back({i, 1, 0});
  }
  every.item_categories.assign(600, "");
  every.item_prices.assign(600, 0);
  every.rows = {make_row(items, 0)};
  MethodSpec knn;
  knn.method = "item-knn";
  for (const char* variant : {"item-knn", "item-knn/bm25", "item-knn/tfidf", "user-knn", "ease", "als", "bpr", "repurchase"}) {
    const std::string name = variant;
    MethodSpec m;
    m.method = name.substr(0, name.find('/'));
    if (name.find('/') != std::string::npos) m.weighting = name.substr(name.find('/') + 1);
    m.factors = 8;
    m.epochs = 2;
    const auto r = fit_recommender(every, m);
    std::vector<float> scores;
    r->score(every.rows[0], scores);
    EXPECT_EQ(scores.size(), 600u) << name;
    for (float x : scores) ASSERT_TRUE(std::isfinite(x)) << name;
  }
  // Corrupt and foreign model files.
  test::TempDir dir;
  const auto m = RecommendModel::train(two_tastes(), InteractionOptions{}, knn);
  m.save(dir.file("ok.model"));
  auto bytes = test::read_file(dir.file("ok.model"));
  bytes[bytes.size() / 2] ^= 0x5a;
  test::write_file(dir.file("bad.model"), bytes);
  EXPECT_THROW(RecommendModel::load(dir.file("bad.model")), std::runtime_error);
  test::write_file(dir.file("text.model"), "not a model at all");
  EXPECT_THROW(RecommendModel::load(dir.file("text.model")), std::runtime_error);
  EXPECT_THROW(RecommendModel::load(dir.file("missing.model")), std::runtime_error);
  // A file from before segment popularity (its payload ends at the trending scores) still loads,
  // without segments (an item-kNN model ends with a segment table of 0 segments and the flag 0: no
  // item-kNN beside it).
  auto file = ml::read_model_file(dir.file("ok.model"), "recommender");
  std::string payload(file.payload);
  ASSERT_EQ(payload.back(), '\0');
  payload.resize(payload.size() - sizeof(uint64_t) - 1);
  ml::write_model_file(dir.file("older.model"), file.header, payload);
  const auto older = RecommendModel::load(dir.file("older.model"));
  EXPECT_EQ(older.segments(), 0u);
  RecommendRequest q;
  q.segment = 1;
  EXPECT_EQ(older.recommend(Row{}, q).size(), 10u);
}

TEST(Recommenders, ContentRanksNewItemsTrendingFollowsTheLatestDays) {
  auto e = two_tastes();
  e.item_texts.assign(20, "");
  for (int i = 0; i < 20; ++i) e.item_texts[static_cast<size_t>(i)] = i < 10 ? "paper novel story book" : "running shoe sole";
  // A new item nobody has chosen: a novel, described as one.
  e.item_ids.push_back("new-novel");
  e.item_categories.push_back("Books > Novels");
  e.item_prices.push_back(9);
  e.item_texts.push_back("a new novel: the story of a paper book");
  MethodSpec content;
  content.method = "content";
  const auto m = RecommendModel::train(e, InteractionOptions{}, content);
  store::EventColumns mine = e;
  mine.user.clear(), mine.item.clear(), mine.type.clear(), mine.quantity.clear(), mine.value.clear(),
      mine.timestamp.clear(), mine.session.clear();
  add(mine, 0, 3, EventType::Purchase, kDay);
  RecommendRequest q;
  q.k = 10;  // the nine other novels and the new one
  q.exclude_seen = true;
  bool found = false;
  for (const auto& r : m.recommend(m.history(mine), q)) {
    EXPECT_EQ(r.category, "Books > Novels") << r.item;
    found |= r.item == "new-novel";
  }
  EXPECT_TRUE(found) << "the new item was not recommended";
  EXPECT_EQ(m.similar("new-novel", 3).size(), 3u);

  // Trending: only shoes were bought in the last days.
  add(e, 0, 15, EventType::Purchase, 100 * kDay);
  add(e, 1, 15, EventType::Purchase, 100 * kDay);
  add(e, 2, 16, EventType::Purchase, 99 * kDay);
  MethodSpec trending;
  trending.method = "trending";
  const auto t = RecommendModel::train(e, InteractionOptions{}, trending);
  q.k = 2;
  q.exclude_seen = false;
  const auto top = t.recommend(Row{}, q);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].item, "i15");
  EXPECT_EQ(top[1].item, "i16");
}

TEST(RecommendModel, DiversityBringsMoreCategories) {
  auto e = two_tastes();
  for (int i = 0; i < 20; ++i) e.item_categories[static_cast<size_t>(i)] = "c" + std::to_string(i % 4);
  MethodSpec pop;
  pop.method = "popularity";
  const auto m = RecommendModel::train(e, InteractionOptions{}, pop);
  RecommendRequest q;
  q.k = 4;
  auto categories = [&](double d) {
    q.diversity = d;
    std::set<std::string> c;
    for (const auto& r : m.recommend(Row{}, q)) c.insert(r.category);
    return c.size();
  };
  EXPECT_EQ(categories(0.9), 4u);
  EXPECT_LE(categories(0), categories(0.9));
}

TEST(RecommendService, RetrainSwapsInWhileReadersServe) {
  const auto e = two_tastes();
  MethodSpec pop;
  pop.method = "popularity";
  RecommendService service(std::make_shared<const RecommendModel>(RecommendModel::train(e, InteractionOptions{}, pop)));
  std::atomic<bool> stop{false};
  std::atomic<size_t> served{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&] {
      RecommendRequest q;
      q.k = 3;
      while (!stop) {
        const auto model = service.model();
        ASSERT_EQ(model->recommend(Row{}, q).size(), 3u);
        ++served;
      }
    });
  MethodSpec knn;
  knn.method = "item-knn";
  ASSERT_TRUE(service.retrain_async([&] { return RecommendModel::train(e, InteractionOptions{}, knn); }));
  service.wait();
  EXPECT_EQ(service.model()->recommender().method(), "item-knn");
  // A failing retrain keeps the model that serves, and says why.
  ASSERT_TRUE(service.retrain_async([]() -> RecommendModel { throw Error("the store is gone"); }));
  service.wait();
  EXPECT_EQ(service.model()->recommender().method(), "item-knn");
  EXPECT_NE(service.last_error().find("the store is gone"), std::string::npos);
  while (served < 10) std::this_thread::yield();
  stop = true;
  for (auto& t : readers) t.join();
}

// ThreadSanitizer reports a lock-order inversion inside hnswlib's insertion (it locks graph nodes
// in the order its walk meets them), which no suppression pattern reaches; Persona inserts from one
// thread, so it cannot deadlock. The ANN path is checked in the other builds, AddressSanitizer's
// included.
#if defined(__SANITIZE_THREAD__)
#define PERSONA_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PERSONA_UNDER_TSAN 1
#endif
#endif

TEST(RecommendModel, LargeCataloguesRankThroughTheAnnIndex) {
#ifdef PERSONA_UNDER_TSAN
  GTEST_SKIP() << "hnswlib's node locks: see the comment above";
#endif
  // 3,000 items in 30 tastes; 600 users each choosing within one taste.
  store::EventColumns e;
  for (int i = 0; i < 3000; ++i) {
    e.item_ids.push_back("i" + std::to_string(i));
    e.item_categories.push_back("t" + std::to_string(i % 30));
    e.item_prices.push_back(i % 100);
  }
  std::mt19937 rng(3);
  for (int u = 0; u < 600; ++u) {
    e.user_ids.push_back("u" + std::to_string(u));
    for (int n = 0; n < 12; ++n) add(e, u, static_cast<int32_t>((u % 30) + 30 * (rng() % 100)), EventType::Purchase, n * kDay);
  }
  MethodSpec als;
  als.method = "als";
  als.factors = 32;
  als.ann_min_items = 1000;  // this catalogue counts as large
  const auto x = build_interactions(e, InteractionOptions{});
  const auto r = fit_recommender(x, als);
  std::vector<Row> some(x.rows.begin(), x.rows.begin() + 100);
  const double recall = ann_recall(*r, some, 10);
  EXPECT_GT(recall, 0.9);
  EXPECT_LE(recall, 1.0);
  als.ann_min_items = 1000000;  // the exact path: nothing to lose
  EXPECT_EQ(ann_recall(*fit_recommender(x, als), some, 10), 1.0);
  // Served through the index, with filters, from a saved and loaded model.
  als.ann_min_items = 1000;
  test::TempDir dir;
  RecommendModel::train(e, InteractionOptions{}, als).save(dir.file("als.model"));
  const auto m = RecommendModel::load(dir.file("als.model"));
  RecommendRequest q;
  q.k = 10;
  q.max_price = 49;
  q.exclude_seen = true;
  const auto recs = m.recommend(x.rows[0], q);
  ASSERT_EQ(recs.size(), 10u);
  for (const auto& rec : recs) {
    EXPECT_EQ(rec.category, "t0");  // user 0's taste
    EXPECT_LE(std::stoi(rec.item.substr(1)) % 100, 49);
  }
}

TEST(Evaluation, LeaveLastKAndRandomHoldOuts) {
  const auto e = two_tastes();
  const auto last = leave_last_k_holdout(e, InteractionOptions{}, 1);
  EXPECT_EQ(last.evaluated_users(), 40u);
  for (size_t u = 0; u < last.relevant.size(); ++u) {
    ASSERT_EQ(last.relevant[u].size(), 1u);
    // The held-out item is the March one, and it is gone from the user's training row.
    const auto& row = last.train.rows[u];
    EXPECT_FALSE(std::binary_search(row.items.begin(), row.items.end(), last.relevant[u][0]));
    EXPECT_EQ(row.size(), 5u);
  }
  const auto a = random_holdout(e, InteractionOptions{}, 0.5, 7), b = random_holdout(e, InteractionOptions{}, 0.5, 7);
  EXPECT_EQ(a.relevant, b.relevant);  // seeded
  for (size_t u = 0; u < a.relevant.size(); ++u) {
    EXPECT_EQ(a.relevant[u].size(), 3u);  // half of six items
    EXPECT_EQ(a.train.rows[u].size(), 3u);
  }
  EXPECT_NE(a.relevant, random_holdout(e, InteractionOptions{}, 0.5, 8).relevant);
  EXPECT_EQ(leave_last_k_holdout(e, InteractionOptions{}, 10).evaluated_users(), 0u);  // nobody has eleven items
}

TEST(Rerank, ProfileFeaturesReorderTheCandidates) {
  // Items: 0 "A" at 100, 1 "B" at 10, 2 "A" at 10, 3 "A" at 10 (the user's history).
  const std::vector<std::string> categories{"A", "B", "A", "A"};
  const std::vector<double> prices{100, 10, 10, 10};
  Interactions x;
  for (const char* u : {"in-0", "in-1"}) x.users.intern(u);
  for (const char* i : {"i0", "i1", "i2", "i3"}) x.items.intern(i);
  x.item_categories = categories;
  x.item_prices = prices;
  x.rows = {make_row({{2, 1, 0}}, 0), make_row({{0, 1, 0}, {1, 1, 0}}, 0)};
  const SegmentPopularity popular(x, {{"in-0", 0}, {"in-1", 1}, {"nobody", 7}});
  ASSERT_NE(popular.of(0), nullptr);
  EXPECT_FLOAT_EQ((*popular.of(0))[2], 1);
  EXPECT_FLOAT_EQ((*popular.of(0))[0], 0);
  EXPECT_EQ(popular.of(-1), nullptr);
  EXPECT_EQ(popular.of(99), nullptr);
  const ItemFacts facts{categories, prices, popular};
  const Row history = make_row({{3, 1, 0}}, 0);
  const std::vector<Scored> base{{1, 1.0f}, {0, 0.9f}, {2, 0.8f}};
  auto order = [&](const RerankSpec& spec, int32_t segment) {
    auto ranked = base;
    rerank(spec, facts, history, segment, ranked);
    std::vector<int32_t> items;
    for (const auto& s : ranked) items.push_back(s.item);
    return items;
  };
  EXPECT_EQ(order({}, 0), (std::vector<int32_t>{1, 0, 2}));  // off: the base order
  RerankSpec affinity;
  affinity.affinity = 0.6;  // all of the history is in "A": 0 (0.5 + 0.6) passes 1 (1.0)
  EXPECT_EQ(order(affinity, -1), (std::vector<int32_t>{0, 1, 2}));
  RerankSpec price;
  price.price = 1;  // the user pays 10: the item at 100 drops to last
  EXPECT_EQ(order(price, -1), (std::vector<int32_t>{1, 2, 0}));
  RerankSpec segment;
  segment.segment = 2;  // segment 0 chose item 2
  EXPECT_EQ(order(segment, 0), (std::vector<int32_t>{2, 1, 0}));
  EXPECT_EQ(order(segment, -1), (std::vector<int32_t>{1, 0, 2}));  // no segment: nothing to add
}

TEST(RecommendModel, SegmentsServeColdStartAndRerank) {
  const auto e = two_tastes();
  UserSegments segments;
  for (int u = 0; u < 40; ++u) segments["u" + std::to_string(u)] = u < 20 ? 0 : 1;
  MethodSpec s;
  s.method = "item-knn";
  s.rerank.segment = 0.5;
  const auto m = RecommendModel::train(e, InteractionOptions{}, s, 1, segments);
  EXPECT_EQ(m.segments(), 2u);
  test::TempDir dir;
  m.save(dir.file("r.model"));
  const auto loaded = RecommendModel::load(dir.file("r.model"));
  EXPECT_EQ(loaded.segments(), 2u);
  EXPECT_EQ(loaded.recommender().params()["rerank"]["segment"], 0.5);
  for (const auto* model : {&m, &loaded}) {
    RecommendRequest q;
    q.k = 5;
    q.segment = 1;  // a new user in the shoe segment: shoes, and why
    for (const auto& r : model->recommend(Row{}, q)) {
      EXPECT_EQ(r.category, "Shoes");
      EXPECT_EQ(r.reason, "popular in your segment");
    }
    q.segment = 0;
    for (const auto& r : model->recommend(Row{}, q)) EXPECT_EQ(r.category, "Books > Novels");
    q.segment = -1;
    EXPECT_EQ(model->recommend(Row{}, q).front().reason, "popular now");
    q.segment = 42;  // a segment the model has not seen: as if none
    EXPECT_EQ(model->recommend(Row{}, q).size(), 5u);
  }
}

// Tuning on a temporal window of the two-taste world (January trains, March validates).
Tuning tune_two_tastes(const std::vector<MethodSpec>& grid, const UserSegments& segments = {}) {
  const auto e = two_tastes();
  Protocol window;
  window.split = 45 * kDay;
  window.end = 90 * kDay;
  TuneOptions o;
  o.threads = 1;
  o.segments = segments;
  o.margin_se = 2;
  return tune([&](const InteractionOptions& io) { return make_holdout(e, io, window); }, grid, o);
}

TEST(Evaluation, TuningPicksOnValidationNotTest) {
  std::vector<MethodSpec> grid(2);
  grid[0].method = "popularity";
  grid[1].method = "item-knn";
  const auto tuning = tune_two_tastes(grid);
  const auto& trials = tuning.trials;
  // The grid, then the best method with each reranking (no segments given: none by segment).
  ASSERT_EQ(trials.size(), 2u + rerank_grid(false).size());
  EXPECT_EQ(trials.front().spec.method, "item-knn");
  EXPECT_EQ(tuning.chosen.method, "item-knn");
  EXPECT_NE(tuning.reason.find("best on validation"), std::string::npos) << tuning.reason;
  EXPECT_EQ(tuning.users, 40u);
  for (const auto& t : trials) {
    EXPECT_GE(trials.front().validation.ndcg, t.validation.ndcg);
    EXPECT_EQ(t.user_ndcg.size(), 40u);
    if (t.spec.rerank.active()) {
      EXPECT_EQ(t.spec.method, "item-knn");
    }
    EXPECT_EQ(t.spec.rerank.segment, 0);
  }
  UserSegments segments;
  for (int u = 0; u < 40; ++u) segments["u" + std::to_string(u)] = u < 20 ? 0 : 1;
  const auto with_segments = tune_two_tastes(grid, segments).trials;
  ASSERT_EQ(with_segments.size(), 2u + rerank_grid(true).size());
  EXPECT_TRUE(std::any_of(with_segments.begin(), with_segments.end(), [](const Trial& t) { return t.spec.rerank.segment > 0; }));
  // Popularity is always compared, even when the grid leaves it out.
  const auto without = tune_two_tastes({grid[1]});
  EXPECT_NO_THROW(without.popularity());
  const auto e = two_tastes();
  Protocol empty;
  empty.split = 500 * kDay;  // no users in that window
  EXPECT_THROW(tune([&](const InteractionOptions& io) { return make_holdout(e, io, empty); }, grid), Error);
}

// Users who choose items at random: no method can beat popularity except by luck, and the best of
// many settings by luck must not be trusted.
TEST(Evaluation, TuningKeepsPopularityUnlessClearlyBeaten) {
  store::EventColumns e;
  std::mt19937_64 rng(5);
  for (int u = 0; u < 300; ++u) e.user_ids.push_back("u" + std::to_string(u));
  for (int i = 0; i < 60; ++i) e.item_ids.push_back("i" + std::to_string(i)), e.item_categories.push_back("c");
  for (int u = 0; u < 300; ++u)
    for (int n = 0; n < 8; ++n) add(e, u, static_cast<int32_t>(rng() % 60), EventType::Purchase, (n + 1) * kDay);
  Protocol random;
  random.kind = Protocol::Kind::RandomPerUser;
  TuneOptions o;
  o.threads = 1;
  o.exclude_seen = true;
  const auto tuning = tune([&](const InteractionOptions& io) { return make_holdout(e, io, random); }, default_grid(), o);
  EXPECT_EQ(tuning.chosen.method, "popularity") << tuning.reason;
  EXPECT_EQ(tuning.reason.rfind("popularity", 0), 0u) << tuning.reason;
  // The two-taste world has a clear winner, chosen with the default margin.
  std::vector<MethodSpec> grid(2);
  grid[0].method = "popularity";
  grid[1].method = "item-knn";
  EXPECT_EQ(tune_two_tastes(grid).chosen.method, "item-knn");
}

// The validation follows the evaluation's seen-item rule: re-buyers make repurchase the best when
// seen items may be recommended, and useless when they may not.
TEST(Evaluation, ValidationUsesTheSeenItemRule) {
  store::EventColumns e;
  for (int u = 0; u < 60; ++u) e.user_ids.push_back("u" + std::to_string(u));
  for (int i = 0; i < 40; ++i) e.item_ids.push_back("i" + std::to_string(i)), e.item_categories.push_back("c");
  // Each user re-buys their own three items every week; half of them also try one new item of
  // their group (items 20-29 or 30-39) that the group's others bought.
  for (int u = 0; u < 60; ++u)
    for (int week = 0; week < 10; ++week) {
      for (int n = 0; n < 3; ++n) add(e, u, (u + n * 7) % 20, EventType::Purchase, (week * 7 + n) * kDay);
      add(e, u, (u % 2 ? 20 : 30) + (u + week) % 10, EventType::Purchase, (week * 7 + 4) * kDay);
    }
  Protocol window;
  window.split = 56 * kDay;
  window.end = 70 * kDay;
  std::vector<MethodSpec> grid(3);
  grid[0].method = "popularity";
  grid[1].method = "repurchase";
  grid[2].method = "item-knn";
  TuneOptions o;
  o.threads = 1;
  o.margin_se = 2;
  const auto make = [&](const InteractionOptions& io) { return make_holdout(e, io, window); };
  EXPECT_EQ(tune(make, grid, o).chosen.method, "repurchase");
  o.exclude_seen = true;
  const auto excluding = tune(make, grid, o);
  EXPECT_EQ(excluding.chosen.method, "item-knn") << excluding.reason;
  // Repurchase without the user's own items is popularity's list: no better than it.
  for (const auto& t : excluding.trials)
    if (t.spec.method == "repurchase") {
      EXPECT_LE(t.validation.ndcg, excluding.popularity().validation.ndcg + 1e-9);
    }
}

TEST(Evaluation, ProtocolsAsData) {
  const auto e = two_tastes();
  const InteractionOptions o;
  Protocol p;
  p.kind = Protocol::Kind::LeaveLastOut;
  EXPECT_EQ(make_holdout(e, o, p).relevant, leave_last_k_holdout(e, o, 1).relevant);
  EXPECT_EQ(p.to_json()["protocol"], "leave-last-out");
  p.kind = Protocol::Kind::RandomPerUser;
  p.ratio = 0.5;
  p.seed = 7;
  const auto h = make_holdout(e, o, p);
  EXPECT_EQ(h.relevant, random_holdout(e, o, 0.5, 7).relevant);
  EXPECT_EQ(Protocol::kind_of("random-per-user"), Protocol::Kind::RandomPerUser);
  EXPECT_THROW(Protocol::kind_of("shuffle"), Error);
  // The training events leave out exactly the held-out items.
  const auto train = training_events(e, o, p);
  EXPECT_EQ(train.size(), e.size() - 40 * 3);
  for (size_t k = 0; k < train.size(); ++k) {
    const auto row = h.train.users.find(train.user_ids[static_cast<size_t>(train.user[k])]);
    ASSERT_TRUE(row);
    const auto& held = h.relevant[*row];
    EXPECT_FALSE(std::binary_search(held.begin(), held.end(), train.item[k]));
  }
  // Validation for a random split: the same protocol on the training events, another draw.
  const auto plan = validation_plan(train, o, p, 30);
  EXPECT_EQ(plan.protocol.kind, Protocol::Kind::RandomPerUser);
  EXPECT_NE(plan.protocol.seed, p.seed);
  EXPECT_TRUE(plan.fallback.empty());
  // Temporal: the window before the split when it holds enough users...
  Protocol t;
  t.split = 90 * kDay;
  auto many = two_tastes();
  for (int copy = 1; copy < 3; ++copy)  // 120 users: past the minimum of 50
    for (int u = 0; u < 40; ++u) {
      many.user_ids.push_back("c" + std::to_string(copy) + "u" + std::to_string(u));
      for (size_t k = 0; k < 6; ++k) add(many, static_cast<int32_t>(40 * copy + u), e.item[static_cast<size_t>(u) * 6 + k], EventType::Purchase,
                                         e.timestamp[static_cast<size_t>(u) * 6 + k]);
    }
  const auto window = validation_plan(training_events(many, o, t), o, t, 45);
  EXPECT_EQ(window.protocol.kind, Protocol::Kind::Temporal);
  EXPECT_EQ(window.protocol.end, 90 * kDay);  // the window ends at the evaluation's split
  EXPECT_EQ(window.protocol.split, 45 * kDay);
  // ...and a random per-user split when it does not (here: events without timestamps).
  auto flat = many;
  std::fill(flat.timestamp.begin(), flat.timestamp.end(), 0);
  const auto fallback = validation_plan(flat, o, Protocol{}, 30);
  EXPECT_EQ(fallback.protocol.kind, Protocol::Kind::RandomPerUser);
  EXPECT_NE(fallback.fallback.find("random per-user"), std::string::npos);
  TuneOptions quick;
  quick.threads = 1;
  std::vector<MethodSpec> grid(2);
  grid[0].method = "popularity";
  grid[1].method = "item-knn";
  const auto tuned = tune([&](const InteractionOptions& io) { return make_holdout(flat, io, fallback.protocol); }, grid, quick);
  EXPECT_EQ(tuned.chosen.method, "item-knn") << tuned.reason;
}

TEST(Evaluation, GivenSplitMatchesIdsByName) {
  store::EventColumns train, test;
  train.user_ids = {"a", "b"};
  train.item_ids = {"x", "y", "z"};
  add(train, 0, 0, EventType::Purchase, 0);
  add(train, 1, 1, EventType::Purchase, 0);
  add(train, 1, 2, EventType::View, 0);
  // The test file's own ids: "b" is user 0 there, "y" item 2; "new" is unknown to training and
  // "c" has no training history.
  test.user_ids = {"b", "a", "c"};
  test.item_ids = {"new", "x", "y"};
  add(test, 0, 2, EventType::Purchase, 5);
  add(test, 0, 0, EventType::Purchase, 5);
  add(test, 1, 2, EventType::View, 5);  // not a purchase, and the test part has purchases
  add(test, 2, 1, EventType::Purchase, 5);
  const auto h = given_holdout(train, test, InteractionOptions{});
  EXPECT_EQ(h.evaluated_users(), 1u);
  const auto b = *h.train.users.find("b");
  ASSERT_EQ(h.relevant[b].size(), 2u);
  EXPECT_EQ(h.relevant[b][0], static_cast<int32_t>(*h.train.items.find("y")));
  EXPECT_LT(h.relevant[b][1], 0);  // "new": relevant, never rankable
  // A recommender that ranks "y" first finds one of two relevant items.
  MethodSpec pop;
  pop.method = "popularity";
  const auto m = evaluate(*fit_recommender(h.train, pop, 1), h, {.k = 3, .threads = 1});
  EXPECT_EQ(m.users, 1u);
  EXPECT_DOUBLE_EQ(m.recall, 0.5);
}

}  // namespace
}  // namespace persona::recommend
