// Every built-in preset on a small fixture the test writes, ingested into a real store.
#include <gtest/gtest.h>

#include "persona/pipeline/config.h"
#include "persona/pipeline/run.h"
#include "support/test_support.h"

namespace persona::pipeline {
namespace {

struct Ingested {
  SourceReport report;
  store::DatasetStats stats;
};

Ingested ingest_with_preset(const std::string& preset, const std::string& file, const std::string& content,
                            bool gzip = false) {
  test::TempDir dir;
  const auto path = dir.file(file);
  if (gzip) test::write_gzip(path, content);
  else test::write_file(path, content);
  auto store = store::open_sqlite_store(dir.file("p.db"));
  const auto source = preset_source(preset, path);
  Ingested out;
  out.report = ingest_source(*store, source, source.rules, 1000, nullptr, {.progress = false});
  out.stats = store->stats();
  return out;
}

int64_t count_of(const std::vector<store::CountRow>& rows, const std::string& name) {
  for (const auto& r : rows)
    if (r.name == name) return r.count;
  return 0;
}

TEST(Presets, OnlineRetailPurchasesReturnsAndTitles) {
  const auto r = ingest_with_preset("online_retail", "online_retail.csv.gz",
                                    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
                                    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n"
                                    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n"
                                    "C536379,22556,PLASTERS IN TIN CIRCUS PARADE ,-12,12/1/2010 9:41,1.65,14527,United Kingdom\n"
                                    "536380,POST,POSTAGE,1,2010-12-01 09:45:00,18.0,12583,France\n"
                                    "536381,22139,RETROSPOT TEA SET,2,2010-12-01 09:50:00,4.95,,United Kingdom\n"
                                    "536382,21166,COOK WITH WINE METAL SIGN,0,2010-12-01 09:51:00,0,13047,United Kingdom\n",
                                    true);
  EXPECT_EQ(r.report.summary.rows_read, 6u);
  EXPECT_EQ(r.report.summary.removed_by("exact_duplicate"), 1u);
  EXPECT_EQ(r.report.summary.removed_by("missing_customer"), 1u);
  EXPECT_EQ(r.report.summary.removed_by("nonpositive_price"), 1u);
  EXPECT_EQ(r.report.summary.removed_by("non_product"), 1u);
  EXPECT_EQ(r.stats.events, 2);
  EXPECT_EQ(count_of(r.stats.event_types, "purchase"), 1);
  EXPECT_EQ(count_of(r.stats.event_types, "return"), 1);
  ASSERT_FALSE(r.stats.top_items.empty());
  EXPECT_EQ(r.stats.top_items[0].detail, "WHITE HANGING HEART T-LIGHT HOLDER");
  EXPECT_DOUBLE_EQ(r.stats.revenue, 6 * 2.55 - 12 * 1.65);
}

TEST(Presets, MovieLens) {
  auto a = ingest_with_preset("movielens_100k", "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n");
  EXPECT_EQ(a.stats.events, 2);
  EXPECT_EQ(count_of(a.stats.event_types, "rate"), 2);
  auto b = ingest_with_preset("movielens_1m", "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n");
  EXPECT_EQ(b.stats.events, 2);
  EXPECT_EQ(*b.stats.first_event, 978300760);
  auto c = ingest_with_preset("movielens", "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n");
  EXPECT_EQ(c.stats.events, 2);
  EXPECT_EQ(c.stats.users, 1);
}

TEST(Presets, TaobaoBehaviours) {
  const auto r = ingest_with_preset("taobao", "UserBehavior.csv",
                                    "1,2268318,2520377,pv,1511544070\n1,2333346,2520771,cart,1511561733\n"
                                    "1,2576651,149192,buy,1511572885\n2,2576651,149192,fav,1511572886\n"
                                    "2,2576651,149192,dance,1511572887\n");
  EXPECT_EQ(r.stats.events, 4);
  EXPECT_EQ(r.report.summary.removed_by("type_error"), 1u);
  EXPECT_EQ(count_of(r.stats.event_types, "favourite"), 1);
  EXPECT_EQ(count_of(r.stats.top_categories, "149192"), 2);
}

TEST(Presets, LabelledTextSets) {
  auto banking = ingest_with_preset("banking77", "banking77_train.csv",
                                    "text,category\nI am still waiting on my card?,card_arrival\n\"What can I do, it's late?\",card_arrival\n");
  EXPECT_EQ(banking.stats.texts, 2);
  EXPECT_EQ(count_of(banking.stats.text_languages, "en"), 2);
  auto bitext = ingest_with_preset("bitext", "bitext_train.csv",
                                   "flags,utterance,category,intent\nBILC,\"I don't have an online account, help\",ACCOUNT,create_account\n");
  EXPECT_EQ(bitext.stats.texts, 1);
  // The Chinese review set has one empty review: reported, not a crash.
  auto zh = ingest_with_preset("online_shopping_zh", "online_shopping_train.csv",
                               "cat,label,review\n书籍,1,\xEF\xBB\xBF做父母一定要有刘墉这样的心态\n平板,0,\n水果,1,很新鲜\n");
  EXPECT_EQ(zh.stats.texts, 2);
  EXPECT_EQ(zh.report.summary.removed_by("missing_required"), 1u);
  EXPECT_EQ(count_of(zh.stats.text_languages, "zh"), 2);
  auto waimai = ingest_with_preset("waimai_zh", "waimai_train.csv", "label,review\n1,很快，好吃，味道足，量大\n0,送餐太慢\n");
  EXPECT_EQ(waimai.stats.texts, 2);
  auto sst = ingest_with_preset("sst2", "sst2_train.tsv", "label\tsentence\n0\thide new secretions from the parental units \n1\ta \"gorgeous\" film\n");
  EXPECT_EQ(sst.stats.texts, 2);
  auto smp = ingest_with_preset("smp2019", "smp2019_train.jsonl",
                                "{\"text\": \"请帮我打开uc\", \"domain\": \"app\", \"intent\": \"LAUNCH\", \"slots\": {\"name\": \"uc\"}}\n"
                                "{\"text\": \"打开汽车之家\", \"domain\": \"app\", \"intent\": \"LAUNCH\", \"slots\": {}}\n");
  EXPECT_EQ(smp.stats.texts, 2);
  EXPECT_EQ(count_of(smp.stats.text_kinds, "query"), 2);
}

TEST(Presets, EveryPresetIsListedAndLoads) {
  EXPECT_GE(presets().size(), 10u);
  for (const auto& p : presets()) EXPECT_NO_THROW(preset_source(p.name, "/tmp/x")) << p.name;
}

}  // namespace
}  // namespace persona::pipeline
