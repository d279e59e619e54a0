// persona anonymize on a small file it writes: the release's classes are counted here, and bad
// requests are clear errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
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

}  // namespace
}  // namespace persona
