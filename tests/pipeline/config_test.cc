#include "persona/pipeline/config.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "persona/core/error.h"

namespace persona::pipeline {
namespace {

const char* kConfig = R"(
[store]
path = "shop.db"
[ingest]
batch_rows = 1000
[[clean]]
rule = "exact_duplicate"
[[sources]]
name = "events"
path = "data/events.csv.gz"
[sources.event]
user = "uid"
item = "sku"
type = { column = "action", map = { pv = "view", buy = "purchase" } }
timestamp = { column = "ts", format = "unix" }
[[sources]]
path = "retail.csv"
preset = "online_retail"
[sources.event]
user = "Customer ID"
[[normalise]]
field = "event.value"
method = "robust"
)";

std::string error_of(const std::string& text) {
  try {
    parse_config(text, "bad.toml", "/base");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Config, ReadsSourcesPresetsRulesAndPaths) {
  const auto c = parse_config(kConfig, "shop.toml", "/base");
  EXPECT_EQ(c.resolve(c.store_path), "/base/shop.db");
  EXPECT_EQ(c.batch_rows, 1000u);
  ASSERT_EQ(c.sources.size(), 2u);
  EXPECT_EQ(c.sources[0].mapping.path, "/base/data/events.csv.gz");
  EXPECT_EQ(c.sources[0].mapping.format, io::Format::Csv);
  EXPECT_FALSE(c.sources[0].has_rules);
  EXPECT_EQ(c.rules_for(c.sources[0]).size(), 1u);
  // The preset's rules and mapping, with the user's override of one field.
  const auto& retail = c.sources[1];
  EXPECT_EQ(retail.preset, "online_retail");
  EXPECT_TRUE(retail.has_rules);
  EXPECT_EQ(retail.mapping.name, "retail.csv");
  const auto& event_fields = retail.mapping.outputs[0].fields;
  const auto user = std::find_if(event_fields.begin(), event_fields.end(), [](const auto& f) { return f.first == "user"; });
  ASSERT_NE(user, event_fields.end());
  EXPECT_EQ(user->second.column, "Customer ID");
  EXPECT_EQ(std::count_if(event_fields.begin(), event_fields.end(), [](const auto& f) { return f.first == "user"; }), 1);
  ASSERT_EQ(c.normalisers.size(), 1u);
  EXPECT_EQ(c.reject_log_path(), "/base/shop.db.rejects.jsonl");
}

TEST(Config, UserAttributesAsDottedKeys) {
  const auto c = parse_config("[[sources]]\npath = \"u.csv\"\n[sources.user]\nid = \"uid\"\nattr.level = \"lvl\"\n"
                              "attr.channel = { column = \"ch\", default = \"web\" }\n",
                              "u.toml", "/");
  const auto& fields = c.sources[0].mapping.outputs[0].fields;
  ASSERT_EQ(fields.size(), 3u);
  EXPECT_TRUE(std::any_of(fields.begin(), fields.end(), [](const auto& f) { return f.first == "attr.level"; }));
  EXPECT_TRUE(std::any_of(fields.begin(), fields.end(),
                          [](const auto& f) { return f.first == "attr.channel" && f.second.default_value == "web"; }));
}

TEST(Config, SyntaxErrorsNameTheLine) {
  const auto e = error_of("[store]\npath = \"x\"\n[[sources]\n");
  EXPECT_NE(e.find("bad.toml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("TOML syntax error"), std::string::npos) << e;
}

TEST(Config, UnknownKeysAreErrorsNotIgnored) {
  const auto e = error_of("[store]\npaht = \"x.db\"\n");
  EXPECT_NE(e.find("bad.toml:2"), std::string::npos) << e;
  EXPECT_NE(e.find("paht"), std::string::npos) << e;
  EXPECT_NE(e.find("known keys: path"), std::string::npos) << e;
}

TEST(Config, BadMappingsAndRulesAreClearErrors) {
  EXPECT_NE(error_of("[[sources]]\npath = \"a.csv\"\n[sources.event]\ncolour = \"c\"\n").find("event has no field \"colour\""),
            std::string::npos);
  EXPECT_NE(error_of("[[sources]]\npath = \"a.csv\"\n[sources.event]\nuser = \"u\"\n").find("needs the field"),
            std::string::npos);
  EXPECT_NE(error_of("[[sources]]\npath = \"a.csv\"\npreset = \"nope\"\n").find("unknown preset \"nope\""),
            std::string::npos);
  EXPECT_NE(error_of("[[sources]]\npath = \"a.xlsx\"\n[sources.item]\nid = \"x\"\n").find("cannot tell the format"),
            std::string::npos);
  EXPECT_NE(error_of("[[clean]]\nrule = \"missing\"\n").find("needs fields"), std::string::npos);
  EXPECT_NE(error_of("[[clean]]\nrule = \"sparkle\"\n").find("unknown cleaning rule"), std::string::npos);
  EXPECT_NE(error_of("[ingest]\nbatch_rows = 0\n").find("batch_rows"), std::string::npos);
  EXPECT_NE(error_of("[[sources]]\npath = \"a.csv\"\n[sources.event]\nuser = \"u\"\nitem = \"i\"\ntype = \"t\"\n"
                     "timestamp = { column = \"ts\", format = \"%Q\" }\n")
                .find("%Q"),
            std::string::npos);
  EXPECT_NE(error_of("[[sources]]\npath = \"a.csv\"\n[sources.item]\nid = { }\n").find("needs column"),
            std::string::npos);
}

TEST(Config, FingerprintChangesWithTheMappingOrRules) {
  const auto c = parse_config(kConfig, "shop.toml", "/base");
  const auto a = source_fingerprint(c.sources[0], c.rules_for(c.sources[0]));
  EXPECT_EQ(a, source_fingerprint(c.sources[0], c.rules_for(c.sources[0])));
  auto changed = c.sources[0];
  changed.mapping.outputs[0].fields[0].second.column = "other";
  EXPECT_NE(a, source_fingerprint(changed, c.rules_for(changed)));
  EXPECT_NE(a, source_fingerprint(c.sources[0], {}));
}

// What used to be accepted without a word, or refused without saying where.
TEST(Config, ImpossibleRulesWindowsAndEncodingsAreErrorsWithTheirLine) {
  const std::string source = "[[sources]]\npath = \"e.csv\"\n[sources.event]\nuser = \"u\"\nitem = \"i\"\ntype = \"t\"\n"
                             "timestamp = \"ts\"\n";
  auto e = error_of(source + "[[sources.clean]]\nrule = \"range\"\nfields = [\"event.quantity\"]\nmin = 10\nmax = 1\n");
  EXPECT_NE(e.find("bad.toml:8"), std::string::npos) << e;
  EXPECT_NE(e.find("min 10 is above max 1"), std::string::npos) << e;
  e = error_of(source + "[[sources.clean]]\nrule = \"range\"\nfields = [\"event.quantity\"]\nmin = 1\nmax = 1\n"
                        "max_exclusive = true\n");
  EXPECT_NE(e.find("every row would be removed"), std::string::npos) << e;
  e = error_of(source + "\n\n[[sources.clean]]\nrule = \"pattern\"\nfields = [\"event.user\"]\nregex = \"(unclosed\"\n");
  EXPECT_NE(e.find("bad.toml:10"), std::string::npos) << e;
  EXPECT_NE(e.find("bad regular expression"), std::string::npos) << e;
  EXPECT_NE(e.find("(unclosed"), std::string::npos) << e;
  e = error_of("[ingest]\ntime_window = [\"2030-01-01\", \"2020-01-01\"]\n");
  EXPECT_NE(e.find("bad.toml:2"), std::string::npos) << e;
  EXPECT_NE(e.find("before the second"), std::string::npos) << e;
  e = error_of("[ingest]\ntime_window = [\"yesterday\", \"2020-01-01\"]\n");
  EXPECT_NE(e.find("not an ISO 8601"), std::string::npos) << e;
  e = error_of("[[normalise]]\nfield = \"event.price\"\nmethod = \"robust\"\n");
  EXPECT_NE(e.find("bad.toml:2"), std::string::npos) << e;  // at load, not after the ingest it follows
  e = error_of("[[normalise]]\nfield = \"event.value\"\nmethod = \"sigmoid\"\n");
  EXPECT_NE(e.find("bad.toml:3"), std::string::npos) << e;
  try {
    load_config("/dev/zero");
    ADD_FAILURE() << "/dev/zero read as a config";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("is a device"), std::string::npos) << err.what();
  }
  e = error_of("[[sources]]\npath = \"e.csv\"\nencoding = \"klingon\"\n[sources.event]\nuser = \"u\"\n");
  EXPECT_NE(e.find("bad.toml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown encoding \"klingon\""), std::string::npos) << e;
}

TEST(Config, TheTimeWindowAndEncodingReachEverySourceAndItsFingerprint) {
  const std::string source = "[[sources]]\npath = \"e.csv\"\n[sources.event]\nuser = \"u\"\nitem = \"i\"\ntype = \"t\"\n"
                             "timestamp = \"ts\"\n";
  const auto plain = parse_config(source, "a.toml", "/base");
  const auto windowed = parse_config("[ingest]\ntime_window = [\"2000-01-01\", \"2030-01-01T00:00:00Z\"]\n" + source, "a.toml", "/base");
  EXPECT_EQ(windowed.time_window.min, 946684800);
  EXPECT_EQ(windowed.sources[0].mapping.time_window.max, 1893456000);
  const auto& rules = plain.rules_for(plain.sources[0]);
  EXPECT_NE(source_fingerprint(plain.sources[0], rules), source_fingerprint(windowed.sources[0], rules));
  const auto encoded = parse_config("[[sources]]\npath = \"e.csv\"\nencoding = \"gbk\"\n" + source.substr(source.find("[sources.event]")),
                                    "a.toml", "/base");
  EXPECT_EQ(encoded.sources[0].mapping.encoding, "gbk");
  EXPECT_NE(source_fingerprint(plain.sources[0], rules), source_fingerprint(encoded.sources[0], rules));
}

}  // namespace
}  // namespace persona::pipeline
