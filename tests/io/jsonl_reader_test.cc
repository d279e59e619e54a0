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

TEST(JsonlReader, AJsonArrayFileIsReadAnElementPerRecord) {
  // Pretty-printed, with commas, brackets, braces and escaped quotes inside strings.
  JsonlReader reader(ByteSource::from_memory("\n [\n  {\"text\": \"good, [really] {great} \\\"ok\\\"\",\n   \"label\": \"pos\"},\n"
                                             "  {\"text\": \"bad\", \"label\": \"neg\", \"meta\": {\"a\": [1, 2]}},\n"
                                             "  17,\n  {\"text\": \"last\"}\n ]\n",
                                             "t.json"),
                     {"text", "label", "meta.a"});
  Record r;
  ASSERT_TRUE(reader.next(r));
  EXPECT_TRUE(r.problem.empty()) << r.problem;
  EXPECT_EQ(r.fields[0], "good, [really] {great} \"ok\"");
  EXPECT_EQ(r.fields[1], "pos");
  EXPECT_EQ(r.line, 1);
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(r.fields[1], "neg");
  EXPECT_EQ(r.fields[2], "[1,2]");
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(r.line, 3);
  EXPECT_FALSE(r.problem.empty());  // 17 is not an object: rejected, reading goes on
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(r.fields[0], "last");
  EXPECT_FALSE(reader.next(r));

  // A truncated array: the elements before the cut are read, the cut one is a problem.
  JsonlReader cut(ByteSource::from_memory("[{\"text\": \"a\"}, {\"text\": \"b", "cut.json"), {"text"});
  ASSERT_TRUE(cut.next(r));
  EXPECT_EQ(r.fields[0], "a");
  ASSERT_TRUE(cut.next(r));
  EXPECT_FALSE(r.problem.empty());
  EXPECT_FALSE(cut.next(r));
  JsonlReader empty(ByteSource::from_memory("[]", "empty.json"), {"text"});
  EXPECT_FALSE(empty.next(r));
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
