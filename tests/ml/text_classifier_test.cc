// Text classifiers: both models learn, the chooser picks by validation, files round-trip, the
// unknown threshold behaves, and odd inputs get well-defined answers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include "persona/ml/fasttext_text_model.h"
#include "persona/ml/linear_text_model.h"
#include "persona/ml/text_classifier.h"
#include "persona/text/language.h"
#include "support/test_support.h"

namespace persona::ml {
namespace {

LabelledTexts intents(int per_class, unsigned seed) {
  LabelledTexts d;
  d.label_names = {"complaint", "refund", "track_order"};
  for (const auto& t : test::synthetic_intents(per_class, seed)) {
    d.texts.push_back(t.text);
    d.labels.push_back(static_cast<int>(std::find(d.label_names.begin(), d.label_names.end(), t.label) - d.label_names.begin()));
  }
  return d;
}

TextClassifierOptions quick(std::vector<std::string> candidates) {
  TextClassifierOptions o;
  o.candidates = std::move(candidates);
  o.tune = false;
  o.threads = 1;
  o.time_budget_s = 30;
  return o;
}

TEST(TextClassifier, LinearLearnsEnglishAndChineseAndRoundTrips) {
  const auto train = intents(60, 1), test = intents(20, 2);
  TextTrainingReport report;
  const auto c = TextClassifier::train(train, quick({"tfidf-linear"}), &report);
  EXPECT_EQ(report.chosen, "tfidf-linear");
  const auto r = c.evaluate(test, 1);
  EXPECT_GT(r.accuracy, 0.95);
  EXPECT_EQ(c.label_name(c.predict("我要退款").best), "refund");
  EXPECT_EQ(c.label_name(c.predict("where is my parcel, please track it").best), "track_order");
  const auto p = c.predict("服务太差了");
  EXPECT_NEAR(std::accumulate(p.probabilities.begin(), p.probabilities.end(), 0.0), 1.0, 1e-4);

  test::TempDir dir;
  c.save(dir.file("intent.model"), "intent", {{"test_accuracy", r.accuracy}});
  std::string task;
  const auto loaded = TextClassifier::load(dir.file("intent.model"), &task);
  EXPECT_EQ(task, "intent");
  EXPECT_EQ(loaded.labels(), c.labels());
  EXPECT_DOUBLE_EQ(loaded.unknown_threshold(), c.unknown_threshold());
  for (const auto& text : test.texts) EXPECT_EQ(loaded.predict(text).probabilities, c.predict(text).probabilities);
}

TEST(TextClassifier, FastTextLearnsAndRoundTrips) {
  const auto train = intents(60, 3), test = intents(20, 4);
  const auto c = TextClassifier::train(train, quick({"fasttext"}));
  EXPECT_GT(c.evaluate(test, 1).accuracy, 0.9);
  test::TempDir dir;
  c.save(dir.file("ft.model"), "intent");
  const auto loaded = TextClassifier::load(dir.file("ft.model"));
  EXPECT_EQ(loaded.model().kind(), "fasttext");
  // Stored as validated: the used rows in half precision, the rest zero, so nothing changes.
  for (size_t i = 0; i < 10; ++i)
    EXPECT_EQ(loaded.predict(test.texts[i]).probabilities, c.predict(test.texts[i]).probabilities);
}

TEST(TextClassifier, ChoosesTheBetterCandidateByValidation) {
  TextTrainingReport report;
  TextClassifier::train(intents(40, 5), quick({"tfidf-linear", "fasttext"}), &report);
  ASSERT_EQ(report.candidates.size(), 3u);  // linear, fastText, and their blend
  EXPECT_EQ(report.candidates[2].kind, "ensemble");
  const auto& best = *std::max_element(report.candidates.begin(), report.candidates.end(),
                                       [](const CandidateResult& a, const CandidateResult& b) {
                                         return a.macro_f1 != b.macro_f1 ? a.macro_f1 < b.macro_f1 : a.accuracy < b.accuracy;
                                       });
  // The best by validation, or the blend when the best alone is not clearly better.
  if (report.chosen != best.kind) EXPECT_EQ(report.chosen, "ensemble");
  EXPECT_GT(report.validation_rows, 0u);
}

TEST(TextClassifier, ABlendIsKeptUnlessOneModelIsClearlyBetter) {
  // Ten rows of class 0. The single model is right on the first `single_right` rows, the blend on
  // the last `blend_right`.
  auto answers = [](size_t right_from, size_t right_to) {
    std::vector<std::vector<float>> p(10, std::vector<float>{0.2f, 0.8f});
    for (size_t r = right_from; r < right_to; ++r) p[r] = {0.8f, 0.2f};
    return p;
  };
  LabelledTexts truth;
  truth.label_names = {"a", "b"};
  truth.texts.assign(10, "x");
  truth.labels.assign(10, 0);
  // 9 right alone against 1: b = 8, c = 0, 8 > sqrt(8).
  EXPECT_TRUE(clearly_better_alone(answers(0, 9), answers(9, 10), truth));
  // 6 against 5, overlapping: b = 5 (rows 0-4), c = 4 (rows 6-9); 1 < 3.
  EXPECT_FALSE(clearly_better_alone(answers(0, 6), answers(5, 10), truth));
  // The same answers: no difference at all.
  EXPECT_FALSE(clearly_better_alone(answers(0, 7), answers(0, 7), truth));
}

TEST(TextClassifier, FastTextSubwordBucketsFitTheData) {
  // Character n-grams share the hash buckets with word n-grams, sized to what the texts hold:
  // a few hundred short texts get the least, 2^16, not fastText's 2,000,000 (a 400 MB matrix).
  FastTextParams params;
  params.epoch = 2;
  params.minn = 2;
  params.maxn = 4;
  params.threads = 1;
  const auto m = FastTextModel::train(intents(40, 41), params);
  EXPECT_EQ(m->used_params().bucket, 1 << 16);
  // Only the rows training reached are stored, in half precision: far less than the 13 MB of
  // 2^16 x 50 floats, and loading gives the same model back.
  const std::string bytes = m->to_bytes();
  EXPECT_LT(bytes.size(), size_t{2} << 20);
  const auto loaded = FastTextModel::from_bytes(bytes);
  for (const auto& text : intents(5, 43).texts) EXPECT_EQ(loaded->predict(text), m->predict(text));
  // 4 per distinct n-gram once there are more than 2^14 of them: made-up words give many.
  LabelledTexts many = intents(40, 42);
  uint32_t state = 42;
  for (auto& text : many.texts)
    for (int w = 0; w < 40; ++w) {
      text += ' ';
      for (int c = 0; c < 8; ++c) {
        state = state * 1664525u + 1013904223u;
        text += static_cast<char>('a' + (state >> 24) % 26);
      }
    }
  const auto big = FastTextModel::train(many, params);
  EXPECT_GT(big->used_params().bucket, 1 << 16);
  EXPECT_LT(big->used_params().bucket, 2000000);
}

TEST(TextClassifier, TunedLinearOffersABlendOfItsSolvers) {
  auto options = quick({"tfidf-linear"});
  options.tune = true;
  TextTrainingReport report;
  const auto c = TextClassifier::train(intents(40, 9), options, &report);
  const auto blend = std::find_if(report.candidates.begin(), report.candidates.end(),
                                  [](const CandidateResult& r) { return r.kind == "ensemble"; });
  ASSERT_NE(blend, report.candidates.end());
  std::set<std::string> solvers;
  for (const auto& m : blend->params["members"]) {
    EXPECT_EQ(m["kind"], "tfidf-linear");
    solvers.insert(m["params"]["solver"].get<std::string>());
  }
  EXPECT_EQ(solvers.size(), 3u);  // Crammer-Singer, logistic regression and the SVM: one each
  EXPECT_EQ(report.chosen, c.model().kind());
  if (report.chosen == "ensemble") {
    EXPECT_DOUBLE_EQ(report.validation_macro_f1, blend->macro_f1);
  }
  test::TempDir dir;
  c.save(dir.file("tuned.model"), "intent");
  const auto loaded = TextClassifier::load(dir.file("tuned.model"));
  EXPECT_EQ(loaded.predict("我要退款").probabilities, c.predict("我要退款").probabilities);
}

TEST(TextClassifier, EnsembleRoundTrips) {
  const auto train = intents(30, 8);
  auto linear = TextClassifier::train(train, quick({"tfidf-linear"}));
  auto fast = TextClassifier::train(train, quick({"fasttext"}));
  std::vector<std::shared_ptr<const TextModel>> members;
  TextClassifier blend(std::make_shared<EnsembleTextModel>(
                           std::vector<std::shared_ptr<const TextModel>>{
                               std::shared_ptr<const TextModel>(&linear.model(), [](const TextModel*) {}),
                               std::shared_ptr<const TextModel>(&fast.model(), [](const TextModel*) {})}),
                       train.label_names);
  const auto p = blend.predict("我要退款");
  const auto a = linear.predict("我要退款").probabilities, b = fast.predict("我要退款").probabilities;
  for (size_t c = 0; c < 3; ++c) EXPECT_NEAR(p.probabilities[c], (a[c] + b[c]) / 2, 1e-6);
  test::TempDir dir;
  blend.save(dir.file("e.model"), "intent");
  const auto loaded = TextClassifier::load(dir.file("e.model"));
  EXPECT_EQ(loaded.model().kind(), "ensemble");
  EXPECT_EQ(loaded.predict("我要退款").best, p.best);
}

TEST(TextClassifier, OddInputsGetDefinedAnswers) {
  const auto c = TextClassifier::train(intents(30, 6), quick({"tfidf-linear"}));
  for (const std::string& text : {std::string(), std::string("😀😀😀"), std::string("!!!???"),
                                 std::string("\xff\xfe broken \xc3"), std::string(1 << 20, 'x')}) {
    const auto p = c.predict(text);
    ASSERT_EQ(p.probabilities.size(), 3u);
    EXPECT_NEAR(std::accumulate(p.probabilities.begin(), p.probabilities.end(), 0.0), 1.0, 1e-4);
    EXPECT_TRUE(std::isfinite(p.confidence));
  }
}

// The rows of intents() in one language only (fillers in the other language are left out).
LabelledTexts intents_in(text::Language language, int per_class, unsigned seed) {
  const auto all = intents(per_class, seed);
  std::vector<size_t> rows;
  for (size_t i = 0; i < all.size(); ++i)
    if (text::detect_language(all.texts[i]).language == language) rows.push_back(i);
  return all.subset(rows);
}

TEST(TextClassifier, UnfamiliarTextsAreUnknown) {
  const auto chinese = TextClassifier::train(intents_in(text::Language::Chinese, 300, 11), quick({"tfidf-linear"}));
  EXPECT_EQ(chinese.languages(), std::vector<std::string>{"zh"});
  const auto english = TextClassifier::train(intents_in(text::Language::English, 300, 12), quick({"tfidf-linear"}));
  EXPECT_EQ(english.languages(), std::vector<std::string>{"en"});
  EXPECT_GT(english.min_coverage(), 0.4);  // every validation text is made of known words

  // A test set of inputs no model here can read, each with the reason it must give.
  const std::vector<std::tuple<const TextClassifier*, std::string, Unknown>> cases{
      {&chinese, "where is my order", Unknown::OtherLanguage},
      {&chinese, "asdf qwerty zxcv", Unknown::OtherLanguage},
      {&chinese, "この商品はとても良いです", Unknown::OtherLanguage},
      {&chinese, "13812345678", Unknown::NoWords},
      {&chinese, "+86 138-1234-5678", Unknown::NoWords},
      {&chinese, "😀😀 !!", Unknown::NoWords},
      {&chinese, "", Unknown::NoWords},
      {&chinese, "量子力学黑洞", Unknown::NoKnownWords},
      {&english, "我要退款", Unknown::OtherLanguage},
      {&english, "xylophone quantum zebra", Unknown::NoKnownWords},
      {&english, "where is my order xylophone quantum zebra nebula galaxy", Unknown::LowCoverage},
      {&english, "4006-123-456", Unknown::NoWords},
  };
  for (const auto& [model, text, reason] : cases) {
    const auto p = model->predict(text);
    EXPECT_EQ(p.label, -1) << text;
    EXPECT_EQ(unknown_reason_name(p.unknown), std::string(unknown_reason_name(reason))) << text;
    EXPECT_TRUE(unfamiliar(p.unknown)) << text;
  }
  // Texts like the training ones are still answered.
  EXPECT_EQ(chinese.label_name(chinese.predict("我要退款").label), "refund");
  EXPECT_EQ(english.label_name(english.predict("where is my order").label), "track_order");
  EXPECT_EQ(english.predict("where is my order").unknown, Unknown::No);

  // The screening is part of the model file.
  test::TempDir dir;
  english.save(dir.file("en.model"), "intent");
  const auto loaded = TextClassifier::load(dir.file("en.model"));
  EXPECT_EQ(loaded.languages(), english.languages());
  EXPECT_DOUBLE_EQ(loaded.min_coverage(), english.min_coverage());
  EXPECT_EQ(loaded.predict("我要退款").unknown, Unknown::OtherLanguage);
}

TEST(TextClassifier, EnsembleMembersShareOneStoredVectoriser) {
  const auto data = intents(60, 13);
  auto vectorizer = std::make_shared<text::TfidfVectorizer>(text::TfidfOptions{});
  vectorizer->fit(data.texts, 1);
  const auto x = vectorizer->transform_all(data.texts, 1);
  std::vector<std::shared_ptr<const TextModel>> solvers;
  for (auto solver : {LinearSolver::LogisticRegression, LinearSolver::Svm, LinearSolver::CrammerSinger})
    solvers.push_back(LinearTextModel::train_on_features(x, data.labels, 3, vectorizer, {solver, 1.0, {}}));
  const TextClassifier c(std::make_shared<EnsembleTextModel>(solvers), data.label_names);
  test::TempDir dir;
  c.save(dir.file("e.model"), "intent");
  const auto loaded = TextClassifier::load(dir.file("e.model"));
  const auto& members = static_cast<const EnsembleTextModel&>(loaded.model()).members();
  ASSERT_GE(members.size(), 2u);
  const auto* first = &static_cast<const LinearTextModel&>(*members[0]).vectorizer();
  for (const auto& m : members) EXPECT_EQ(&static_cast<const LinearTextModel&>(*m).vectorizer(), first);
  // One vectoriser in the file: the model is smaller than its members saved one by one.
  size_t apart = 0;
  for (const auto& m : members) apart += m->to_bytes().size();
  EXPECT_LT(std::filesystem::file_size(dir.file("e.model")), apart);
  for (const auto& text : intents(10, 14).texts) EXPECT_EQ(loaded.predict(text).probabilities, c.predict(text).probabilities);
}

TEST(TextClassifier, ABlendAveragesItsMembersWhateverTheirVectorisers) {
  // Members that share a vectoriser share one vector of the text; one with its own gets its own.
  const auto data = intents(60, 15);
  auto shared = std::make_shared<text::TfidfVectorizer>(text::TfidfOptions{});
  shared->fit(data.texts, 1);
  text::TfidfOptions words_only;
  words_only.use_chars = false;
  auto own = std::make_shared<text::TfidfVectorizer>(words_only);
  own->fit(data.texts, 1);
  const auto xs = shared->transform_all(data.texts, 1), xo = own->transform_all(data.texts, 1);
  const std::vector<std::shared_ptr<const TextModel>> members{
      LinearTextModel::train_on_features(xs, data.labels, 3, shared, {LinearSolver::Svm, 1.0, {}}),
      LinearTextModel::train_on_features(xo, data.labels, 3, own, {LinearSolver::Svm, 1.0, {}}),
      LinearTextModel::train_on_features(xs, data.labels, 3, shared, {LinearSolver::LogisticRegression, 1.0, {}})};
  const EnsembleTextModel blend(members);
  for (const auto& text : intents(10, 16).texts) {
    const auto p = blend.predict(text);
    for (size_t c = 0; c < 3; ++c) {
      const float mean = (members[0]->predict(text)[c] + members[1]->predict(text)[c] + members[2]->predict(text)[c]) / 3;
      EXPECT_NEAR(p[c], mean, 1e-6) << text;
    }
  }
}

TEST(TextClassifier, BadTrainingSetsAreErrors) {
  LabelledTexts one_class;
  one_class.label_names = {"a"};
  one_class.texts = {"x", "y"};
  one_class.labels = {0, 0};
  EXPECT_THROW(TextClassifier::train(one_class, quick({"tfidf-linear"})), std::invalid_argument);
  LabelledTexts empty;
  EXPECT_THROW(TextClassifier::train(empty, quick({"tfidf-linear"})), std::invalid_argument);
  EXPECT_THROW(TextClassifier::train(intents(5, 1), quick({"bert"})), std::invalid_argument);
}

TEST(TextClassifier, UnknownThresholdWithholdsTheDoubtfulAnswers) {
  // Right answers are confident, wrong ones are not: the threshold goes between them.
  std::vector<int> truth;
  std::vector<TextPrediction> p;
  for (int i = 0; i < 10; ++i) {
    truth.push_back(0);
    TextPrediction right;
    right.best = 0;
    right.confidence = 0.9;
    p.push_back(right);
  }
  for (int i = 0; i < 3; ++i) {
    truth.push_back(1);
    TextPrediction wrong;
    wrong.best = 0;
    wrong.confidence = 0.4;
    p.push_back(wrong);
  }
  const double t = choose_unknown_threshold(truth, p);
  EXPECT_GT(t, 0.4);
  EXPECT_LE(t, 0.9);
  // All answers right: nothing is withheld.
  truth.assign(13, 0);
  EXPECT_DOUBLE_EQ(choose_unknown_threshold(truth, p), 0.0);
}

// Out-of-scope examples: an out-of-scope text withheld is a right answer, so the threshold rises
// to withhold the low-confidence ones the model put in a real class.
TEST(TextClassifier, OutOfScopeTextsAreRightWhenWithheld) {
  std::vector<int> truth;
  std::vector<TextPrediction> p;
  auto add = [&](int t, int best, double confidence, int n) {
    for (int i = 0; i < n; ++i) {
      truth.push_back(t);
      TextPrediction x;
      x.best = best;
      x.confidence = confidence;
      p.push_back(x);
    }
  };
  add(0, 0, 0.9, 10);  // right, confident
  add(2, 0, 0.5, 4);   // out of scope (class 2), taken for class 0 with middling confidence
  add(2, 2, 0.3, 6);   // out of scope, called so: right whatever the threshold
  EXPECT_DOUBLE_EQ(choose_unknown_threshold(truth, p), 0.0) << "without the out-of-scope class they are just wrong";
  const double t = choose_unknown_threshold(truth, p, 2);
  EXPECT_GT(t, 0.5);
  EXPECT_LE(t, 0.9);
}

// With out-of-scope examples the threshold keeps a margin: the least confident 1% of right
// in-scope answers fall below it, whatever the out-of-scope rows and the wrong answers say.
TEST(TextClassifier, OpenSetMarginWithholdsTheLeastConfidentRightAnswers) {
  std::vector<int> truth;
  std::vector<TextPrediction> p;
  for (int i = 0; i < 200; ++i) {
    truth.push_back(0);
    TextPrediction x;
    x.best = 0;
    x.confidence = 0.5 + i * 0.0025;  // 0.5 .. 0.9975
    p.push_back(x);
  }
  TextPrediction wrong;
  wrong.best = 1;
  wrong.confidence = 0.01;
  truth.push_back(0), p.push_back(wrong);            // a wrong answer does not count
  TextPrediction oos = wrong;
  oos.best = 2;
  truth.push_back(2), p.push_back(oos);              // nor does an out-of-scope text
  EXPECT_DOUBLE_EQ(open_set_margin(truth, p, 2), 0.5 + 2 * 0.0025);  // the 3rd lowest of 200 right ones
  EXPECT_DOUBLE_EQ(open_set_margin({2}, {oos}, 2), 0.0) << "no right in-scope answer: no margin";
}

TEST(TextClassifier, OutOfScopeClassAnswersUnknown) {
  auto train = intents(60, 11), test = intents(20, 12);
  const std::vector<std::string> chat = {"what a lovely film, the actors were great", "the weather is nice today",
                                         "tell me a joke about cats", "who won the football match last night",
                                         "i like reading novels in the evening", "what is the capital of france"};
  train.label_names.push_back(kOutOfScope);
  test.label_names.push_back(kOutOfScope);
  for (int i = 0; i < 60; ++i) {
    train.texts.push_back(chat[static_cast<size_t>(i) % chat.size()] + (i % 2 ? " please" : ""));
    train.labels.push_back(3);
  }
  const auto c = TextClassifier::train(train, quick({"tfidf-linear"}));
  const auto p = c.predict("the weather is nice today");
  EXPECT_EQ(p.label, -1);
  EXPECT_EQ(c.label_name(p.best), kOutOfScope);
  EXPECT_EQ(c.label_name(c.predict("where is my parcel, please track it").label), "track_order");
  // Evaluation with abstention counts "unknown" right for out-of-scope texts.
  test.texts.push_back("tell me a joke about cats");
  test.labels.push_back(3);
  const auto r = c.evaluate(test, 1, true);
  EXPECT_GT(r.accuracy, 0.95);
  test::TempDir dir;
  c.save(dir.file("intent.model"), "intent");
  EXPECT_EQ(TextClassifier::load(dir.file("intent.model")).predict("the weather is nice today").label, -1);
}

TEST(TextClassifier, StratifiedSplitKeepsEveryClass) {
  std::vector<int> labels;
  for (int i = 0; i < 100; ++i) labels.push_back(i % 4);
  labels.push_back(9);  // a class with one row stays in training
  const auto [train, valid] = stratified_split(labels, 0.2, 7);
  EXPECT_EQ(train.size() + valid.size(), labels.size());
  std::vector<int> per(10, 0);
  for (size_t i : valid) ++per[static_cast<size_t>(labels[i])];
  for (int c = 0; c < 4; ++c) EXPECT_EQ(per[static_cast<size_t>(c)], 5);
  EXPECT_EQ(per[9], 0);
  EXPECT_EQ(stratified_split(labels, 0.2, 7), stratified_split(labels, 0.2, 7));
}

// Keeps both cores busy until destroyed: the budget must hold on a loaded machine.
class BackgroundLoad {
 public:
  BackgroundLoad() {
    for (int i = 0; i < 2; ++i)
      threads_.emplace_back([this] {
        volatile double x = 1;
        while (!stop_.load(std::memory_order_relaxed)) x = std::sqrt(x + 1.0);
      });
  }
  ~BackgroundLoad() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

TEST(TextClassifier, TheBudgetBoundsWallTimeUnderLoad) {
  // A few thousand texts, the search the budget plans (linear grid with cross-validation,
  // fastText's settings, blends, refit) in 6 s while two other threads keep both cores busy.
  const auto data = intents(1000, 21), test = intents(30, 22);
  TextClassifierOptions options;
  options.time_budget_s = 6;
  std::vector<std::string> stages;
  options.on_stage = [&stages](const std::string& stage) { stages.push_back(stage); };
  TextTrainingReport report;
  BackgroundLoad load;
  const auto t0 = std::chrono::steady_clock::now();
  const auto c = TextClassifier::train(data, options, &report);
  const double wall = seconds_since(t0);
  EXPECT_LE(wall, 6 + 4.0 * test::kSlowdown) << report.to_json().dump(1);  // a fixed margin: one liblinear fit, noise
  EXPECT_LE(report.seconds, wall);
  EXPECT_EQ(report.budget_s, 6);
  EXPECT_GT(c.evaluate(test, 1).accuracy, 0.9);
  ASSERT_FALSE(stages.empty());
  EXPECT_EQ(stages.front(), "TF-IDF features");
  EXPECT_EQ(stages.back(), "refit on all texts");
  if (!report.refit) {
    EXPECT_FALSE(report.notes.empty());
  }
}

TEST(TextClassifier, FastTextStopsAtItsDeadline) {
  // 100,000 epochs would take minutes: the run gives up at its deadline with TrainingTimedOut.
  FastTextParams params;
  params.epoch = 100000;
  params.threads = 1;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(FastTextModel::train(intents(100, 23), params, t0 + std::chrono::milliseconds(500)),
               TrainingTimedOut);
  EXPECT_LT(seconds_since(t0), 5 * test::kSlowdown);
}

TEST(TextClassifier, FastTextAloneThatCannotFinishIsAClearError) {
  // Only fastText asked for, a budget it cannot meet: an error naming the budget (fastText's
  // autotune used to say "increase autotune-duration", an option Persona does not have).
  auto options = quick({"fasttext"});
  options.time_budget_s = 1;
  options.tune = true;
  LabelledTexts big = intents(3000, 24);
  for (auto& t : big.texts) t += " " + t + " " + t;
  BackgroundLoad load;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    TextTrainingReport report;
    TextClassifier::train(big, options, &report);
    // Fast enough after all (a quick machine): then it kept to the budget.
    EXPECT_LE(report.seconds, 1 + 4.0 * test::kSlowdown);
  } catch (const TrainingTimedOut& e) {
    EXPECT_NE(std::string(e.what()).find("budget"), std::string::npos) << e.what();
  }
  EXPECT_LT(seconds_since(t0), 1 + 4.0 * test::kSlowdown);
}

TEST(TextClassifier, TheSameCallGivesTheSameModelOnABusyMachine) {
  // The work is planned from the data and the budget, not the clock: the same data, options and
  // seed give the same model whether the machine is quiet or both its cores are busy. fastText's
  // settings train on one thread each (hogwild SGD on two threads would not be reproducible).
  const auto data = intents(200, 31), test = intents(20, 32);
  TextClassifierOptions options;
  options.time_budget_s = 60;
  options.threads = 2;
  TextTrainingReport quiet_report, busy_report;
  const auto quiet = TextClassifier::train(data, options, &quiet_report);
  std::optional<TextClassifier> busy;
  {
    BackgroundLoad load;
    busy = TextClassifier::train(data, options, &busy_report);
  }
  EXPECT_FALSE(quiet_report.capped) << quiet_report.to_json().dump(1);
  EXPECT_FALSE(busy_report.capped) << busy_report.to_json().dump(1);
  EXPECT_EQ(quiet_report.plan, busy_report.plan);
  EXPECT_GE(quiet_report.plan["fasttext_settings"].get<int>(), 2) << "a few settings of each model on a small set";
  EXPECT_EQ(quiet_report.chosen, busy_report.chosen);
  EXPECT_EQ(quiet_report.chosen_params, busy_report.chosen_params);
  EXPECT_DOUBLE_EQ(quiet.unknown_threshold(), busy->unknown_threshold());
  for (const auto& text : test.texts) EXPECT_EQ(quiet.predict(text).probabilities, busy->predict(text).probabilities) << text;
  // And fastText alone, the same.
  auto ft = quick({"fasttext"});
  ft.tune = true;
  const auto a = TextClassifier::train(data, ft), b = TextClassifier::train(data, ft);
  for (const auto& text : test.texts) EXPECT_EQ(a.predict(text).probabilities, b.predict(text).probabilities) << text;
}

TEST(TextClassifier, TheBudgetPlansTheWorkFromTheDatasSize) {
  // A small budget on more text plans less: fewer settings, fastText left out, no refit; each
  // said in the notes. The plan is the same every time (no clock in it).
  LabelledTexts big = intents(700, 33);
  for (auto& t : big.texts) t += " " + t + " " + t + " " + t;
  TextClassifierOptions small;
  small.time_budget_s = 1;
  TextTrainingReport a, b;
  TextClassifier::train(big, small, &a);
  TextClassifier::train(big, small, &b);
  EXPECT_EQ(a.plan, b.plan);
  EXPECT_LT(a.plan["linear_settings"].get<int>(), 8) << a.to_json().dump(1);
  EXPECT_EQ(a.plan["fasttext_settings"], 0);
  EXPECT_FALSE(a.notes.empty());
  TextClassifierOptions roomy;
  roomy.time_budget_s = 600;
  TextTrainingReport c;
  TextClassifier::train(intents(100, 34), roomy, &c);
  EXPECT_EQ(c.plan["linear_settings"], 8) << c.to_json().dump(1);
  EXPECT_EQ(c.plan["fasttext_settings"], 6);
  EXPECT_TRUE(c.plan["cross_validated"].get<bool>());
  EXPECT_TRUE(c.refit);
}

TEST(FastTextTokens, ChineseBecomesCharacters) {
  EXPECT_EQ(fasttext_tokens("我要退款 NOW!"), "我 要 退 款 now");
}

}  // namespace
}  // namespace persona::ml
