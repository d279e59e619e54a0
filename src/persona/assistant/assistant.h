#pragma once
// The customer-service assistant's turn: a message in, a reply out, with what it understood (the
// intent, its confidence, the entities) and where the answer came from. It answers, in the
// message's language, from the user's own orders (only for the signed-in user), the knowledge
// graph (with the conversation's recent entities for "它的价格呢"), the recommender and the FAQ;
// it asks when it does not understand, and hands off to a person when asked, when the customer is
// very unhappy, or after repeated misunderstandings, with a summary for the person.
// Every answer is retrieved, never generated from the message: instructions inside a message
// ("ignore previous instructions ...") are just words to it.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/assistant/entities.h"
#include "persona/assistant/faq.h"
#include "persona/assistant/forms.h"
#include "persona/assistant/graph_answerer.h"
#include "persona/assistant/responder.h"
#include "persona/assistant/sessions.h"
#include "persona/assistant/settings.h"
#include "persona/store/store.h"

namespace persona::demand {
class TextAnalyzer;
}
namespace persona::recommend {
class RecommendModel;
class RecommendService;
}
namespace persona::ml {
class TextClassifier;
}

namespace persona::assistant {

struct Reply {
  std::string text, intent;
  double confidence = 0;
  std::vector<Entity> entities;
  nlohmann::json sources = nlohmann::json::array();  // [{"kind": "faq"|"graph"|"orders"|"recommender", ...}]
  bool handoff = false;
  std::string summary;  // for the person taking over
  nlohmann::json slots = nlohmann::json::object();  // the form's slots filled so far
  nlohmann::json action;  // a form's confirmed action: {"name", "slots"} (null when none)
  // What the intent model made of the message: its label ("unknown" below the threshold or out
  // of scope) and confidence; empty without an intent model.
  std::string understood;
  double understood_confidence = 0;
  bool phrased = false;          // the wording came from the large-model responder
  std::string responder_error;   // why the responder's wording was not used ("" when not asked)
  nlohmann::json to_json() const;
};

struct AssistantOptions {
  EntityOptions entities;
  int max_failures = 2;              // misunderstandings in a row before a hand-off
  double unhappy_below = 0.1;        // hand off when P(positive) of a message is below this (with a sentiment model)
  size_t max_message_bytes = 4000;   // longer messages are read up to here
  int64_t session_ttl_s = 1800;      // idle sessions expire
  std::vector<FormSpec> forms = default_forms();
  // Intent-model label -> "form:NAME" | "handoff" | "answer" (settings.h); labels not listed answer.
  std::map<std::string, std::string> intent_actions = default_intent_actions();
  std::optional<double> out_of_scope_threshold;  // overrides the intent model's own threshold
  ResponderConfig responder;                      // off unless responder.base_url is set
  std::string responder_key_env = "PERSONA_LLM_API_KEY";
  // Where conversations are kept (null: this process's memory).
  std::shared_ptr<SessionStore> sessions;
};

// What the assistant answers from; any part may be missing (that kind of answer is then skipped).
struct Knowledge {
  store::Store* store = nullptr;                          // the user's events (orders)
  const FaqIndex* faq = nullptr;
  const GraphAnswerer* graph = nullptr;
  const recommend::RecommendModel* recommender = nullptr;
  // When set, its current model instead (a server's live swaps after a retrain or an erasure).
  const recommend::RecommendService* recommend_service = nullptr;
  const demand::TextAnalyzer* analyzer = nullptr;         // sentiment, for unhappy customers
  const ml::TextClassifier* intents = nullptr;            // the intent model (labels -> intent_actions)
};

// The intent model's reading of a message.
struct Understanding {
  std::string label;        // "" without a model; "unknown" when out of scope or unsure
  double confidence = 0;
  bool known() const { return !label.empty() && label != "unknown"; }
};

class Assistant {
 public:
  // Throws std::invalid_argument for an intent action naming no form, or a bad responder URL.
  Assistant(Knowledge knowledge, AssistantOptions options = {});
  // One turn of a session (created on first use; `user` binds it). Thread-safe.
  Reply reply(const std::string& session_id, const std::string& user, std::string_view message, int64_t now = 0);
  // A session's state (for tests and the console); none when unknown or expired.
  std::optional<Session> session(const std::string& id) const;
  // Ends every conversation of `user` (an erasure); returns how many.
  size_t forget_user(const std::string& user) { return options_.sessions->forget_user(user); }
  // The intent model's reading of a message, with the configured out-of-scope threshold.
  Understanding understand(std::string_view message) const;
  const AssistantOptions& options() const { return options_; }

 private:
  Reply converse(const std::string& session_id, const std::string& user, const std::string& text, int64_t now,
                 const Understanding& understood);
  Reply answer(Session& s, const std::string& message, bool chinese, int64_t now, const Understanding& understood);
  Reply start_form(Session& s, const FormSpec& form, const std::string& message, const std::string& normalised,
                   const std::vector<Entity>& entities, bool chinese);
  std::optional<Reply> personal(Session& s, const std::string& normalised, const std::vector<Entity>& entities, bool chinese,
                                int64_t now);
  Reply handoff(Session& s, const std::string& why, bool chinese) const;
  Reply form_turn(Session& s, const FormSpec& form, const std::string& message, const std::string& normalised,
                  const std::vector<Entity>& entities, bool chinese, bool started_now);
  // A graph or FAQ answer (none when neither answers well): the answer to a plain question, and
  // to one asked in the middle of a form. Names it meets become the session's recent entities.
  enum class From { Graph = 1, Faq = 2, Both = 3 };
  std::optional<Reply> retrieve(Session& s, const std::string& message, const std::string& normalised, From from = From::Both);

  Knowledge knowledge_;
  AssistantOptions options_;
  std::unordered_map<std::string, std::string> titles_;     // item id -> title, for orders and recommendations
  std::unordered_map<std::string, std::string> titles_zh_;  // item id -> its Chinese name, when it has one
  // A form slot's question; for an order number, with what one looks like.
  std::string prompt_for(const FormSlot& slot, bool chinese) const;
  // The item's name for a reader of that language (the id when the store has no title).
  std::string item_name(const std::string& id, bool chinese) const;
  std::optional<Responder> responder_;
};

}  // namespace persona::assistant
