#include "persona/io/csv_reader.h"

#include <gtest/gtest.h>

#include "persona/core/error.h"
#include "support/test_support.h"

namespace persona::io {
namespace {

struct Row {
  int64_t line;
  std::vector<std::string> fields;
  std::string problem;
};

std::vector<Row> read_all(std::string data, CsvOptions options = {}) {
  CsvReader reader(ByteSource::from_memory(std::move(data), "test.csv"), options);
  std::vector<Row> rows;
  Record r;
  while (reader.next(r)) {
    Row row{r.line, {}, r.problem};
    for (auto f : r.fields) row.fields.emplace_back(f);
    rows.push_back(row);
  }
  return rows;
}

using Fields = std::vector<std::string>;

TEST(CsvReader, QuotesDoubledQuotesAndEmbeddedNewlines) {
  const auto rows = read_all("id,text\n1,\"say \"\"hi\"\"\"\n2,\"two\nlines, with comma\"\n3,plain\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].fields, (Fields{"1", "say \"hi\""}));
  EXPECT_EQ(rows[1].fields, (Fields{"2", "two\nlines, with comma"}));
  EXPECT_EQ(rows[2].fields, (Fields{"3", "plain"}));
  // Physical line numbers: the record after an embedded newline starts on line 5.
  EXPECT_EQ(rows[0].line, 2);
  EXPECT_EQ(rows[1].line, 3);
  EXPECT_EQ(rows[2].line, 5);
}

TEST(CsvReader, BomCrlfAndMissingFinalNewline) {
  CsvReader reader(ByteSource::from_memory("\xEF\xBB\xBF" "a,b\r\n1,2\r\n3,4", "bom.csv"));
  ASSERT_EQ(reader.columns(), (Fields{"a", "b"}));
  Record r;
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(std::string(r.fields[1]), "2");
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(std::string(r.fields[1]), "4");
  EXPECT_EQ(r.line, 3);
  EXPECT_FALSE(reader.next(r));
}

TEST(CsvReader, EmptyFieldsAndTrailingDelimiter) {
  const auto rows = read_all("a,b,c\n,,\n1,,\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields, (Fields{"", "", ""}));
  EXPECT_EQ(rows[1].fields, (Fields{"1", "", ""}));
  EXPECT_TRUE(rows[1].problem.empty());
}

TEST(CsvReader, BlankLinesAreSkippedButCounted) {
  const auto rows = read_all("a\n\n1\n\r\n2\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].line, 3);
  EXPECT_EQ(rows[1].line, 5);
}

TEST(CsvReader, TsvAndMultiByteDelimiter) {
  CsvOptions tsv;
  tsv.delimiter = "\t";
  EXPECT_EQ(read_all("a\tb\nx y\tz,w\n", tsv)[0].fields, (Fields{"x y", "z,w"}));
  CsvOptions ml;
  ml.delimiter = "::";
  ml.header = false;
  ml.quote = 0;
  const auto rows = read_all("1::1193::5::978300760\n2::661::3::978302109\n", ml);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].fields, (Fields{"2", "661", "3", "978302109"}));
}

