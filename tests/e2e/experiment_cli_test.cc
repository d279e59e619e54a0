// persona experiment from the command line: a recommender experiment and an assistant one side
// by side, a report through differential privacy charged to a budget, clear refusals.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace persona {
namespace {

using test::run_persona;

TEST(ExperimentCli, CreateReportStopAndPromoteFromTheCommandLine) {
  test::TempDir dir;
  const std::string config = dir.file("shop.toml"), models = dir.file("models");
  ASSERT_EQ(run_persona({"generate", "--size", "small", "--out", dir.path(), "-q"}).exit_code, 0);
  ASSERT_EQ(run_persona({"ingest", "--config", config, "-q"}).exit_code, 0);
  ASSERT_EQ(run_persona({"train", "recommend", "--config", config, "--models", models, "--method", "item-knn", "-q"}).exit_code, 0);

  // A model that is not there, and a variant list of one: refused, with the reason.
  auto r = run_persona({"experiment", "create", "x", "--variants", "a=current,b=" + dir.file("none.model"), "--config", config,
                        "--models", models});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no model file"), std::string::npos) << r.err;
  r = run_persona({"experiment", "create", "x", "--variants", "a=current", "--config", config, "--models", models});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("at least two variants"), std::string::npos) << r.err;

  ASSERT_EQ(run_persona({"experiment", "create", "lists", "--variants", "a=current,b=current", "--split", "90/10", "--config",
                         config, "--models", models, "-q"})
                .exit_code,
            0);
  // The assistant's settings as variants: a config file's [assistant] table.
  test::write_file(dir.file("impatient.toml"), "[assistant]\nmax_failures = 0\n");
  test::write_file(dir.file("broken.toml"), "[assistant]\nmax_failures = \"lots\"\n");
  r = run_persona({"experiment", "create", "bad", "--surface", "assistant", "--variants", "a=current,b=" + dir.file("broken.toml"),
                   "--config", config, "--models", models});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("max_failures"), std::string::npos) << r.err;
  ASSERT_EQ(run_persona({"experiment", "create", "patience", "--surface", "assistant", "--variants",
                         "a=current,b=" + dir.file("impatient.toml"), "--config", config, "--models", models, "-q"})
                .exit_code,
            0);
  const auto list = nlohmann::json::parse(run_persona({"experiment", "list", "--config", config, "--json"}).out);
  ASSERT_EQ(list["experiments"].size(), 2u);
  EXPECT_EQ(list["experiments"][0]["variants"][0]["share"], 0.9);
  EXPECT_EQ(list["experiments"][1]["surface"], "assistant");
  EXPECT_EQ(list["experiments"][1]["variants"][1]["settings"]["max_failures"], 0);
  EXPECT_FALSE(list.dump().find("salt") != std::string::npos);

  // Through DP: needs an analyst, is charged, and refused once the budget (1) is spent.
  r = run_persona({"experiment", "report", "lists", "--config", config, "--dp-epsilon", "0.7"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--analyst"), std::string::npos) << r.err;
  r = run_persona({"experiment", "report", "lists", "--config", config, "--dp-epsilon", "0.7", "--analyst", "ana", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["dp"]["epsilon"], 0.7);
  r = run_persona({"experiment", "report", "lists", "--config", config, "--dp-epsilon", "0.7", "--analyst", "ana"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("budget"), std::string::npos) << r.err;
  r = run_persona({"experiment", "report", "lists", "--config", config});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("No feedback yet"), std::string::npos) << r.out;

  EXPECT_EQ(run_persona({"experiment", "stop", "lists", "--config", config, "-q"}).exit_code, 0);
  r = run_persona({"experiment", "stop", "lists", "--config", config});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("stopped already"), std::string::npos) << r.err;
  r = run_persona({"experiment", "promote", "patience", "b", "--config", config, "--models", models});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("answer chats with its settings"), std::string::npos) << r.out;
  r = run_persona({"experiment", "report", "nothing", "--config", config});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no experiment \"nothing\""), std::string::npos) << r.err;
}

}  // namespace
}  // namespace persona
