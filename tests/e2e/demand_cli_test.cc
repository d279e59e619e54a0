// The demand and model commands as a user runs them: train, analyze, eval, classify, keywords,
// propensity, next category, forecast; and their answers to bad input and bad model files.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <random>
#include <sstream>

#include "support/test_support.h"

namespace persona {
namespace {

using test::json_of;
using test::run_persona;

std::string intents_csv(int per_class, unsigned seed) {
  std::string csv = "text,label\n";
  for (const auto& t : test::synthetic_intents(per_class, seed)) csv += "\"" + t.text + "\"," + t.label + "\n";
  return csv;
}

TEST(DemandCli, AnyLabelledFileWithoutAPreset) {
  test::TempDir dir;
  // A JSON array with its own key names, and a TSV test file with others.
  std::string json = "[\n";
  for (const auto& t : test::synthetic_intents(40, 21))
    json += nlohmann::json{{"utterance", t.text}, {"intent", t.label}}.dump() + ",\n";
  json += R"({"utterance": "<p>I want my money back &amp; now</p>", "intent": "refund"}])";
  test::write_file(dir.file("intents.json"), json);
  std::string tsv = "query\tgold\n";
  for (const auto& t : test::synthetic_intents(8, 22)) tsv += t.text + "\t" + t.label + "\n";
  test::write_file(dir.file("test.tsv"), tsv);
  const std::string model = dir.file("intent.model");
  auto t = json_of(run_persona({"train", "text", dir.file("intents.json"), "--text-column", "utterance",
                                "--label-column", "intent", "--task", "intent", "--label", "label", "--out", model,
                                "--no-tune", "--model", "tfidf-linear", "--json"}));
  EXPECT_EQ(t["read"]["rows"], 121) << t.dump();
  EXPECT_EQ(t["read"]["rejected"], 0);
  auto e = json_of(run_persona({"eval", "--model", model, dir.file("test.tsv"), "--text-column", "query",
                                "--label-column", "gold", "--json"}));
  EXPECT_EQ(e["support"], 24);
  EXPECT_GT(e["accuracy"].get<double>(), 0.9);
  // Without a preset or columns the file must have text and label.
  auto missing = run_persona({"eval", "--model", model, dir.file("test.tsv"), "--json"});
  EXPECT_NE(missing.exit_code, 0);

  // Texts the model cannot read come back unknown, with the reason.
  auto phone = json_of(run_persona({"classify", model, "--json", "13812345678"}));
  EXPECT_EQ(phone["label"], "unknown");
  EXPECT_EQ(phone["unknown_reason"], "no_words");
  auto gibberish = json_of(run_persona({"classify", model, "--json", "xylophone quantum zebra"}));
  EXPECT_EQ(gibberish["unknown_reason"], "no_known_words");
  auto japanese = json_of(run_persona({"classify", model, "--json", "この商品はとても良いです"}));
  EXPECT_EQ(japanese["unknown_reason"], "other_language");
  auto html = json_of(run_persona({"classify", model, "--json", "<p>how do i <b>get</b> a refund</p>&nbsp;"}));
  EXPECT_EQ(html["label"], "refund");
  EXPECT_EQ(html.value("unknown_reason", ""), "");
}

TEST(DemandCli, TrainAnalyzeEvalClassify) {
  test::TempDir dir;
  const std::string models = dir.file("models");
  test::write_file(dir.file("reviews.csv"), test::synthetic_reviews_csv(60));
  test::write_file(dir.file("intents.csv"), intents_csv(50, 1));
  test::write_file(dir.file("intents_test.csv"), intents_csv(10, 2) + "\"a brand new intent\",warranty\n");
  auto s = json_of(run_persona({"train", "sentiment", dir.file("reviews.csv"), "--preset", "waimai_zh", "--models",
                                models, "--model", "tfidf-linear", "--no-tune", "--json"}));
  EXPECT_GT(s["training"]["validation_accuracy"].get<double>(), 0.9);
  auto i = json_of(run_persona({"train", "intent", dir.file("intents.csv"), "--preset", "labelled_texts", "--models",
                                models, "--test", dir.file("intents_test.csv"), "--no-tune", "--json"}));
  EXPECT_EQ(i["training"]["candidates"].size() >= 2, true);  // both model kinds were tried
  EXPECT_GT(i["test"]["accuracy"].get<double>(), 0.85);
  EXPECT_TRUE(std::filesystem::exists(models + "/intent.model"));

  auto a = json_of(run_persona({"analyze", "--models", models, "--json", "非常好吃，下次还点"}));
  EXPECT_EQ(a["language"], "zh");
  EXPECT_EQ(a["sentiment"]["best"], "positive");
  EXPECT_EQ(a["category"], nullptr);  // no category model: no answer
  EXPECT_EQ(a["missing_models"], nlohmann::json::array({"category"}));
  auto b = json_of(run_persona({"analyze", "--models", models, "--json", "I", "want", "my", "money", "back"}));
  EXPECT_EQ(b["intent"]["best"], "refund");
  EXPECT_EQ(b["language"], "en");
  auto text = run_persona({"analyze", "--models", models, "我的订单到哪里了"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("intent"), std::string::npos);
  EXPECT_NE(text.out.find("track_order"), std::string::npos);

  // The test file has a label the model never saw: counted wrong, not a crash.
  auto e = json_of(run_persona({"eval", "--task", "intent", "--models", models, "--preset", "labelled_texts",
                                dir.file("intents_test.csv"), "--json"}));
  EXPECT_EQ(e["support"], 31);
  EXPECT_LT(e["accuracy"].get<double>(), 1.0);
  auto c = json_of(run_persona({"classify", "--model", models + "/intent.model", "--json", "我要退款"}));
  EXPECT_EQ(c["best"], "refund");
  EXPECT_EQ(c["probabilities"].size(), 3u);

  // A text per line, as fastText's predict: one JSON line per input line, in order, the model
  // given first; an empty line gets an error line so the lines stay aligned.
  test::write_file(dir.file("many.txt"), "我要退款\n\nwhere is my order\r\n" + std::string(100001, 'x') + "\n");
  const auto lines = run_persona({"classify", models + "/intent.model", "-"}, 120, {}, dir.file("many.txt"));
  ASSERT_EQ(lines.exit_code, 0) << lines.err;
  std::vector<nlohmann::json> got;
  std::istringstream in(lines.out);
  for (std::string l; std::getline(in, l);) got.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(got.size(), 4u) << lines.out;
  EXPECT_EQ(got[0]["line"], 1);
  EXPECT_EQ(got[0]["best"], "refund");
  EXPECT_TRUE(got[1].contains("error")) << got[1].dump();
  EXPECT_EQ(got[2]["line"], 3);
  EXPECT_EQ(got[2]["best"], "track_order") << got[2].dump();
  EXPECT_NE(got[3]["error"].get<std::string>().find("100001"), std::string::npos) << got[3].dump();
  const auto analyzed = run_persona({"analyze", "--models", models, "--lines", "--file", dir.file("many.txt")});
  ASSERT_EQ(analyzed.exit_code, 0) << analyzed.err;
  std::istringstream ain(analyzed.out);
  std::vector<nlohmann::json> answers;
  for (std::string l; std::getline(ain, l);) answers.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(answers.size(), 4u) << analyzed.out;
  EXPECT_EQ(answers[0]["language"], "zh") << answers[0].dump();
  EXPECT_EQ(answers[0]["intent"]["label"], "refund") << answers[0].dump();
  EXPECT_EQ(answers[2]["language"], "en");
  EXPECT_EQ(run_persona({"analyze", "--models", models, "--lines", "some text"}).exit_code, 1) << "--lines reads a file or stdin";
}

TEST(DemandCli, BadTextsGetAnswersNotCrashes) {
  test::TempDir dir;
  test::write_file(dir.file("reviews.csv"), test::synthetic_reviews_csv(30));
  const std::string models = dir.file("models");
  ASSERT_EQ(run_persona({"train", "sentiment", dir.file("reviews.csv"), "--preset", "waimai_zh", "--models", models,
                         "--model", "tfidf-linear", "--no-tune", "-q"}).exit_code, 0);
  std::string big;
  while (big.size() < (1u << 20)) big += "味道很好 great food ";
  test::write_file(dir.file("big.txt"), big);
  test::write_file(dir.file("bad.txt"), "\xff\xfe\xc3 好吃 \xe4\xbd");
  test::write_file(dir.file("empty.txt"), "");
  test::write_file(dir.file("emoji.txt"), "😀😀😀!!!???");
  for (const char* f : {"big.txt", "bad.txt", "empty.txt", "emoji.txt"}) {
    auto r = run_persona({"analyze", "--models", models, "--json", "--file", dir.file(f)});
    ASSERT_EQ(r.exit_code, 0) << f << ": " << r.err;
    const auto j = nlohmann::json::parse(r.out);  // valid JSON even for invalid UTF-8 input
    EXPECT_TRUE(j.contains("sentiment")) << f;
  }
  EXPECT_EQ(nlohmann::json::parse(run_persona({"analyze", "--models", models, "--json", "--file", dir.file("empty.txt")}).out)["sentiment"],
            nullptr);
  EXPECT_EQ(nlohmann::json::parse(run_persona({"analyze", "--models", models, "--json", "--file", dir.file("big.txt")}).out)["sentiment"]["best"],
            "positive");
  EXPECT_NE(run_persona({"analyze", "--models", models}).exit_code, 0);  // no text at all
}

TEST(DemandCli, BadModelFilesAreClearErrors) {
  test::TempDir dir;
  const std::string models = dir.file("models");
  test::write_file(dir.file("reviews.csv"), test::synthetic_reviews_csv(20));
  ASSERT_EQ(run_persona({"train", "sentiment", dir.file("reviews.csv"), "--preset", "waimai_zh", "--models", models,
                         "--model", "tfidf-linear", "--no-tune", "-q"}).exit_code, 0);
  const std::string bytes = test::read_file(models + "/sentiment.model");
  // Truncated.
  test::write_file(models + "/sentiment.model", bytes.substr(0, bytes.size() / 2));
  auto r = run_persona({"analyze", "--models", models, "good"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("sentiment.model"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  // A model of another kind where the sentiment model belongs.
  ASSERT_EQ(run_persona({"train", "keywords", dir.file("reviews.csv"), "--preset", "waimai_zh", "--models", models, "-q"}).exit_code, 0);
  std::filesystem::copy_file(models + "/keywords.model", models + "/sentiment.model",
                             std::filesystem::copy_options::overwrite_existing);
  r = run_persona({"analyze", "--models", models, "good"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("keyword-index"), std::string::npos) << r.err;
  // Not a model at all.
  r = run_persona({"classify", "--model", dir.file("reviews.csv"), "good"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a Persona model file"), std::string::npos) << r.err;
}

TEST(DemandCli, LabelFilesWithProblems) {
  test::TempDir dir;
  test::write_file(dir.file("one_class.csv"), "text,label\na,x\nb,x\nc,x\n");
  auto r = run_persona({"train", "intent", dir.file("one_class.csv"), "--preset", "labelled_texts", "--models",
                        dir.file("m")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("1 classes"), std::string::npos) << r.err;
  test::write_file(dir.file("gaps.csv"), intents_csv(20, 3) + ",refund\n\"no label\",\n");
  auto j = json_of(run_persona({"train", "intent", dir.file("gaps.csv"), "--preset", "labelled_texts", "--models",
                                dir.file("m"), "--model", "tfidf-linear", "--no-tune", "--json"}));
  EXPECT_EQ(j["read"]["rejected"], 1);
  EXPECT_EQ(j["read"]["without_label"], 1);
  // Without a preset a text,label file is read the same way.
  auto k = json_of(run_persona({"train", "intent", dir.file("gaps.csv"), "--models", dir.file("m"), "--model",
                                "tfidf-linear", "--no-tune", "--json"}));
  EXPECT_EQ(k["read"], j["read"]);
  r = run_persona({"train", "text", dir.file("gaps.csv"), "--preset", "labelled_texts", "--task", "x", "--label", "mood"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown label field"), std::string::npos) << r.err;
}

TEST(DemandCli, TheSampleShopEndToEnd) {
  test::TempDir dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  const std::string config = dir.file("shop.toml"), models = dir.file("models");
  ASSERT_EQ(run_persona({"ingest", "--config", config, "-q"}).exit_code, 0);
  // Text models from the store's own texts.
  auto s = json_of(run_persona({"train", "sentiment", "--config", config, "--models", models, "--model", "tfidf-linear",
                                "--budget", "10", "--json"}));
  EXPECT_GT(s["read"]["neutral_ratings_left_out"].get<int>(), 0);  // ratings of 3
  auto i = json_of(run_persona({"train", "intent", "--config", config, "--models", models, "--model", "tfidf-linear",
                                "--budget", "10", "--json"}));
  EXPECT_GT(i["training"]["validation_accuracy"].get<double>(), 0.8);
  // Propensity, then scores for every customer.
  auto p = json_of(run_persona({"train", "propensity", "--config", config, "--models", models, "--snapshot", "2025-05-01",
                                "--test-snapshot", "2025-08-01", "--learner", "logistic", "--json"}));
  EXPECT_GT(p["train_population"].get<int>(), 50);
  EXPECT_GT(p["auc"].get<double>(), 0.55);
  auto scores = json_of(run_persona({"predict", "propensity", "--config", config, "--models", models, "--out",
                                     dir.file("scores.csv"), "--json"}));
  EXPECT_GT(scores["customers"].get<int>(), 50);
  EXPECT_NE(test::read_file(dir.file("scores.csv")).find("user,probability"), std::string::npos);
  // Next category, forecasts, keywords.
  auto n = json_of(run_persona({"train", "next-category", "--config", config, "--models", models, "--json"}));
  EXPECT_GT(n["evaluation"]["customers"].get<int>(), 10);
  const std::string user = scores["top"][0]["user"];
  auto next = json_of(run_persona({"predict", "next-category", user, "--config", config, "--models", models, "--json"}));
  EXPECT_EQ(next["next"].size(), 3u);
  auto f = json_of(run_persona({"forecast", "--config", config, "--json", "--horizon", "7"}));
  ASSERT_FALSE(f["categories"].empty());
  EXPECT_EQ(f["categories"][0]["forecast"].size(), 7u);
  auto k = json_of(run_persona({"keywords", "--config", config, "--json", "--top", "5"}));
  EXPECT_EQ(k["keywords"].size(), 5u);
  auto bad = run_persona({"train", "propensity", "--config", config, "--snapshot", "yesterday-ish"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("is not a date"), std::string::npos);
  bad = run_persona({"train", "propensity", "--config", config, "--snapshot", "1990-01-01"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("choose a later --snapshot"), std::string::npos) << bad.err;
}

std::string tabular_csv(int rows, unsigned seed, bool with_bad_row) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> n(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  std::string csv = "id,day,visits,spend,noise,churned\n";
  for (int i = 0; i < rows; ++i) {
    const double visits = std::abs(n(rng)) * 5, spend = std::exp(n(rng)), noise = n(rng);
    const double z = 1.5 - 0.6 * visits + 0.8 * std::log1p(spend);
    const int churned = u(rng) < 1 / (1 + std::exp(-z)) ? 1 : 0;
    csv += "c" + std::to_string(i) + ",2025-01-" + std::to_string(1 + i % 28) + "," + std::to_string(visits) + "," +
           std::to_string(spend) + "," + std::to_string(noise) + "," + (churned ? "yes" : "no") + "\n";
  }
  if (with_bad_row) csv += "cX,2025-01-02,many,3.0,0.1,no\n";
  return csv;
}

TEST(DemandCli, TabularTrainAndPredict) {
  test::TempDir dir;
  test::write_file(dir.file("train.csv"), tabular_csv(400, 1, true));
  test::write_file(dir.file("test.csv"), tabular_csv(200, 2, false));
  auto t = json_of(run_persona({"train", "tabular", dir.file("train.csv"), "--label", "churned", "--features",
                                "visits,spend,noise", "--cv", "time", "--time-column", "day", "--folds", "3",
                                "--learner", "logistic", "--test", dir.file("test.csv"), "--out", dir.file("m.model"),
                                "--json"}));
  EXPECT_EQ(t["read"]["skipped"], 1);
  EXPECT_NE(t["read"]["problems"][0].get<std::string>().find("\"many\" is not a number"), std::string::npos);
  EXPECT_EQ(t["folds"], 3);
  EXPECT_GT(t["test"]["auc"].get<double>(), 0.75);
  auto p = run_persona({"predict", "tabular", dir.file("test.csv"), "--model", dir.file("m.model"), "--id-column", "id"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(p.out.rfind("id,predicted,p_no,p_yes\nc0,", 0), 0u) << p.out.substr(0, 80);
  auto missing = run_persona({"train", "tabular", dir.file("train.csv"), "--label", "colour"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("the columns are: id, day"), std::string::npos) << missing.err;
  auto no_time = run_persona({"train", "tabular", dir.file("train.csv"), "--label", "churned", "--features", "visits",
                              "--cv", "time"});
  EXPECT_EQ(no_time.exit_code, 1);
  EXPECT_NE(no_time.err.find("--time-column"), std::string::npos);
}

}  // namespace
}  // namespace persona