TEST(CsvReader, WrongColumnCountIsAProblemAndReadingGoesOn) {
  const auto rows = read_all("a,b\n1,2,3\n4\n5,6\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_NE(rows[0].problem.find("expected 2 fields"), std::string::npos);
  EXPECT_NE(rows[1].problem.find("found 1"), std::string::npos);
  EXPECT_TRUE(rows[2].problem.empty());
  EXPECT_EQ(rows[2].fields, (Fields{"5", "6"}));
}

TEST(CsvReader, UnbalancedQuoteCostsOneLineNotTheRestOfTheFile) {
  const auto rows = read_all("a,b\n1,\"never closed\n2,ok\n3,fine\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].line, 2);
  EXPECT_NE(rows[0].problem.find("never closed"), std::string::npos);
  EXPECT_EQ(rows[1].fields, (Fields{"2", "ok"}));
  EXPECT_EQ(rows[1].line, 3);
  EXPECT_EQ(rows[2].fields, (Fields{"3", "fine"}));
  EXPECT_EQ(rows[2].line, 4);
}

TEST(CsvReader, TextAfterClosingQuoteIsAProblem) {
  const auto rows = read_all("a,b\n\"x\"y,1\n2,3\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_NE(rows[0].problem.find("after the closing quote"), std::string::npos);
  EXPECT_TRUE(rows[1].problem.empty());
}

TEST(CsvReader, OversizedRecordIsRejectedWithoutLoadingIt) {
  CsvOptions small;
  small.max_record_bytes = 1000;
  std::string data = "a,b\n1,2\n3," + std::string(10 * 1024 * 1024, 'x') + "\n4,5\n";
  CsvReader reader(ByteSource::from_memory(data, "big.csv"), small);
  Record r;
  ASSERT_TRUE(reader.next(r));
  EXPECT_TRUE(r.problem.empty());
  ASSERT_TRUE(reader.next(r));
  EXPECT_NE(r.problem.find("longer than the limit"), std::string::npos);
  EXPECT_EQ(r.line, 3);
  EXPECT_LE(r.raw.size(), 4096u);
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(std::string(r.fields[0]), "4");
  EXPECT_EQ(r.line, 4);
  EXPECT_LT(reader.buffer_bytes(), 8u << 20);  // never held the 10 MB field
}

TEST(CsvReader, OversizedUnterminatedQuoteResumesOnTheNextLine) {
  CsvOptions small;
  small.max_record_bytes = 1000;
  std::string data = "a,b\n1,\"opens" + std::string(5000, 'y') + "\n2,ok\n" + std::string(3000, 'z') + ",w\n";
  const auto rows = read_all(data, small);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_NE(rows[0].problem.find("never closed"), std::string::npos);
  EXPECT_EQ(rows[1].fields, (Fields{"2", "ok"}));
  EXPECT_EQ(rows[1].line, 3);
  EXPECT_NE(rows[2].problem.find("longer than"), std::string::npos);
}

TEST(CsvReader, NulBytesAreDataNotTerminators) {
  const auto rows = read_all(std::string("a,b\nx\0y,2\n", 10));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields[0], std::string("x\0y", 3));
}

TEST(CsvReader, EmptyFileAndHeaderOnly) {
  CsvReader empty(ByteSource::from_memory("", "empty.csv"));
  Record r;
  EXPECT_TRUE(empty.columns().empty());
  EXPECT_FALSE(empty.next(r));
  CsvReader header_only(ByteSource::from_memory("a,b\n", "h.csv"));
  EXPECT_EQ(header_only.columns().size(), 2u);
  EXPECT_FALSE(header_only.next(r));
}

TEST(CsvReader, RecordsAcrossBufferBoundaries) {
  // Many records with quoted, multi-line fields so that some straddle the 1 MiB refill boundary.
  std::string data = "id,text\n";
  for (int i = 0; i < 60000; ++i) data += std::to_string(i) + ",\"line one " + std::to_string(i) + "\nline \"\"two\"\"\"\n";
  CsvReader reader(ByteSource::from_memory(data, "many.csv"));
  Record r;
  int n = 0;
  while (reader.next(r)) {
    ASSERT_TRUE(r.problem.empty()) << r.problem << " at " << r.line;
    ASSERT_EQ(std::string(r.fields[0]), std::to_string(n));
    ASSERT_EQ(std::string(r.fields[1]), "line one " + std::to_string(n) + "\nline \"two\"");
    ASSERT_EQ(r.line, 2 + 2 * n);
    ++n;
  }
  EXPECT_EQ(n, 60000);
}

TEST(CsvReader, MemoryDoesNotGrowWithTheFile) {
  std::string data = "a,b,c\n";
  for (int i = 0; i < 500000; ++i) data += "12345,some text here,3.25\n";
  CsvReader reader(ByteSource::from_memory(data, "long.csv"));
  Record r;
  size_t n = 0;
  while (reader.next(r)) ++n;
  EXPECT_EQ(n, 500000u);
  EXPECT_GT(data.size(), 10u << 20);
  EXPECT_LE(reader.buffer_bytes(), 2u << 20);
}

TEST(CsvReader, GzipIsReadDirectly) {
  test::TempDir dir;
  test::write_gzip(dir.file("x.csv.gz"), "a,b\n1,2\n3,4\n");
  CsvReader reader(dir.file("x.csv.gz"));
  Record r;
  int n = 0;
  while (reader.next(r)) ++n;
  EXPECT_EQ(n, 2);
}

TEST(CsvReader, TruncatedGzipIsAClearError) {
  test::TempDir dir;
  test::write_truncated_gzip(dir.file("cut.csv.gz"), 100000);
  try {
    CsvReader reader(dir.file("cut.csv.gz"));
    Record r;
    while (reader.next(r)) {
    }
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.csv.gz"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
  }
}

TEST(CsvReader, MissingFileIsAClearError) {
  try {
    CsvReader reader("/nonexistent/file.csv");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/file.csv"), std::string::npos);
  }
}

}  // namespace
}  // namespace persona::io

