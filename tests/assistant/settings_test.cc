// The assistant's understanding with an intent model (forms and hand-offs from its labels, the
// out-of-scope class and threshold), and its settings from the config's [assistant] table.
#include <gtest/gtest.h>

#include "persona/assistant/assistant.h"
#include "persona/core/error.h"
#include "persona/ml/text_classifier.h"
#include "persona/pipeline/config.h"
#include "support/test_support.h"

namespace persona::assistant {
namespace {

ml::TextClassifier intent_model() {
  ml::LabelledTexts d;
  d.label_names = {"complaint", "refund", "track_order", ml::kOutOfScope};
  for (const auto& t : test::synthetic_intents(40, 7)) {
    d.texts.push_back(t.text);
    d.labels.push_back(static_cast<int>(std::find(d.label_names.begin(), d.label_names.end(), t.label) - d.label_names.begin()));
  }
  for (const char* chat : {"tell me a joke", "what is the weather like", "who won the match", "给我讲个笑话", "今天天气怎么样",
                           "recommend a good film", "what is the capital of france", "你是机器人吗"})
    for (int i = 0; i < 6; ++i) d.texts.push_back(std::string(chat) + (i % 2 ? " please" : "")), d.labels.push_back(3);
  ml::TextClassifierOptions o;
  o.candidates = {"tfidf-linear"};
  o.tune = false;
  o.threads = 1;
  return ml::TextClassifier::train(d, o);
}

TEST(AssistantIntents, TheModelsLabelsLeadToFormsHandOffsAndClarifications) {
  const auto model = intent_model();
  Knowledge k;
  k.intents = &model;
  const auto options = apply_assistant_settings(nlohmann::json::parse(R"({"intents": {"refund": "form:return_item"}})"), {});
  Assistant bot(k, options);
  // No trigger phrase of the return form in it: the model's "refund" starts it.
  auto r = bot.reply("a", "alice", "please refund this purchase");
  EXPECT_EQ(r.understood, "refund");
  EXPECT_EQ(r.intent, "return_item");
  EXPECT_EQ(bot.session("a")->form, "return_item");
  EXPECT_EQ(r.to_json()["understood"]["intent"], "refund");
  // track_order (a default action) starts tracking; a complaint goes to a person.
  EXPECT_EQ(bot.reply("b", "alice", "when will my parcel arrive").intent, "track_order");
  r = bot.reply("c", "alice", "terrible service very angry");
  EXPECT_TRUE(r.handoff);
  EXPECT_NE(r.summary.find("complaint"), std::string::npos) << r.summary;
  // Out of scope: understood as unknown, so the assistant asks again.
  r = bot.reply("d", "", "tell me a joke please");
  EXPECT_EQ(r.understood, "unknown");
  EXPECT_EQ(r.intent, "unknown");
  // Only emoji: unknown, whatever the model's prior says.
  EXPECT_EQ(bot.reply("e", "", "😀😀😀").understood, "unknown");
  // A threshold above the model's confidence makes it unknown.
  auto strict = options;
  strict.out_of_scope_threshold = bot.reply("f", "alice", "please refund this purchase").understood_confidence + 1e-6;
  Assistant cautious(k, strict);
  EXPECT_EQ(cautious.reply("a", "alice", "please refund this purchase").understood, "unknown");
}

TEST(AssistantIntents, WithoutAModelNothingIsUnderstood) {
  Assistant bot(Knowledge{}, {});
  const auto r = bot.reply("a", "", "please refund this purchase");
  EXPECT_TRUE(r.understood.empty());
  EXPECT_FALSE(r.to_json().contains("understood"));
}

TEST(AssistantSettings, FormsIntentsAndResponderFromJson) {
  const auto o = apply_assistant_settings(nlohmann::json::parse(R"({
      "forms": [{"name": "gift_wrap", "triggers": ["gift wrap"], "slots": [{"name": "order_id", "kind": "order_id",
                 "prompt_en": "Which order?"}], "done_en": "Order {order_id} will be gift-wrapped."}],
      "intents": {"wrap_request": "form:gift_wrap", "angry": "handoff"},
      "out_of_scope_threshold": 0.6, "max_failures": 3,
      "responder": {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "SHOP_LLM_KEY", "timeout_s": 2}})"),
                                        {});
  EXPECT_TRUE(std::any_of(o.forms.begin(), o.forms.end(), [](const FormSpec& f) { return f.name == "gift_wrap"; }));
  EXPECT_EQ(o.forms.size(), default_forms().size() + 1);
  EXPECT_EQ(o.intent_actions.at("wrap_request"), "form:gift_wrap");
  EXPECT_EQ(o.intent_actions.at("track_order"), "form:track_order") << "defaults stay";
  EXPECT_DOUBLE_EQ(*o.out_of_scope_threshold, 0.6);
  EXPECT_EQ(o.max_failures, 3);
  EXPECT_EQ(o.responder.base_url, "http://127.0.0.1:9/v1");
  EXPECT_EQ(o.responder_key_env, "SHOP_LLM_KEY");
  EXPECT_DOUBLE_EQ(o.responder.timeout_s, 2);
}

TEST(AssistantSettings, MistakesAreClearErrors) {
  auto fails = [](const char* json, const char* expected) {
    try {
      apply_assistant_settings(nlohmann::json::parse(json), {});
      ADD_FAILURE() << "no error for " << json;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  };
  fails(R"({"intens": {}})", "unknown key \"intens\"");
  fails(R"({"intents": {"x": "form:nope"}})", "form:nope");
  fails(R"({"intents": {"x": "dance"}})", "unknown action");
  fails(R"({"out_of_scope_threshold": 2})", "between 0 and 1");
  fails(R"({"responder": {"api_key": "sk-123"}})", "environment variable");
  fails(R"({"forms": [{"name": "x"}]})", "form 1");
  fails(R"({"order_id_pattern": "(unclosed"})", "not a valid RE2 pattern");
  fails(R"({"order_id_pattern": "po\\d{6}"})", "does not match order_id_pattern");  // the default example is not one
}

TEST(AssistantSettings, TheShopsOrderNumbersAndWhatTheyLookLike) {
  const auto o = apply_assistant_settings(
      nlohmann::json::parse(R"({"order_id_pattern": "po\\d{6}", "order_id_example": "PO123456"})"), {});
  EXPECT_EQ(o.entities.order_id_pattern, R"(po\d{6})");
  EXPECT_EQ(o.entities.order_id_example, "PO123456");
}

TEST(AssistantSettings, TheConfigsAssistantTableIsCheckedWithItsLine) {
  const auto c = pipeline::parse_config(R"(
[assistant]
out_of_scope_threshold = 0.5
[assistant.intents]
angry = "handoff"
[[assistant.forms]]
name = "gift_wrap"
triggers = ["gift wrap", "礼品包装"]
done_en = "Done."
[[assistant.forms.slots]]
name = "order_id"
kind = "order_id"
prompt_en = "Which order?"
prompt_zh = "哪个订单？"
)",
                                        "shop.toml", ".");
  const auto o = apply_assistant_settings(c.assistant, {});
  EXPECT_EQ(o.intent_actions.at("angry"), "handoff");
  const auto f = std::find_if(o.forms.begin(), o.forms.end(), [](const FormSpec& x) { return x.name == "gift_wrap"; });
  ASSERT_NE(f, o.forms.end());
  EXPECT_EQ(f->slots.at(0).prompt_zh, "哪个订单？");
  EXPECT_EQ(f->triggers.at(1), "礼品包装");
  try {
    pipeline::parse_config("store = {path = \"x.db\"}\n\n[assistant]\nintents = {x = \"form:nope\"}\n", "shop.toml", ".");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shop.toml"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("form:nope"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace persona::assistant
