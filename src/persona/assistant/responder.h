#pragma once
// The optional large-model responder: a client for the OpenAI-compatible chat-completions HTTP
// API (POST {base_url}/chat/completions) that rephrases the assistant's answer from the facts it
// retrieved (FAQ, graph, orders, recommendations). The model only words the answer: it gets the
// customer's question and the facts, both with personal data redacted, and is told to use
// nothing else. Off unless a base URL is configured; on any failure (unreachable, timeout, HTTP
// error, malformed answer) the assistant keeps its own wording. See docs/assistant.md.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace persona::assistant {

struct ResponderConfig {
  std::string base_url;  // e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1 ("" = off)
  std::string model = "gpt-4o-mini";
  std::string api_key;   // sent as "Authorization: Bearer ..."; never logged or echoed
  double timeout_s = 15;
  int max_tokens = 300;
  double temperature = 0.2;
  bool enabled() const { return !base_url.empty(); }
};

// The config with PERSONA_LLM_BASE_URL, PERSONA_LLM_MODEL and PERSONA_LLM_API_KEY (or the
// variable the config names in api_key_env) from the environment where set.
ResponderConfig responder_from_environment(ResponderConfig config, const std::string& api_key_env = "PERSONA_LLM_API_KEY");

struct Phrasing {
  std::optional<std::string> text;  // the model's wording; none on failure
  std::string error;                // why not (no key material in it)
};

class Responder {
 public:
  explicit Responder(ResponderConfig config);
  // The chat-completions request for a question, the assistant's draft answer and its sources,
  // with personal data redacted from every string in it.
  nlohmann::json request(const std::string& question, const std::string& draft, const nlohmann::json& sources,
                         bool chinese) const;
  Phrasing phrase(const std::string& question, const std::string& draft, const nlohmann::json& sources, bool chinese) const;
  const ResponderConfig& config() const { return config_; }

 private:
  ResponderConfig config_;
  std::string scheme_host_port_, path_prefix_;
};

}  // namespace persona::assistant
