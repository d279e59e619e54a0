// kill -9 at arbitrary moments of a real `persona ingest`, then run it again: the store is
// consistent after every kill and ends exactly as one uninterrupted ingest leaves it.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

#include "support/test_support.h"

namespace persona {
namespace {

using test::run_persona;

nlohmann::json stats_of(const std::string& config) {
  auto r = run_persona({"stats", "--config", config, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

TEST(KillNine, IngestSurvivesKillsAtAnyPoint) {
  test::TempDir reference, dir;
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--seed", "5", "--out", reference.path()}).exit_code, 0);
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--seed", "5", "--out", dir.path()}).exit_code, 0);
  // Small batches so that a kill lands between and inside many transactions.
  for (auto* d : {&reference, &dir}) {
    auto text = test::read_file(d->file("shop.toml"));
    text.replace(text.find("batch_rows = 50000"), 18, "batch_rows = 300");
    test::write_file(d->file("shop.toml"), text);
  }
  ASSERT_EQ(run_persona({"ingest", "--config", reference.file("shop.toml")}).exit_code, 0);
  const auto expected = stats_of(reference.file("shop.toml"));

  const std::string binary = PERSONA_BINARY;
  const std::string config = dir.file("shop.toml");
  for (int delay_ms : {5, 20, 40, 80, 120, 200}) {
    const pid_t pid = fork();
    if (pid == 0) {
      freopen("/dev/null", "w", stdout);
      freopen("/dev/null", "w", stderr);
      execl(binary.c_str(), binary.c_str(), "ingest", "--config", config.c_str(), "--quiet", nullptr);
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    // Consistent after every kill: the store opens and answers (a very early kill may come
    // before the store file was created at all).
    if (!std::filesystem::exists(dir.file("persona.db"))) continue;
    const auto partial = stats_of(config);
    EXPECT_LE(partial["events"].get<int>(), expected["events"].get<int>());
  }
  auto final_run = run_persona({"ingest", "--config", config, "--json"});
  ASSERT_EQ(final_run.exit_code, 0) << final_run.err;
  const auto got = stats_of(config);
  for (const char* key : {"users", "items", "events", "texts", "sessions", "rejected_rows"})
    EXPECT_EQ(got[key], expected[key]) << key;
  EXPECT_EQ(got["event_types"], expected["event_types"]);
  EXPECT_EQ(got["missing"], expected["missing"]);
  EXPECT_NEAR(got["revenue"].get<double>(), expected["revenue"].get<double>(), 1e-6);
}

}  // namespace
}  // namespace persona
