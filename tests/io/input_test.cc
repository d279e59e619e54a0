// Inputs that are not plain files: standard input, pipes, FIFOs, process substitutions (read once
// through a copy), devices and directories (refused); and text in other encodings than UTF-8.
#include "persona/io/input.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "persona/core/error.h"
#include "persona/io/byte_source.h"
#include "persona/io/csv_reader.h"
#include "persona/io/input.h"
#include "support/test_support.h"

namespace persona::io {
namespace {

std::string read_all(ByteSource& s) {
  std::string out;
  char buffer[7];  // small reads: characters and lines cut across them
  for (size_t n; (n = s.read(buffer, sizeof buffer)) > 0;) out.append(buffer, n);
  return out;
}

std::string expect_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(Input, APipeIsReadOnceAndEveryOpenSeesTheSameBytes) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string data = "user,item\nu1,i1\nu2,i2\n";
  ASSERT_EQ(write(fds[1], data.data(), data.size()), static_cast<ssize_t>(data.size()));
  close(fds[1]);
  const std::string name = "/dev/fd/" + std::to_string(fds[0]);  // as bash's <(...) names it
  const std::string copy = readable_path(name);
  EXPECT_NE(copy, name);
  EXPECT_EQ(readable_path(name), copy);  // the same copy, not a second (empty) read of the pipe
  auto first = ByteSource::open_file(name);
  auto second = ByteSource::open_file(name);
  EXPECT_EQ(read_all(*first), data);
  EXPECT_EQ(read_all(*second), data);
  test::TempDir dir;
  test::write_file(dir.file("same.csv"), data);
  EXPECT_EQ(input_content_hash(name), input_content_hash(dir.file("same.csv")));
  close(fds[0]);
}

TEST(Input, AFifoIsReadWhenItsWriterComes) {
  test::TempDir dir;
  const std::string fifo = dir.file("events.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] {
    const int fd = ::open(fifo.c_str(), O_WRONLY);
    const std::string data = "a,b\n1,2\n";
    EXPECT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    close(fd);
  });
  CsvReader reader(fifo);
  writer.join();
  EXPECT_EQ(reader.columns(), (std::vector<std::string>{"a", "b"}));
  Record r;
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(r.fields[1], "2");
}

TEST(Input, DevicesAndDirectoriesAreRefusedAtOnce) {
  for (const char* device : {"/dev/zero", "/dev/urandom", "/dev/null"})
    EXPECT_NE(expect_error([&] { readable_path(device); }).find("is a device"), std::string::npos) << device;
  test::TempDir dir;
  EXPECT_NE(expect_error([&] { readable_path(dir.path()); }).find("directory"), std::string::npos);
  EXPECT_NE(expect_error([&] { readable_path(dir.file("missing.csv")); }).find("No such file"), std::string::npos);
}

TEST(Input, ALongPipeStopsAtTheLimit) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const auto old_handler = signal(SIGPIPE, SIG_IGN);  // the writer's last write fails, it does not kill us
  setenv("PERSONA_MAX_PIPE_BYTES", "1000", 1);
  std::thread writer([&] {
    const std::string chunk(4096, 'x');
    while (write(fds[1], chunk.data(), chunk.size()) > 0) {
    }
  });
  const std::string what = expect_error([&] { readable_path("/dev/fd/" + std::to_string(fds[0])); });
  EXPECT_NE(what.find("longer than 1000 bytes"), std::string::npos) << what;
  unsetenv("PERSONA_MAX_PIPE_BYTES");
  close(fds[0]);  // the writer's next write fails: it ends
  writer.join();
  close(fds[1]);
  signal(SIGPIPE, old_handler);
}

// ---- encodings --------------------------------------------------------------------------------

std::string utf16le(const std::string& ascii, bool mark) {
  std::string out = mark ? std::string("\xFF\xFE") : std::string();
  for (char c : ascii) {
    out += c;
    out += '\0';
  }
  return out;
}

TEST(Encoding, Utf16WithAMarkIsConverted) {
  test::TempDir dir;
  test::write_file(dir.file("u16.csv"), utf16le("user,item\nu1,i1\n", true));
  CsvReader reader(dir.file("u16.csv"));
  EXPECT_EQ(reader.columns(), (std::vector<std::string>{"user", "item"}));
  Record r;
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(r.fields[0], "u1");
}

TEST(Encoding, Utf16WithoutAMarkNamesTheEncodingToSet) {
  test::TempDir dir;
  test::write_file(dir.file("u16.csv"), utf16le("user,item\nu1,i1\nu2,i2\n", false));
  const auto what = expect_error([&] { CsvReader reader(dir.file("u16.csv")); });
  EXPECT_NE(what.find("UTF-16") == std::string::npos ? what.find("utf-16le") : 0, std::string::npos) << what;
  EXPECT_NE(what.find("encoding = \"utf-16le\""), std::string::npos) << what;
  CsvReader reader(ByteSource::open_file(dir.file("u16.csv"), "utf-16le"));
  EXPECT_EQ(reader.columns(), (std::vector<std::string>{"user", "item"}));
}

// "用户,商品,时间" and a row in GBK, as Chinese spreadsheets save CSV.
const std::string kGbk = "\xD3\xC3\xBB\xA7,\xC9\xCC\xC6\xB7,\xCA\xB1\xBC\xE4\n\xD5\xC5\xC8\xFD,\xB6\xFA\xBB\xFA,2024-01-01\n";

TEST(Encoding, AGbkFileIsRecognisedAndReadWithItsEncoding) {
  test::TempDir dir;
  test::write_file(dir.file("gbk.csv"), kGbk);
  const auto what = expect_error([&] { CsvReader reader(dir.file("gbk.csv")); });
  EXPECT_NE(what.find("not UTF-8"), std::string::npos) << what;
  EXPECT_NE(what.find("encoding = \""), std::string::npos) << what;
  EXPECT_NE(what.find("gb18030"), std::string::npos) << what;
  CsvReader reader(ByteSource::open_file(dir.file("gbk.csv"), "gb18030"));
  EXPECT_EQ(reader.columns(), (std::vector<std::string>{"用户", "商品", "时间"}));
  Record r;
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(r.fields[0], "张三");
  EXPECT_EQ(r.fields[1], "耳机");
}

// The CSV reader goes back in its stream after an unclosed quote: through a conversion too.
TEST(Encoding, ConvertedStreamsCanBeReadAgainFromAnOffset) {
  test::TempDir dir;
  test::write_file(dir.file("gbk.csv"), kGbk + "\"\xD5\xC5,x,y\n\xC0\xEE\xCB\xC4,\xB6\xFA\xBB\xFA,2024-01-02\n");
  CsvReader reader(ByteSource::open_file(dir.file("gbk.csv"), "gbk"));
  Record r;
  ASSERT_TRUE(reader.next(r));
  ASSERT_TRUE(reader.next(r));
  EXPECT_FALSE(r.problem.empty());  // the unclosed quote
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(r.fields[0], "李四");
}

TEST(Encoding, OneBadByteInAUtf8FileIsLeftToTheRowChecks) {
  test::TempDir dir;
  test::write_file(dir.file("u8.csv"), "user,item\nu\xFF,i1\n张三,i2\n");
  CsvReader reader(dir.file("u8.csv"));
  EXPECT_EQ(reader.columns().size(), 2u);
  EXPECT_THROW(ByteSource::open_file(dir.file("u8.csv"), "no-such-encoding"), Error);
}

}  // namespace
}  // namespace persona::io
