// The command line against hostile or unusual input (issue 17): standard input, pipes, process
// substitution, FIFOs and devices; files in other encodings; concurrent ingests of one store;
// erasure that must reach every reject log and say what it could not do; data echoed to a
// terminal. Each test failed before its fix.
#include <fcntl.h>
#include <pty.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <filesystem>
#include <thread>

#include "persona/pipeline/run.h"
#include "support/test_support.h"

namespace persona {
namespace {

namespace fs = std::filesystem;
using test::json_of;
using test::run_persona;
using test::run_shell;

// Five invoice lines of the online_retail preset; one has no customer.
const char* kRetail =
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
    "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom\n"
    "536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,,United Kingdom\n"
    "536367,84879,ASSORTED COLOUR BIRD,32,12/1/2010 8:34,1.69,13047,United Kingdom\n"
    "536367,22745,POPPY'S PLAYHOUSE,6,12/1/2010 8:34,2.10,13047,United Kingdom\n";

TEST(HostileCli, StandardInputPipesAndProcessSubstitutionAreReadOnce) {
  test::TempDir dir;
  test::write_file(dir.file("retail.csv"), kRetail);
  test::write_gzip(dir.file("retail.csv.gz"), kRetail);
  const std::string cd = "cd " + dir.path() + " && ";
  // A pipe into "-": it used to be "the file is empty".
  auto r = run_shell(cd + "cat retail.csv | \"$PERSONA\" clean --preset online_retail - --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["rows_read"], 5);
  EXPECT_EQ(j["rows_kept"], 4);
  // gzip through a process substitution: it used to be "corrupt" (the magic bytes were read, then lost).
  r = run_shell(cd + "\"$PERSONA\" clean --preset online_retail <(cat retail.csv.gz) --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["rows_kept"], 4);
  // An ingest from a pipe, twice: the second is recognised by the content hash of what came in.
  r = run_shell(cd + "gzip -dc retail.csv.gz | \"$PERSONA\" ingest --preset online_retail - --store s.db --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["sources"][0]["status"], "ingested");
  r = run_shell(cd + "cat retail.csv | \"$PERSONA\" ingest --preset online_retail - --store s.db --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["sources"][0]["status"], "already ingested");
  // The reject log names the input as it was given.
  EXPECT_NE(test::read_file(dir.file("s.db.rejects.jsonl")).find("\"file\":\"-\""), std::string::npos);
}

TEST(HostileCli, AFifoIsReadAndDevicesAreRefusedWithoutHanging) {
  test::TempDir dir;
  const std::string fifo = dir.file("retail.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] { test::write_file(fifo, kRetail); });  // waits for the reader, as a FIFO does
  auto r = run_persona({"clean", "--preset", "online_retail", fifo, "--json"}, 30);
  writer.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_of(r)["rows_read"], 5);
  for (const char* device : {"/dev/zero", "/dev/urandom"}) {
    r = run_persona({"clean", "--preset", "online_retail", device}, 20);
    EXPECT_FALSE(r.timed_out) << device;
    EXPECT_EQ(r.exit_code, 1) << device;
    EXPECT_NE(r.err.find("is a device"), std::string::npos) << r.err;
  }
  r = run_persona({"ingest", "--preset", "online_retail", "/dev/zero", "--store", dir.file("s.db")}, 20);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.err.find("is a device"), std::string::npos) << r.err;
}

TEST(HostileCli, FilesInOtherEncodingsAreReadOrNamed) {
  test::TempDir dir;
  // The sample's header and rows in GBK, as a Chinese spreadsheet saves them.
  const std::string gbk = "\xD3\xC3\xBB\xA7,\xC9\xCC\xC6\xB7,\xC0\xE0\xD0\xCD,\xCA\xB1\xBC\xE4\n"  // 用户,商品,类型,时间
                          "\xD5\xC5\xC8\xFD,\xB6\xFA\xBB\xFA,view,2024-01-01\n"                    // 张三,耳机,...
                          "\xC0\xEE\xCB\xC4,\xB6\xFA\xBB\xFA,purchase,2024-01-02\n";               // 李四
  test::write_file(dir.file("events.csv"), gbk);
  const std::string mapping = "[sources.event]\nuser = \"用户\"\nitem = \"商品\"\ntype = \"类型\"\ntimestamp = \"时间\"\n";
  test::write_file(dir.file("plain.toml"), "[[sources]]\npath = \"events.csv\"\n" + mapping);
  auto r = run_persona({"clean", "--config", dir.file("plain.toml")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not UTF-8"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("encoding = \""), std::string::npos) << r.err;
  test::write_file(dir.file("gbk.toml"), "[[sources]]\npath = \"events.csv\"\nencoding = \"gb18030\"\n" + mapping);
  r = run_persona({"ingest", "--config", dir.file("gbk.toml"), "--store", dir.file("s.db"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_of(r)["sources"][0]["rows_kept"], 2);
  const auto stats = json_of(run_persona({"stats", "--store", dir.file("s.db"), "--json"}));
  EXPECT_NE(stats.dump().find("耳机"), std::string::npos) << stats.dump();
  // UTF-16 without a byte-order mark: the encoding to set is named (it used to be "no such column").
  std::string utf16;
  for (char c : std::string("user,item,type,ts\nu1,i1,view,2024-01-01\n")) utf16 += std::string(1, c) + '\0';
  test::write_file(dir.file("events.csv"), utf16);
  r = run_persona({"clean", "--config", dir.file("plain.toml")});
  EXPECT_NE(r.err.find("utf-16le"), std::string::npos) << r.err;
}

TEST(HostileCli, OneIngestAtATimePerStore) {
  test::TempDir dir;
  test::write_file(dir.file("retail.csv"), kRetail);
  const std::string store = dir.file("s.db");
  {
    const pipeline::IngestLock held(store);  // as another ingest would hold it
    const auto r = run_persona({"ingest", "--preset", "online_retail", dir.file("retail.csv"), "--store", store});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("another ingest is writing to this store (pid " + std::to_string(getpid()) + ")"), std::string::npos)
        << r.err;
  }
  EXPECT_EQ(run_persona({"ingest", "--preset", "online_retail", dir.file("retail.csv"), "--store", store, "-q"}).exit_code, 0);
  // Two at once on a new store: one wins, the other is told; never a broken store.
  test::write_file(dir.file("more.csv"), std::string(kRetail) + "536368,22960,JAM MAKING SET,6,12/1/2010 8:34,4.25,13047,UK\n");
  const std::string fresh = dir.file("fresh.db");
  std::vector<test::RunResult> results(2);
  std::thread a([&] { results[0] = run_persona({"ingest", "--preset", "online_retail", dir.file("retail.csv"), "--store", fresh}); });
  std::thread b([&] { results[1] = run_persona({"ingest", "--preset", "online_retail", dir.file("more.csv"), "--store", fresh}); });
  a.join();
  b.join();
  for (const auto& r : results)
    if (r.exit_code != 0) {
      EXPECT_NE(r.err.find("another ingest is writing"), std::string::npos) << r.err;
    }
  EXPECT_EQ(run_persona({"ingest", "--preset", "online_retail", dir.file("retail.csv"), dir.file("more.csv"), "--store", fresh, "-q"})
                .exit_code, 0);
  const auto stats = json_of(run_persona({"stats", "--store", fresh, "--json"}));
  EXPECT_EQ(stats["items"], 5);  // the line without a customer is removed, its item with it
}

// The shop, ingested with its reject log and a second one written by another config, both naming
// users; an erasure without --reject-log reaches both, because the store registered them.
TEST(HostileCli, ErasureReachesEveryRejectLogAndSaysWhatItCouldNotDo) {
  test::TempDir dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  const std::string config = dir.file("shop.toml"), store = dir.file("persona.db");
  ASSERT_EQ(run_persona({"ingest", "--config", config, "--rejects", dir.file("first-rejects.jsonl"), "-q"}).exit_code, 0);
  const std::string first = test::read_file(dir.file("first-rejects.jsonl"));
  const auto at = first.find("U000");
  ASSERT_NE(at, std::string::npos);
  const std::string user = first.substr(at, 7);
  test::write_file(dir.file("more.csv"), "user,item,type,ts\n" + user + ",P9,teleport,2025-01-01\nU000002,P9,teleport,2025-01-01\n");
  test::write_file(dir.file("more.toml"), "[store]\npath = \"persona.db\"\n[ingest]\nreject_log = \"second-rejects.jsonl\"\n"
                                           "[[sources]]\npath = \"more.csv\"\n[sources.event]\nuser = \"user\"\nitem = \"item\"\n"
                                           "type = \"type\"\ntimestamp = \"ts\"\n");
  // Every row rejected: the ingest fails (exit 1), and its reject log is written all the same.
  ASSERT_EQ(run_persona({"ingest", "--config", dir.file("more.toml"), "-q"}).exit_code, 1);
  ASSERT_NE(test::read_file(dir.file("second-rejects.jsonl")).find(user), std::string::npos);
  // An old store may hold a time at the end of int64 (now refused at ingest): retraining used to
  // overflow on it, fail, keep the old model and write no receipt.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(store.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "INSERT INTO events(user, item, type, quantity, ts, ingest, line) "
                               "SELECT user, item, 0, 1, 9223372036854775807, ingest, 999999 FROM events WHERE user = 5 LIMIT 1",
                           nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  const std::string models = dir.file("models");
  ASSERT_EQ(run_persona({"train", "recommend", "--config", config, "--models", models, "--method", "item-knn", "-q"}).exit_code, 0);
  const std::vector<std::string> env = {"PERSONA_AUDIT_LOG=" + dir.file("audit.jsonl")};
  ASSERT_EQ(run_persona({"keys", "init", "--key-file", dir.file("k.key"), "-q"}, 60, env).exit_code, 0);
  auto r = run_persona({"erase", user, "--config", config, "--models", models, "--key-file", dir.file("k.key"), "--json"}, 120, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto report = json_of(r);
  EXPECT_EQ(report["complete"], true) << report.dump();
  EXPECT_FALSE(report["receipt"].get<std::string>().empty());
  for (const char* log : {"first-rejects.jsonl", "second-rejects.jsonl"})
    EXPECT_EQ(test::read_file(dir.file(log)).find(user), std::string::npos) << log;
  EXPECT_FALSE(report["models_retrained"].empty() && report["models_removed"].empty()) << report.dump();

  // A step that cannot be done is named, the others are done, and the command fails.
  const std::string other = "U000002";
  fs::create_directories(dir.file("second-rejects.jsonl.erase-tmp"));  // the rewrite cannot write its temporary
  r = run_persona({"erase", other, "--config", config, "--models", models, "--key-file", dir.file("k.key"), "--json"}, 120, env);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["complete"], false);
  ASSERT_EQ(report["failures"].size(), 1u) << report.dump();
  EXPECT_EQ(report["failures"][0]["step"], "file");
  EXPECT_NE(report["failures"][0]["target"].get<std::string>().find("second-rejects.jsonl"), std::string::npos);
  EXPECT_NE(r.err.find("did not finish"), std::string::npos) << r.err;
  EXPECT_EQ(report["deleted"]["events"].get<int>() > 0, true);  // the store's part was done
  EXPECT_FALSE(report["receipt"].get<std::string>().empty());    // and recorded
}

// What `persona chat` shows on a terminal: escape sequences from a message are shown, not obeyed.
TEST(HostileCli, ControlCharactersFromDataNeverReachTheTerminal) {
  test::TempDir dir;
  test::write_file(dir.file("chat.txt"), "\x1b]0;pwned\x07\x1b[2J hello\nI want to talk to a human \x1b[31mnow\x00\n");
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int in = open(dir.file("chat.txt").c_str(), O_RDONLY);
    dup2(in, 0);
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    execl(PERSONA_BINARY, PERSONA_BINARY, "chat", "--models", dir.file("none").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string shown;
  char buffer[4096];
  for (ssize_t n; (n = read(master, buffer, sizeof buffer)) > 0;) shown.append(buffer, static_cast<size_t>(n));
  close(master);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << shown;
  EXPECT_FALSE(shown.empty());
  EXPECT_EQ(shown.find('\x1b'), std::string::npos) << shown;
  EXPECT_EQ(shown.find('\x07'), std::string::npos) << shown;
}

}  // namespace
}  // namespace persona