namespace persona::io {
namespace {

// Found by fuzzing: a lone CR after a closing quote ended the record, so two records shared a
// line number. A lone CR is data everywhere; only LF or CRLF ends a line.
TEST(CsvReader, LoneCarriageReturnIsDataNotALineEnd) {
  const auto rows = read_all("a,b\n\"x\"\r,1\ny,\"2\"\r\n3,\"4\"\r");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_NE(rows[0].problem.find("after the closing quote"), std::string::npos);
  EXPECT_EQ(rows[1].fields, (Fields{"y", "2"}));
  EXPECT_EQ(rows[1].line, 3);
  EXPECT_EQ(rows[2].fields, (Fields{"3", "4"}));
  EXPECT_EQ(rows[2].line, 4);
}

}  // namespace
}  // namespace persona::io

namespace persona::io {
namespace {

std::string gzip_bytes(const test::TempDir& dir, const std::string& name, const std::string& content) {
  test::write_gzip(dir.file(name), content);
  return test::read_file(dir.file(name));
}

int count_rows(const std::string& path) {
  CsvReader reader(path);
  Record r;
  int n = 0;
  while (reader.next(r)) ++n;
  return n;
}

TEST(GzipInput, ConcatenatedMembersAreReadInTurnAndTrailingBytesIgnored) {
  test::TempDir dir;
  const auto a = gzip_bytes(dir, "a.gz", "x,y\n1,2\n3,4\n");
  const auto b = gzip_bytes(dir, "b.gz", "5,6\n");
  test::write_file(dir.file("both.csv.gz"), a + b + std::string(512, '\0'));
  EXPECT_EQ(count_rows(dir.file("both.csv.gz")), 3);
}

TEST(GzipInput, CorruptDataIsAClearErrorNotGarbage) {
  test::TempDir dir;
  std::string data = "a,b\n";
  for (int i = 0; i < 50000; ++i) data += std::to_string(i * 2654435761u % 1000003) + ",v" + std::to_string(i) + "\n";
  auto bytes = gzip_bytes(dir, "ok.csv.gz", data);
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 64; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
  test::write_file(dir.file("bad.csv.gz"), bytes);
  try {
    count_rows(dir.file("bad.csv.gz"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.csv.gz"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("corrupt"), std::string::npos) << e.what();
  }
}

TEST(GzipInput, DetectedByContentNotByName) {
  test::TempDir dir;
  test::write_gzip(dir.file("looks_plain.csv"), "a,b\n1,2\n");
  test::write_file(dir.file("looks_gzip.csv.gz"), "a,b\n1,2\n3,4\n");
  EXPECT_EQ(count_rows(dir.file("looks_plain.csv")), 1);
  EXPECT_EQ(count_rows(dir.file("looks_gzip.csv.gz")), 2);
}

}  // namespace
}  // namespace persona::io
