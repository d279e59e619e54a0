// persona anonymize on a small file it writes: the release's classes are counted here, and bad
// requests are clear errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "support/test_support.h"

namespace persona {
namespace {

using test::json_of;
using test::run_persona;

TEST(PrivacyCli, AnonymizeReleasesKAnonymousClasses) {
  test::TempDir dir;
  std::string csv = "name,age,city,diagnosis\n";
  const char* cities[] = {"Beijing", "Shanghai", "Beijing", "Hangzhou"};
  const char* diagnoses[] = {"flu", "cold", "asthma"};
  for (int i = 0; i < 120; ++i)
    csv += "person" + std::to_string(i) + "," + std::to_string(20 + (i * 7) % 50) + "," + cities[i % 4] + "," + diagnoses[i % 3] + "\n";
  test::write_file(dir.file("people.csv"), csv);
  test::write_file(dir.file("city.txt"), "Beijing;North;*\nShanghai;East;*\nHangzhou;East;*\n");
  const auto r = run_persona({"anonymize", dir.file("people.csv"), "--qi", "age,city", "--numeric", "age", "--hierarchy",
                              "city=" + dir.file("city.txt"), "-k", "6", "--sensitive", "diagnosis", "-l", "2", "--drop",
                              "name", "-o", dir.file("release.csv"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GE(j["min_class_size"].get<int>(), 6);
  EXPECT_GE(j["min_distinct_sensitive"].get<int>(), 2);
  std::ifstream in(dir.file("release.csv"));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "age,city,diagnosis") << "the dropped column is gone";
  std::map<std::string, int> classes;
  int rows = 0;
  while (std::getline(in, line)) {
    EXPECT_EQ(line.find("person"), std::string::npos);
    classes[line.substr(0, line.rfind(','))]++;
    ++rows;
  }
  EXPECT_EQ(rows, 120);
  for (const auto& [qi, n] : classes) EXPECT_GE(n, 6) << qi;

  auto bad = run_persona({"anonymize", dir.file("people.csv"), "--qi", "age,town", "-k", "2"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("town"), std::string::npos) << bad.err;
  bad = run_persona({"anonymize", dir.file("people.csv"), "--qi", "age", "--numeric", "age", "-k", "500"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("500"), std::string::npos) << bad.err;
  bad = run_persona({"anonymize", dir.file("people.csv"), "--qi", "city", "--hierarchy", "city=" + dir.file("none.txt")});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("none.txt"), std::string::npos) << bad.err;
}


// Keys, sealing, pseudonyms, the audit log and DP statistics from the command line; no key
// material ever printed or logged.
TEST(PrivacyCli, KeysSealAuditAndDp) {
  test::TempDir dir;
  const std::string key = dir.file("k.key"), log = dir.file("audit.jsonl");
  const std::vector<std::string> env = {"PERSONA_AUDIT_LOG=" + log};
  auto r = run_persona({"keys", "init", "--key-file", key, "--json"}, 60, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream kf(key);
  const auto keys = nlohmann::json::parse(kf);
  const std::string secret = keys["keys"][0]["key"], pseudonym_secret = keys["pseudonym_key"];
  std::string everything = r.out + r.err;
  ASSERT_EQ(run_persona({"keys", "rotate", "--key-file", key}, 60, env).exit_code, 0);
  test::write_file(dir.file("export.csv"), "user,spend\nU1,10\n");
  r = run_persona({"seal", dir.file("export.csv"), "--key-file", key}, 60, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  everything += r.out + r.err;
  r = run_persona({"seal", "--open", dir.file("export.csv.sealed"), "-o", dir.file("back.csv"), "--key-file", key}, 60, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream back(dir.file("back.csv"));
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(back)), std::istreambuf_iterator<char>()), "user,spend\nU1,10\n");
  const auto p = json_of(run_persona({"pseudonym", "U1", "U2", "--key-file", key, "--json"}, 60, env));
  EXPECT_EQ(p["U1"].get<std::string>().rfind("p_", 0), 0u);
  EXPECT_NE(p["U1"], p["U2"]);
  r = run_persona({"audit", "verify", "--log", log, "--key-file", key, "--json"}, 60, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["entries"], 4);  // init, rotate, seal, open
  std::ifstream audit_in(log);
  everything += std::string((std::istreambuf_iterator<char>(audit_in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(everything.find(secret), std::string::npos);
  EXPECT_EQ(everything.find(pseudonym_secret), std::string::npos);
  // A wrong key file cannot open the export.
  ASSERT_EQ(run_persona({"keys", "init", "--key-file", dir.file("other.key")}, 60, env).exit_code, 0);
  r = run_persona({"seal", "--open", dir.file("export.csv.sealed"), "-o", dir.file("x.csv"), "--key-file", dir.file("other.key")}, 60, env);
  EXPECT_EQ(r.exit_code, 1);

  // DP statistics on the small shop, charged to a budget that runs out.
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.file("shop"), "-q"}).exit_code, 0);
  const std::string config = dir.file("shop") + "/shop.toml";
  ASSERT_EQ(run_persona({"ingest", "--config", config, "-q"}).exit_code, 0);
  // Profiles exported for analysts carry pseudonyms, not ids.
  ASSERT_EQ(run_persona({"profile", "build", "--config", config, "-q"}).exit_code, 0);
  r = run_persona({"profile", "export", "--config", config, "--format", "csv", "--pseudonyms", "--key-file", key}, 60, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("U000001"), std::string::npos);
  EXPECT_NE(r.out.find(p["U1"].get<std::string>().substr(0, 2)), std::string::npos);
  const auto pseudonym_of_first = json_of(run_persona({"pseudonym", "U000001", "--key-file", key, "--json"}, 60, env));
  EXPECT_NE(r.out.find(pseudonym_of_first["U000001"].get<std::string>()), std::string::npos);
  ASSERT_EQ(run_persona({"dp", "budget", "--config", config, "--analyst", "ana", "--set", "0.5"}, 60, env).exit_code, 0);
  const auto c = json_of(run_persona({"dp", "count", "--config", config, "--analyst", "ana", "-e", "0.3", "--json"}, 60, env));
  EXPECT_NEAR(c["result"]["value"].get<double>(), 300, 60) << "300 users, Laplace scale 3.3";
  EXPECT_NEAR(c["budget_left"].get<double>(), 0.2, 1e-9);
  r = run_persona({"dp", "mean", "--config", config, "--analyst", "ana", "-e", "0.3", "--upper", "5000"}, 60, env);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("budget"), std::string::npos) << r.err;
}

// Sealing is explicit: a key at hand leaves a store plain (and `stats` says so); `keys init
// --store` seals it, on disk, readable with the key through a rotation, and a k-anonymous user
// table can be released from it.
TEST(PrivacyCli, SealedStoreRotationAndAnonymousUserExport) {
  test::TempDir dir;
  const std::string key = dir.file("k.key");
  const std::vector<std::string> env = {"PERSONA_KEY_FILE=" + key, "PERSONA_AUDIT_LOG=" + dir.file("audit.jsonl")};
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.file("shop"), "-q"}).exit_code, 0);
  const std::string config = dir.file("shop") + "/shop.toml", store = dir.file("shop") + "/persona.db";
  {
    // The case: a key file at hand and a plain store; any command used to mark it sealed.
    test::TempDir plain;
    const std::string plain_config = plain.file("shop") + "/shop.toml";
    ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", plain.file("shop"), "-q"}).exit_code, 0);
    ASSERT_EQ(run_persona({"ingest", "--config", plain_config, "-q"}).exit_code, 0);
    ASSERT_EQ(run_persona({"keys", "init", "--key-file", plain.file("k.key"), "-q"}, 60, env).exit_code, 0);
    const std::vector<std::string> with_key = {"PERSONA_KEY_FILE=" + plain.file("k.key"),
                                               "PERSONA_AUDIT_LOG=" + plain.file("audit.jsonl")};
    EXPECT_EQ(json_of(run_persona({"stats", "--config", plain_config, "--json"}, 60, with_key))["sealed"], false);
    EXPECT_EQ(json_of(run_persona({"stats", "--config", plain_config, "--json"}))["sealed"], false);
  }
  ASSERT_EQ(run_persona({"keys", "init", "--store", store}, 60, env).exit_code, 0);
  auto r = run_persona({"ingest", "--config", config, "-q"}, 120, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_of(run_persona({"stats", "--config", config, "--json"}))["sealed"], true);
  const std::string bytes = test::read_file(store);
  EXPECT_EQ(bytes.find("\"member_level\""), std::string::npos) << "user attributes are sealed";
  EXPECT_EQ(bytes.find("会回购"), std::string::npos) << "review texts are sealed";
  EXPECT_NE(bytes.find("U000001"), std::string::npos) << "ids are not";

