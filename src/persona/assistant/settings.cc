#include "persona/assistant/settings.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <set>
#include <stdexcept>

#include "persona/assistant/assistant.h"
#include "persona/text/normalize.h"

namespace persona::assistant {
namespace {

void only_keys(const nlohmann::json& j, const std::set<std::string>& allowed, const std::string& where) {
  if (!j.is_object()) throw std::invalid_argument(where + " must be a table");
  for (const auto& [key, value] : j.items())
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += fmt::format("{}{}", list.empty() ? "" : ", ", a);
      throw std::invalid_argument(fmt::format("unknown key \"{}\" in {} (known keys: {})", key, where, list));
    }
}

double number(const nlohmann::json& j, const std::string& key, double min, double max) {
  if (!j.is_number()) throw std::invalid_argument(key + " must be a number");
  const double v = j.get<double>();
  if (!(v >= min && v <= max)) throw std::invalid_argument(fmt::format("{} must be between {} and {}", key, min, max));
  return v;
}

std::string string(const nlohmann::json& j, const std::string& key) {
  if (!j.is_string()) throw std::invalid_argument(key + " must be a string");
  return j.get<std::string>();
}

}  // namespace

std::map<std::string, std::string> default_intent_actions() {
  // Labels of the sample shop's intents and of the Bitext customer-support set (T1).
  return {{"track_order", "form:track_order"},         {"order_status", "form:track_order"},
          {"cancel_order", "form:cancel_order"},       {"change_shipping_address", "form:change_address"},
          {"set_up_shipping_address", "form:change_address"}, {"change_address", "form:change_address"},
          {"get_refund", "form:return_item"},          {"return_request", "form:return_item"},
          {"contact_human_agent", "handoff"},          {"complaint", "handoff"}};
}

void validate_intent_actions(const AssistantOptions& options) {
  for (const auto& entry : options.intent_actions) {
    const std::string& label = entry.first;
    const std::string& action = entry.second;  // a plain reference: clang 14 cannot capture bindings
    if (action == "handoff" || action == "answer") continue;
    const bool form = action.rfind("form:", 0) == 0 &&
                      std::any_of(options.forms.begin(), options.forms.end(),
                                  [&](const FormSpec& f) { return "form:" + f.name == action; });
    if (!form)
      throw std::invalid_argument(fmt::format(
          "intent \"{}\": unknown action \"{}\" (use handoff, answer or form:NAME of a configured form)", label, action));
  }
}

AssistantOptions apply_assistant_settings(const nlohmann::json& assistant, AssistantOptions base) {
  if (assistant.is_null()) return base;
  only_keys(assistant, {"forms", "intents", "out_of_scope_threshold", "responder", "max_failures", "session_ttl_s",
                        "order_id_pattern", "order_id_example"},
            "[assistant]");
  if (assistant.contains("order_id_pattern")) {
    base.entities.order_id_pattern = string(assistant["order_id_pattern"], "order_id_pattern");
    RE2::Options quiet;
    quiet.set_log_errors(false);
    const RE2 pattern("(" + base.entities.order_id_pattern + ")", quiet);
    if (!pattern.ok())
      throw std::invalid_argument(fmt::format("order_id_pattern is not a valid RE2 pattern: {}", pattern.error()));
  }
  if (assistant.contains("order_id_example")) base.entities.order_id_example = string(assistant["order_id_example"], "order_id_example");
  if (assistant.contains("order_id_pattern") || assistant.contains("order_id_example")) {
    // The example is what customers are told an order number looks like: it must be one.
    // Checked as messages are matched: on their normalised text.
    if (!RE2::FullMatch(text::normalize_for_analysis(base.entities.order_id_example), "(" + base.entities.order_id_pattern + ")"))
      throw std::invalid_argument(fmt::format("order_id_example \"{}\" does not match order_id_pattern (give both)",
                                              base.entities.order_id_example));
  }
  if (assistant.contains("forms")) base.forms = merge_forms(std::move(base.forms), assistant["forms"]);
  if (assistant.contains("intents")) {
    const auto& intents = assistant["intents"];
    if (!intents.is_object()) throw std::invalid_argument("[assistant.intents] must be a table of label = \"action\"");
    for (const auto& [label, action] : intents.items()) base.intent_actions[label] = string(action, "intents." + label);
  }
  if (assistant.contains("out_of_scope_threshold"))
    base.out_of_scope_threshold = number(assistant["out_of_scope_threshold"], "out_of_scope_threshold", 0, 1);
  if (assistant.contains("max_failures"))
    base.max_failures = static_cast<int>(number(assistant["max_failures"], "max_failures", 0, 100));
  if (assistant.contains("session_ttl_s"))
    base.session_ttl_s = static_cast<int64_t>(number(assistant["session_ttl_s"], "session_ttl_s", 1, 86400 * 30));
  if (assistant.contains("responder")) {
    const auto& r = assistant["responder"];
    if (r.is_object() && r.contains("api_key"))
      throw std::invalid_argument(
          "[assistant.responder] api_key: keys do not belong in config files; name an environment variable with api_key_env");
    only_keys(r, {"base_url", "model", "api_key_env", "timeout_s", "max_tokens", "temperature"}, "[assistant.responder]");
    auto& c = base.responder;
    if (r.contains("base_url")) c.base_url = string(r["base_url"], "base_url");
    if (r.contains("model")) c.model = string(r["model"], "model");
    if (r.contains("timeout_s")) c.timeout_s = number(r["timeout_s"], "timeout_s", 0.1, 600);
    if (r.contains("max_tokens")) c.max_tokens = static_cast<int>(number(r["max_tokens"], "max_tokens", 1, 100000));
    if (r.contains("temperature")) c.temperature = number(r["temperature"], "temperature", 0, 2);
    base.responder_key_env = r.contains("api_key_env") ? string(r["api_key_env"], "api_key_env") : base.responder_key_env;
  }
  validate_intent_actions(base);
  return base;
}

}  // namespace persona::assistant
