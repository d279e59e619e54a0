// The assistant's commands on the sample shop: the knowledge graph from the catalogue, a FAQ,
// and a chat session as a signed-in user, one message per line.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <sstream>

#include "support/test_support.h"

namespace persona {
namespace {

using test::json_of;
using test::run_persona;

TEST(AssistantCli, KgFaqAndAChat) {
  test::TempDir dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  const std::string config = dir.file("shop.toml"), models = dir.file("models");
  ASSERT_EQ(run_persona({"ingest", "--config", config, "-q"}).exit_code, 0);
  const auto built = json_of(run_persona({"kg", "build", "--config", config, "--catalogue", "--json"}));
  EXPECT_GT(built["entities"].get<int>(), 100);
  test::write_file(dir.file("faq.json"), R"([{"id":"ship","question":"How long does shipping take?","answer":"3 to 5 days."}])");
  ASSERT_EQ(run_persona({"faq", "build", dir.file("faq.json"), "--models", models, "-q"}).exit_code, 0);
  const auto asked = json_of(run_persona({"faq", "ask", "how long is shipping", "--models", models, "--json"}));
  EXPECT_TRUE(asked["answered"].get<bool>());
  EXPECT_EQ(asked["matches"][0]["id"], "ship");

  test::write_file(dir.file("chat.txt"), "hello\nwhere is my last order?\nhow long does shipping take\nI want a human\n");
  const auto chat = run_persona({"chat", "--config", config, "--models", models, "--user", "U000001", "--json"}, 120, {},
                                dir.file("chat.txt"));
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  std::vector<nlohmann::json> turns;
  std::istringstream lines(chat.out);
  for (std::string line; std::getline(lines, line);) turns.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(turns.size(), 4u);
  EXPECT_EQ(turns[0]["intent"], "greet");
  EXPECT_EQ(turns[1]["intent"], "last_order");
  EXPECT_NE(turns[1]["reply"].get<std::string>().find("Order S"), std::string::npos) << turns[1].dump();
  EXPECT_EQ(turns[2]["intent"], "faq");
  EXPECT_TRUE(turns[3]["handoff"].get<bool>());
  EXPECT_NE(turns[3]["summary"].get<std::string>().find("U000001"), std::string::npos);

  auto bad = run_persona({"kg", "ask", "anything", "--store", dir.file("none.db")});
  EXPECT_EQ(bad.exit_code, 1);
  bad = run_persona({"faq", "build", dir.file("missing.json"), "--models", models});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("missing.json"), std::string::npos);
}

// A form of the shop's own, declared in the config's [assistant] table; a mistake there is an
// error naming the config file.
TEST(AssistantCli, FormsFromTheConfig) {
  test::TempDir dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  const std::string config = dir.file("shop.toml");
  ASSERT_EQ(run_persona({"ingest", "--config", config, "-q"}).exit_code, 0);
  std::ifstream in(config);
  const std::string shop((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  test::write_file(config, shop + R"(
[[assistant.forms]]
name = "gift_wrap"
triggers = ["gift wrap", "礼品包装"]
confirm_en = "Wrap order {order_id}?"
done_en = "Done: order {order_id} will be gift wrapped."
[[assistant.forms.slots]]
name = "order_id"
kind = "order_id"
prompt_en = "Which order should I wrap?"
)");
  test::write_file(dir.file("chat.txt"), "please gift wrap it\nS00000004\nyes\n");
  const auto chat = run_persona({"chat", "--config", config, "--models", dir.file("models"), "--user", "U000001", "--json"}, 120,
                                {}, dir.file("chat.txt"));
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  std::vector<nlohmann::json> turns;
  std::istringstream lines(chat.out);
  for (std::string line; std::getline(lines, line);) turns.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(turns.size(), 3u);
  EXPECT_EQ(turns[0]["intent"], "gift_wrap");
  EXPECT_EQ(turns[0]["reply"], "Which order should I wrap? (it looks like S00001234)");  // the shop's order_id_example
  EXPECT_EQ(turns[2]["intent"], "gift_wrap_done");
  EXPECT_EQ(turns[2]["action"]["slots"]["order_id"], "S00000004");

  test::write_file(config, shop + "\n[assistant.intents]\nrefund = \"form:no_such_form\"\n");
  const auto bad = run_persona({"chat", "--config", config}, 60, {}, dir.file("chat.txt"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("shop.toml"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("no_such_form"), std::string::npos) << bad.err;
}

// The dialogue stories of tests/dialogues, on a small sample shop of another seed than the one
// they were first written for (the README's): they name the shop's facts, not its ids.
TEST(AssistantCli, DialogueStoriesPass) {
  test::TempDir dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--seed", "7", "--out", dir.path(), "-q"}).exit_code, 0);
  const std::string config = dir.file("shop.toml"), models = dir.file("models");
  ASSERT_EQ(run_persona({"ingest", "--config", config, "-q"}).exit_code, 0);
  ASSERT_EQ(run_persona({"kg", "build", "--config", config, "--catalogue", "-q"}).exit_code, 0);
  ASSERT_EQ(run_persona({"faq", "build", dir.file("faq.json"), "--models", models, "-q"}).exit_code, 0);
  ASSERT_EQ(run_persona({"train", "recommend", "--config", config, "--models", models, "--method", "popularity", "-q"}).exit_code, 0);
  // With a sentiment model, as the README trains one: complaints that ask for something (a
  // return, a refund) are acted on, not handed off as unhappy.
  ASSERT_EQ(run_persona({"train", "sentiment", "--config", config, "--models", models, "--no-tune", "-q"}).exit_code, 0);
  // The intent model from the shop's labelled support chats (with their out-of-scope messages).
  ASSERT_EQ(run_persona({"train", "text", "--config", config, "--task", "intent", "--label", "label", "--models", models,
                         "--no-tune", "-q"}).exit_code, 0);
  const std::string stories = std::string(PERSONA_SOURCE_DIR) + "/tests/dialogues";
  const auto r = run_persona({"test-dialogues", stories, "--config", config, "--models", models, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GE(j["stories"].get<int>(), 50);
  for (const auto& s : j["results"]) EXPECT_TRUE(s["passed"].get<bool>()) << s.dump();
  // A story that cannot pass fails the run, saying which turn and why.
  test::write_file(dir.file("bad.json"), R"([{"name": "wrong", "turns": [{"say": "hello", "intent": "faq"}]}])");
  const auto bad = run_persona({"test-dialogues", dir.file("bad.json"), "--config", config, "--models", models});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("turn 1"), std::string::npos) << bad.out;
  // A fact the shop does not have is an error naming it.
  test::write_file(dir.file("facts.json"), R"([{"name": "f", "user": "U000001", "turns": [{"say": "${order} ${no_such_fact}"}]}])");
  const auto unknown = run_persona({"test-dialogues", dir.file("facts.json"), "--config", config, "--models", models});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("${no_such_fact}"), std::string::npos) << unknown.err;
  test::write_file(dir.file("broken.json"), "[{\"name\": \"x\"}]");
  EXPECT_EQ(run_persona({"test-dialogues", dir.file("broken.json"), "--config", config}).exit_code, 1);
}

}  // namespace
}  // namespace persona
