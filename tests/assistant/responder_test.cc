// The large-model responder against a small local server that speaks the chat-completions
// protocol: the model's wording is used, what is sent carries the facts and the key but no
// personal data, and every failure (HTTP error, garbage, timeout, no server) keeps the
// assistant's own answer.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "persona/assistant/assistant.h"

namespace persona::assistant {
namespace {

// A chat-completions server on a free local port; `answer` decides each response.
struct FakeModel {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mutex;
  std::vector<nlohmann::json> bodies;
  std::vector<std::string> keys;
  std::function<void(httplib::Response&)> answer = [](httplib::Response& res) {
    res.set_content(R"({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",)"
                    R"("content":"You can return it within 30 days from My Orders."},"finish_reason":"stop"}]})",
                    "application/json");
  };

  FakeModel() {
    server.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mutex);
        bodies.push_back(nlohmann::json::parse(req.body, nullptr, false));
        keys.push_back(req.get_header_value("Authorization"));
      }
      answer(res);
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
    while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeModel() {
    server.stop();
    thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/v1"; }
};

struct Bot {
  FaqIndex faq = FaqIndex::build({{"returns", "How do I return an item?", "Open Orders and press Return within 30 days."}});
  std::optional<Assistant> assistant;
  explicit Bot(const std::string& url, double timeout_s = 5) {
    Knowledge k;
    k.faq = &faq;
    AssistantOptions o;
    o.responder.base_url = url;
    o.responder.model = "local-test-model";
    o.responder.api_key = "sk-test-secret-123";
    o.responder.timeout_s = timeout_s;
    assistant.emplace(k, o);
  }
};

TEST(Responder, PhrasesFromTheFactsWithPersonalDataRedacted) {
  FakeModel model;
  Bot bot(model.url());
  const auto r = bot.assistant->reply("s", "", "How do I return an item? I'm li.wei@example.com, 13812345678");
  EXPECT_EQ(r.intent, "faq");
  EXPECT_TRUE(r.phrased);
  EXPECT_EQ(r.text, "You can return it within 30 days from My Orders.");
  EXPECT_EQ(r.sources.at(0).at("kind"), "faq");
  ASSERT_EQ(model.bodies.size(), 1u);
  const auto& body = model.bodies[0];
  EXPECT_EQ(body.at("model"), "local-test-model");
  EXPECT_EQ(model.keys[0], "Bearer sk-test-secret-123");
  const std::string sent = body.dump();
  EXPECT_NE(sent.find("Open Orders and press Return within 30 days."), std::string::npos) << "the facts go to the model";
  EXPECT_EQ(sent.find("li.wei@example.com"), std::string::npos);
  EXPECT_EQ(sent.find("13812345678"), std::string::npos);
  EXPECT_NE(sent.find("[EMAIL]"), std::string::npos);
  EXPECT_EQ(sent.find("sk-test-secret-123"), std::string::npos) << "the key goes in the header only";
  // A reply without retrieved facts (a greeting) is not sent to the model at all.
  const auto hello = bot.assistant->reply("s", "", "hello");
  EXPECT_FALSE(hello.phrased);
  EXPECT_EQ(model.bodies.size(), 1u);
}

TEST(Responder, FailuresKeepTheAssistantsAnswer) {
  FakeModel model;
  Bot bot(model.url());
  const std::string question = "How do I return an item?", own = "Open Orders and press Return within 30 days.";
  model.answer = [](httplib::Response& res) { res.status = 500, res.set_content("oops", "text/plain"); };
  auto r = bot.assistant->reply("a", "", question);
  EXPECT_EQ(r.text, own);
  EXPECT_FALSE(r.phrased);
  EXPECT_NE(r.responder_error.find("500"), std::string::npos) << r.responder_error;
  model.answer = [](httplib::Response& res) { res.set_content("{\"choices\": []}", "application/json"); };
  r = bot.assistant->reply("b", "", question);
  EXPECT_EQ(r.text, own);
  EXPECT_FALSE(r.responder_error.empty());
  model.answer = [](httplib::Response& res) { res.set_content("not json at all", "application/json"); };
  r = bot.assistant->reply("c", "", question);
  EXPECT_EQ(r.text, own);
  model.answer = [](httplib::Response& res) {
    res.set_content(R"({"choices":[{"message":{"content":"   "}}]})", "application/json");
  };
  EXPECT_EQ(bot.assistant->reply("d", "", question).text, own);
  EXPECT_EQ(r.responder_error.find("sk-test"), std::string::npos) << "errors never show the key";
}

TEST(Responder, ASlowOrMissingModelDoesNotHoldTheReply) {
  FakeModel model;
  model.answer = [](httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    res.set_content(R"({"choices":[{"message":{"content":"late"}}]})", "application/json");
  };
  Bot slow(model.url(), 0.3);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = slow.assistant->reply("a", "", "How do I return an item?");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1400));
  EXPECT_FALSE(r.phrased);
  EXPECT_EQ(r.text, "Open Orders and press Return within 30 days.");
  // Nothing listening: refused at once, the assistant's answer stays.
  const int closed = model.port;
  model.server.stop();
  Bot none("http://127.0.0.1:" + std::to_string(closed) + "/v1", 1);
  const auto n = none.assistant->reply("a", "", "How do I return an item?");
  EXPECT_FALSE(n.phrased);
  EXPECT_FALSE(n.responder_error.empty());
}

TEST(Responder, RejectsABadBaseUrl) {
  EXPECT_THROW(Bot("ftp://example.com"), std::invalid_argument);
  EXPECT_THROW(Bot("localhost:8000"), std::invalid_argument);
}

TEST(Responder, EnvironmentOverridesTheConfig) {
  ResponderConfig c;
  c.base_url = "http://config/v1";
  setenv("PERSONA_LLM_BASE_URL", "http://env/v1", 1);
  setenv("MY_KEY_VAR", "k-1", 1);
  const auto e = responder_from_environment(c, "MY_KEY_VAR");
  EXPECT_EQ(e.base_url, "http://env/v1");
  EXPECT_EQ(e.api_key, "k-1");
  unsetenv("PERSONA_LLM_BASE_URL");
  unsetenv("MY_KEY_VAR");
  EXPECT_EQ(responder_from_environment(c).base_url, "http://config/v1");
}

}  // namespace
}  // namespace persona::assistant
