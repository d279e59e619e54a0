// Checks on the real public data sets in ../shared/data. Each skips with a message when the
// data is absent (the data is never part of the repository).
#include <gtest/gtest.h>

#include <filesystem>

#include "persona/pipeline/config.h"
#include "persona/pipeline/run.h"
#include "support/test_support.h"

namespace persona::pipeline {
namespace {

std::string shared(const std::string& relative) { return std::string(PERSONA_SHARED_DATA) + "/" + relative; }

#define REQUIRE_SHARED(path)                                                               \
  if (!std::filesystem::exists(shared(path))) GTEST_SKIP() << "shared data absent: " << shared(path)

TEST(SharedData, OnlineRetailR1CountsMatchTheReference) {
  REQUIRE_SHARED("retail/online_retail.csv.gz");
  auto text = test::read_file(std::string(PERSONA_SOURCE_DIR) + "/bench/r1.toml");
  text.replace(text.find("@DATA@"), 6, shared("retail/online_retail.csv.gz"));
  const auto config = parse_config(text, "r1.toml", "/");
  const auto& source = config.sources.at(0);
  const auto report = clean_source(source, config.rules_for(source), "", nullptr, {.progress = false});
  // The figures of BENCHMARKS.md R1 (equal to pandas' on the same rules).
  EXPECT_EQ(report.summary.rows_read, 541909u);
  EXPECT_EQ(report.summary.removed_by("duplicate"), 5268u);
  EXPECT_EQ(report.summary.removed_by("missing_customer"), 135037u);
  EXPECT_EQ(report.summary.removed_by("cancellation"), 8872u);
  EXPECT_EQ(report.summary.removed_by("nonpositive_quantity"), 0u);
  EXPECT_EQ(report.summary.removed_by("nonpositive_price"), 40u);
  EXPECT_EQ(report.summary.removed_by("non_product"), 1542u);
  EXPECT_EQ(report.summary.rows_kept, 391150u);
}

TEST(SharedData, ChineseReviewTestSetReportsItsEmptyReview) {
  REQUIRE_SHARED("reviews_zh/online_shopping_test.csv");
  const auto source = preset_source("online_shopping_zh", shared("reviews_zh/online_shopping_test.csv"));
  const auto report = clean_source(source, source.rules, "", nullptr, {.progress = false});
  EXPECT_EQ(report.summary.rows_read, 12554u);
  EXPECT_EQ(report.summary.removed_by("missing_required"), 1u);  // the one empty review
  EXPECT_EQ(report.summary.rows_kept, 12553u);
}

TEST(SharedData, EveryLabelledTextSetReadsCleanly) {
  const std::vector<std::pair<const char*, const char*>> sets = {
      {"banking77", "intents_en/banking77_test.csv"},         {"bitext", "intents_en/bitext_test.csv"},
      {"waimai_zh", "reviews_zh/waimai_test.csv"},            {"sst2", "reviews_en/sst2_dev.tsv"},
      {"smp2019", "intents_zh/smp2019_test.jsonl"},
  };
  int read = 0;
  for (const auto& [preset, path] : sets) {
    if (!std::filesystem::exists(shared(path))) continue;
    const auto source = preset_source(preset, shared(path));
    const auto report = clean_source(source, source.rules, "", nullptr, {.progress = false});
    EXPECT_GT(report.summary.rows_read, 500u) << path;
    EXPECT_EQ(report.summary.rows_removed, 0u) << path;
    ++read;
  }
  if (read == 0) GTEST_SKIP() << "shared data absent";
}

TEST(Examples, EveryExampleConfigLoads) {
  const auto dir = std::string(PERSONA_SOURCE_DIR) + "/examples";
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".toml") continue;
    EXPECT_NO_THROW(load_config(entry.path().string())) << entry.path();
    ++n;
  }
  EXPECT_GE(n, 3);
}

}  // namespace
}  // namespace persona::pipeline
