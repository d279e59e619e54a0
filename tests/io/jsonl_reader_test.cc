#include "persona/io/jsonl_reader.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace persona::io {
namespace {

TEST(JsonlReader, SelectedKeysNestedKeysAndTypes) {
  JsonlReader reader(ByteSource::from_memory(
                         "{\"user\":\"u1\",\"n\":3,\"x\":2.5,\"ok\":true,\"meta\":{\"city\":\"上海\"},\"tags\":[1,2]}\n"
                         "{\"user\":\"u2\",\"n\":null}\n",
                         "t.jsonl"),
                     {"user", "n", "x", "ok", "meta.city", "tags"});
  Record r;
  ASSERT_TRUE(reader.next(r));
  EXPECT_TRUE(r.problem.empty());
  EXPECT_EQ(r.fields[0], "u1");
  EXPECT_EQ(r.fields[1], "3");
  EXPECT_EQ(r.fields[2], "2.5");
  EXPECT_EQ(r.fields[3], "true");
  EXPECT_EQ(r.fields[4], "上海");
  EXPECT_EQ(r.fields[5], "[1,2]");
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(r.line, 2);
  EXPECT_TRUE(r.present[0]);
  EXPECT_FALSE(r.present[1]);  // null
  EXPECT_FALSE(r.present[2]);  // absent
  EXPECT_FALSE(reader.next(r));
}

TEST(JsonlReader, BadLinesAreProblemsAndReadingGoesOn) {
  JsonlReader reader(ByteSource::from_memory("{\"a\":1}\n{broken\n\n[1,2]\n{\"a\":\"\xFF\"}\n{\"a\":4}\n", "bad.jsonl"),
                     {"a"});
  Record r;
  std::vector<std::pair<int64_t, bool>> seen;  // line, ok
  while (reader.next(r)) seen.emplace_back(r.line, r.problem.empty());
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[0], std::make_pair(int64_t{1}, true));
  EXPECT_EQ(seen[1], std::make_pair(int64_t{2}, false));  // not JSON
  EXPECT_EQ(seen[2], std::make_pair(int64_t{4}, false));  // not an object (blank line 3 skipped)
  EXPECT_EQ(seen[3], std::make_pair(int64_t{5}, false));  // invalid UTF-8
  EXPECT_EQ(seen[4], std::make_pair(int64_t{6}, true));
}

TEST(JsonlReader, GzipAndCrlf) {
  test::TempDir dir;
  test::write_gzip(dir.file("e.jsonl.gz"), "{\"a\":\"x\"}\r\n{\"a\":\"y\"}\r\n");
  JsonlReader reader(dir.file("e.jsonl.gz"), {"a"});
  Record r;
  ASSERT_TRUE(reader.next(r));
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(r.fields[0], "y");
  EXPECT_FALSE(reader.next(r));
}

TEST(JsonlReader, NestingDeeperThan64IsARejectedLine) {
  const std::string deep = "{\"user\":\"u1\",\"x\":" + std::string(70, '[') + std::string(70, ']') + "}\n";
  const std::string fine = "{\"user\":\"u2\",\"x\":" + std::string(60, '[') + std::string(60, ']') + "}\n";
  JsonlReader reader(ByteSource::from_memory(deep + fine, "t.jsonl"), {"user", "x"});
  Record r;
  ASSERT_TRUE(reader.next(r));
  EXPECT_FALSE(r.problem.empty());
  ASSERT_TRUE(reader.next(r));
  EXPECT_TRUE(r.problem.empty()) << r.problem;
  EXPECT_EQ(r.fields[0], "u2");
}

}  // namespace
}  // namespace persona::io
