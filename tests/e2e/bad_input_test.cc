// Malformed input of every kind the issue names: each gets a clear error naming the file, or
// reject-log entries with file and line; never a crash, never a hang.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace persona {
namespace {

using test::run_persona;

struct Case {
  const char* name;
  const char* file;
  std::string content;
  bool gzip;
  bool expect_error;       // exit 1 with a message naming the file
  const char* message;     // in stderr (error) or in the reject log (rows)
};

const char* kMappingConfig = R"(
[store]
path = "p.db"
[[sources]]
name = "data"
path = "@FILE@"
[sources.event]
user = "user"
item = "item"
type = "type"
timestamp = "ts"
)";

const char kNulRows[] = "user,item,type,ts\nu\0001,i1,view,2024-01-01\nu2,i2,view,2024-01-01\n";

std::vector<Case> cases() {
  std::string big_field = "user,item,type,ts\nu1,i1,view,2024-01-01\nu2,\"" + std::string(10 << 20, 'x') +
                          "\",view,2024-01-01\nu3,i3,view,2024-01-01\n";
  std::string gz_full;
  for (int i = 0; i < 20000; ++i) gz_full += "u" + std::to_string(i) + ",i" + std::to_string(i * 31 % 977) + ",view,2024-01-01\n";
  return {
      {"unbalanced_quotes", "q.csv", "user,item,type,ts\nu1,\"i1,view,2024-01-01\nu2,i2,view,2024-01-01\n", false, false,
       "never closed"},
      {"wrong_column_count", "c.csv", "user,item,type,ts\nu1,i1,view\nu2,i2,view,2024-01-01,extra\nu3,i3,view,2024-01-01\n",
       false, false, "expected 4 fields"},
      {"invalid_utf8", "u.csv", "user,item,type,ts\nu\xFF\xFE,i1,view,2024-01-01\nu2,i2,view,2024-01-01\n", false, false,
       "not valid UTF-8"},
      {"ten_mb_field", "big.csv", big_field, false, false, "longer than the limit"},
      {"nul_bytes", "nul.csv", std::string(kNulRows, sizeof kNulRows - 1),
       false, false, "NUL byte"},
      {"empty_file", "empty.csv", "", false, true, "empty"},
      {"header_only", "header.csv", "user,item,type,ts\n", false, false, nullptr},
      {"unknown_mapping_column", "cols.csv", "user_id,item,type,ts\nu1,i1,view,2024-01-01\n", false, true,
       "no such column"},
      {"truncated_gzip", "t.csv.gz", "user,item,type,ts\n" + gz_full, true, true, "truncated"},
      {"bad_jsonl", "e.jsonl", "{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":\"2024-01-01\"}\n{oops\n", false,
       false, "not valid JSON"},
  };
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class BadInput : public ::testing::TestWithParam<Case> {};

TEST_P(BadInput, ClearErrorOrRejectsNeverACrash) {
  const Case& c = GetParam();
  test::TempDir dir;
  const auto path = dir.file(c.file);
  if (c.gzip) {
    test::write_gzip(path, c.content);
    const auto bytes = test::read_file(path);
    test::write_file(path, bytes.substr(0, bytes.size() * 2 / 3));  // cut it short
  } else {
    test::write_file(path, c.content);
  }
  std::string config = kMappingConfig;
  config.replace(config.find("@FILE@"), 6, c.file);
  test::write_file(dir.file("c.toml"), config);
  const auto r = run_persona({"ingest", "--config", dir.file("c.toml"), "--json"}, 60);
  ASSERT_FALSE(r.timed_out) << c.name << " hung";
  ASSERT_LT(r.exit_code, 3) << c.name << " crashed: " << r.err;
  if (c.expect_error) {
    EXPECT_EQ(r.exit_code, 1) << c.name;
    EXPECT_NE(r.err.find(c.file), std::string::npos) << c.name << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.name << ": " << r.err;
    return;
  }
  ASSERT_EQ(r.exit_code, 0) << c.name << ": " << r.err;
  const auto report = nlohmann::json::parse(r.out)["sources"][0];
  EXPECT_EQ(report["rows_read"].get<int>(), report["rows_kept"].get<int>() + report["rows_removed"].get<int>());
  if (!c.message) return;
  EXPECT_GE(report["rows_removed"].get<int>(), 1) << c.name;
  const auto log = test::read_file(dir.file("p.db.rejects.jsonl"));
  EXPECT_NE(log.find(c.message), std::string::npos) << c.name << ": " << log.substr(0, 500);
  EXPECT_NE(log.find("\"line\":"), std::string::npos);
  EXPECT_GE(report["rows_kept"].get<int>(), 1) << c.name << ": the good rows must go on";
}

INSTANTIATE_TEST_SUITE_P(Files, BadInput, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(BadConfig, BrokenConfigsAreClearErrors) {
  test::TempDir dir;
  const std::vector<std::pair<std::string, std::string>> configs = {
      {"[store\npath = 1\n", "TOML syntax error"},
      {"[[sources]]\npath = \"x.csv\"\n[sources.event]\nuser = \"u\"\n", "needs the field"},
      {"[[sources]]\npath = \"missing.csv\"\npreset = \"movielens\"\n", "missing.csv"},
      {"[ingest]\nbatch = 5\n", "unknown key \"batch\""},
  };
  for (const auto& [text, message] : configs) {
    test::write_file(dir.file("bad.toml"), text);
    const auto r = run_persona({"ingest", "--config", dir.file("bad.toml")});
    EXPECT_EQ(r.exit_code, 1) << text;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  }
  const auto missing = run_persona({"ingest", "--config", dir.file("nope.toml")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("nope.toml"), std::string::npos);
  const auto neither = run_persona({"ingest"});
  EXPECT_EQ(neither.exit_code, 1);
  EXPECT_NE(neither.err.find("--config"), std::string::npos);
}

}  // namespace
}  // namespace persona
