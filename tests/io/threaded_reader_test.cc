#include "persona/io/threaded_reader.h"

#include <gtest/gtest.h>

#include "persona/core/error.h"
#include "persona/io/csv_reader.h"
#include "support/test_support.h"

namespace persona::io {
namespace {

std::string many_rows(int n) {
  std::string data = "id,text\n";
  for (int i = 0; i < n; ++i) data += std::to_string(i) + (i % 3 ? ",plain\n" : ",\"quoted, \"\"x\"\"\nline\"\n");
  return data;
}

TEST(ThreadedReader, HandsOutExactlyWhatTheInnerReaderReads) {
  const auto data = many_rows(20000);
  CsvReader plain(ByteSource::from_memory(data, "a.csv"));
  ThreadedReader threaded(std::make_unique<CsvReader>(ByteSource::from_memory(data, "a.csv")), {}, 100);
  EXPECT_EQ(threaded.columns(), plain.columns());
  Record a, b;
  int n = 0;
  while (plain.next(a)) {
    ASSERT_TRUE(threaded.next(b));
    ASSERT_EQ(a.line, b.line);
    ASSERT_EQ(a.raw, b.raw);
    ASSERT_EQ(a.fields.size(), b.fields.size());
    for (size_t i = 0; i < a.fields.size(); ++i) ASSERT_EQ(a.fields[i], b.fields[i]);
    ++n;
  }
  EXPECT_FALSE(threaded.next(b));
  EXPECT_EQ(n, 20000);
}

TEST(ThreadedReader, RunsTheHookOnEveryRecord) {
  int calls = 0;
  ThreadedReader reader(std::make_unique<CsvReader>(ByteSource::from_memory(many_rows(500), "a.csv")),
                        [&](Record& r) { ++calls, r.duplicate = r.line % 2; });
  Record r;
  while (reader.next(r)) EXPECT_EQ(r.duplicate, r.line % 2);
  EXPECT_EQ(calls, 500);
}

TEST(ThreadedReader, AReadErrorSurfacesAfterTheRowsBeforeIt) {
  test::TempDir dir;
  test::write_truncated_gzip(dir.file("cut.csv.gz"), 200000);
  ThreadedReader reader(std::make_unique<CsvReader>(dir.file("cut.csv.gz")));
  Record r;
  int rows = 0;
  try {
    while (reader.next(r)) ++rows;
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
  }
  EXPECT_GT(rows, 1000);
}

TEST(ThreadedReader, StopsCleanlyWhenDroppedEarly) {
  ThreadedReader reader(std::make_unique<CsvReader>(ByteSource::from_memory(many_rows(100000), "a.csv")), {}, 64);
  Record r;
  ASSERT_TRUE(reader.next(r));
  // The destructor must stop the worker, which is blocked on a full queue.
}

}  // namespace
}  // namespace persona::io