  // Without the key: counted, not read.
  EXPECT_EQ(json_of(run_persona({"stats", "--config", config, "--json"}))["texts"], 532);
  r = run_persona({"rejects", "--config", config});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("sealed"), std::string::npos) << r.err;

  const auto rotated = json_of(run_persona({"keys", "rotate", "--store", store, "--json"}, 120, env));
  EXPECT_EQ(rotated["active"], 2);
  EXPECT_GT(rotated["resealed"].get<int>(), 532);  // every text, attribute and reject row
  EXPECT_EQ(json_of(run_persona({"keys", "reseal", "--store", store, "--json"}, 120, env))["resealed"], 0);
  r = run_persona({"rejects", "--config", config}, 60, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("missing_user"), std::string::npos);

  const auto release = json_of(run_persona({"export", "users", "--config", config, "-k", "10", "--sensitive", "top_category",
                                            "-l", "2", "-o", dir.file("users.csv"), "--json"}, 120, env));
  EXPECT_GE(release["min_class_size"].get<int>(), 10);
  EXPECT_EQ(release["rows"], 300);
  const auto lines = test::lines_of(dir.file("users.csv"));
  ASSERT_EQ(lines.size(), 301u);
  EXPECT_EQ(lines[0], "age,gender,region,signup_year,orders,spend,top_category");
  std::map<std::string, int> classes;
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].find("U0"), std::string::npos);
    size_t end = 0;  // the class: the first three columns, the quasi-identifiers
    for (int c = 0; c < 3; ++c) end = lines[i].find(',', end) + 1;
    classes[lines[i].substr(0, end)]++;
  }
  for (const auto& [qi, n] : classes) EXPECT_GE(n, 10) << qi;
}

}  // namespace
}  // namespace persona
