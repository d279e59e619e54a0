#pragma once
// The assistant's settings from the config's [assistant] table (docs/config.md#assistant):
//   [[assistant.forms]]          forms of the shop's own, replacing built-ins of the same name
//   [assistant.intents]          intent-model label -> action ("form:NAME", "handoff", "answer")
//   out_of_scope_threshold       overrides the intent model's own confidence threshold
//   [assistant.responder]        the optional large-model responder (base_url, model, api_key_env,
//                                timeout_s, max_tokens, temperature); the key itself only ever
//                                comes from the environment
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace persona::assistant {

struct AssistantOptions;

// What a label of the intent model makes the assistant do: start a form, hand off to a person, or
// "answer" (look for an answer in the graph and FAQ, as for any question).
std::map<std::string, std::string> default_intent_actions();

// `base` with the settings of `assistant` (the [assistant] table as JSON) applied. Throws
// std::invalid_argument naming the key for anything unknown or wrong.
AssistantOptions apply_assistant_settings(const nlohmann::json& assistant, AssistantOptions base);
// Checks every intent action names "handoff", "answer" or one of the forms.
void validate_intent_actions(const AssistantOptions& options);

}  // namespace persona::assistant
