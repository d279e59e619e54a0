// The right to be forgotten, end to end: a user with distinctive PII is planted in the sample
// shop, every stage runs over them (ingest with a reject, text models, recommender, propensity,
// profiles, an export, DP statistics, chat, an API key), `persona erase` runs, and then every file
// Persona wrote (store and WAL, reject log, export, audit log, API keys, models) is searched for
// the id, the pseudonym and the PII. Consent is checked on the way.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "support/test_support.h"

namespace persona {
namespace {

namespace fs = std::filesystem;
using test::json_of;
using test::run_persona;

constexpr const char* kUser = "UZEBULON77";
constexpr const char* kName = "Zebulon Quartermaine";
constexpr const char* kEmail = "zeb.quartermaine@example.org";
constexpr const char* kPhone = "13987654321";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The planted user's own files and their sources, added to the shop's config. A second user,
// UNOANALYTICS, refuses analytics; UNOPERSONAL refuses personalisation.
void plant(const std::string& shop) {
  test::write_file(shop + "/planted_users.csv",
                   std::string("user_id,name,email,phone,personalisation,analytics\n") + kUser + "," + kName + "," + kEmail +
                       "," + kPhone + ",yes,yes\nUNOANALYTICS,Nora Analytics,nora@example.net,13911112222,yes,no\n"
                       "UNOPERSONAL,Pat Personal,pat@example.net,13933334444,no,yes\n");
  std::string events = "user_id,item_id,event,quantity,price,timestamp\n";
  for (int i = 0; i < 12; ++i) {
    const std::string item = "P0000" + std::to_string(1 + i % 9);
    for (const char* user : {kUser, "UNOANALYTICS", "UNOPERSONAL"})
      events += std::string(user) + "," + item + "," + (i % 3 == 0 ? "purchase" : "view") + ",1,19.5,2025-10-" +
                std::to_string(10 + i) + "T10:00:00Z\n";
  }
  events += std::string(kUser) + ",P00002,purchase,1,not-a-price,2025-10-30T10:00:00Z\n";  // a reject naming them
  test::write_file(shop + "/planted_events.csv", events);
  test::write_file(shop + "/planted_texts.jsonl",
                   std::string("{\"user_id\":\"") + kUser + "\",\"item_id\":\"P00002\",\"kind\":\"review\",\"lang\":\"en\"," +
                       "\"text\":\"Great kettle. " + kName + " here, call me on " + kPhone + " or mail " + kEmail +
                       "\",\"rating\":5,\"timestamp\":\"2025-10-20T10:00:00Z\"}\n");
  std::string config = test::read_file(shop + "/shop.toml");
  config += R"(
[[sources]]
name = "planted_users"
path = "planted_users.csv"
[sources.user]
id = "user_id"
attr.name = "name"
attr.email = "email"
attr.phone = "phone"
consent_personalisation = "personalisation"
consent_analytics = "analytics"

[[sources]]
name = "planted_events"
path = "planted_events.csv"
[sources.event]
user = "user_id"
item = "item_id"
type = "event"
quantity = "quantity"
value = "price"
timestamp = "timestamp"
[[sources.clean]]
rule = "type_error"

[[sources]]
name = "planted_texts"
path = "planted_texts.jsonl"
[sources.text]
user = "user_id"
item = "item_id"
kind = "kind"
language = "lang"
body = "text"
sentiment = "rating"
timestamp = "timestamp"
)";
  test::write_file(shop + "/shop.toml", config);
}

TEST(EraseCli, NoTraceOfAnErasedUserAnywherePersonaWrote) {
  test::TempDir dir;
  const std::string shop = dir.file("shop"), models = dir.file("models"), key = dir.file("persona.key");
  const std::string audit_log = dir.file("audit.jsonl"), api_keys = dir.file("api-keys.json");
  const std::vector<std::string> env = {"PERSONA_KEY_FILE=" + key, "PERSONA_AUDIT_LOG=" + audit_log,
                                        "PERSONA_API_KEYS=" + api_keys, "PERSONA_MODELS=" + models};
  auto ok = [&](const std::vector<std::string>& args) {
    const auto r = run_persona(args, 300, env);
    EXPECT_EQ(r.exit_code, 0) << args[0] << " " << (args.size() > 1 ? args[1] : "") << ": " << r.err;
    return r;
  };
  ok({"keys", "init"});
  ok({"generate", "--size", "small", "--out", shop, "-q"});
  plant(shop);
  const std::string config = shop + "/shop.toml";

  // Every stage, over the planted user.
  ok({"ingest", "--config", config, "-q"});
  ok({"train", "sentiment", "--config", config, "--model", "tfidf-linear", "--budget", "5", "-q"});
  ok({"train", "keywords", "--config", config, "-q"});
  ok({"train", "propensity", "--config", config, "--snapshot", "2025-08-01", "--learner", "logistic", "-q"});
  ok({"train", "recommend", "--config", config, "--method", "als", "-q"});
  ok({"profile", "build", "--config", config, "-q"});
  ok({"profile", "export", "--config", config, "--format", "jsonl", "-o", dir.file("profiles.jsonl")});
  ok({"dp", "count", "--config", config, "--analyst", "ana", "-e", "0.1"});
  ok({"keys", "create", "--name", "zeb's app", "--role", "user", "--user", kUser});
  test::write_file(dir.file("chat.txt"), "where is my last order?\nrecommend something\n");
  EXPECT_EQ(run_persona({"chat", "--config", config, "--user", kUser, "--json"}, 120, env, dir.file("chat.txt")).exit_code, 0);

  // Consent, on the way: refusals are respected by profiles, exports and recommendations.
  const auto pseudonym = json_of(run_persona({"pseudonym", kUser, "UNOANALYTICS", "--json"}, 60, env));
  const std::string zeb = pseudonym[kUser], nora = pseudonym["UNOANALYTICS"];
  const std::string exported = test::read_file(dir.file("profiles.jsonl"));
  EXPECT_NE(exported.find(zeb), std::string::npos) << "the export has the planted user, by pseudonym";
  EXPECT_EQ(exported.find(kUser), std::string::npos) << "and never by id";
  EXPECT_EQ(exported.find(nora), std::string::npos) << "a user refusing analytics is not exported";
  EXPECT_NE(run_persona({"profile", "show", "UNOPERSONAL", "--config", config}, 60, env).exit_code, 0)
      << "no profile without consent to personalisation";
  const auto stranger = json_of(run_persona({"recommend", "UNOPERSONAL", "--config", config, "--json"}, 60, env));
  EXPECT_FALSE(stranger["personalised"].get<bool>());
  EXPECT_EQ(stranger["history_items"], 0);
  const auto known = json_of(run_persona({"recommend", kUser, "--config", config, "--json"}, 60, env));
  EXPECT_TRUE(known["personalised"].get<bool>());
  EXPECT_GT(known["history_items"].get<int>(), 0);

  // The name is in a text (redacted of its phone and email at ingest) and an attribute.
  const std::string rejects = test::read_file(shop + "/rejects.jsonl");
  ASSERT_NE(rejects.find(kUser), std::string::npos) << "the reject log names the user before the erasure";
  EXPECT_EQ(rejects.find(kPhone), std::string::npos);

  const auto erased = json_of(run_persona({"erase", kUser, "--config", config, "--json"}, 300, env));
  EXPECT_TRUE(erased["found"].get<bool>());
  EXPECT_GE(erased["deleted"]["events"].get<int>(), 12);
  EXPECT_EQ(erased["deleted"]["texts"], 1);
  EXPECT_EQ(erased["deleted"]["profiles"], 1);
  EXPECT_EQ(erased["deleted"]["rejects"], 1);
  EXPECT_EQ(erased["deleted"]["api_keys"], 1);
  EXPECT_EQ(erased["receipt"].get<std::string>().rfind("e1_", 0), 0u);
  EXPECT_FALSE(erased["models_retrained"].empty()) << erased.dump();

  // Every file Persona wrote, searched for every trace (case-insensitively).
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir.path()))
    if (e.is_regular_file() && e.path().filename().string().rfind("planted_", 0) != 0 && e.path() != fs::path(config))
      files.push_back(e.path().string());
  EXPECT_GT(files.size(), 8u);
  for (const auto& f : files) {
    const std::string bytes = lower(test::read_file(f));
    for (const std::string& trace : {std::string(kUser), zeb, std::string("quartermaine"), std::string(kEmail),
                                     std::string(kPhone)})
      EXPECT_EQ(bytes.find(lower(trace)), std::string::npos) << trace << " found in " << f;
  }
  // The rest is still there, and still works.
  EXPECT_NE(test::read_file(dir.file("profiles.jsonl")).find("\"user\":\"p_"), std::string::npos);
  ok({"recommend", "U000001", "--config", config});
  const auto verify = run_persona({"audit", "verify", "--json"}, 60, env);
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  EXPECT_NE(test::read_file(audit_log).find(erased["receipt"].get<std::string>()), std::string::npos);
}

}  // namespace
}  // namespace persona
