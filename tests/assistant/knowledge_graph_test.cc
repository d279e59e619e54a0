// The knowledge graph: building it from a triples file, the catalogue and CrossWOZ-shaped
// databases; answering attribute, relation and filtered questions in Chinese and English;
// references to the conversation's recent entities; the store round trip.
#include <gtest/gtest.h>

#include <algorithm>

#include "persona/assistant/graph_answerer.h"
#include "persona/assistant/knowledge_graph.h"
#include "persona/core/error.h"
#include "support/test_support.h"

namespace persona::assistant {
namespace {

// A small CrossWOZ-shaped world: two attractions, two hotels, one restaurant, with nearby lists.
void write_crosswoz(const test::TempDir& dir) {
  test::write_file(dir.file("crosswoz_attraction_db.json"), R"json([
    ["故宫", {"领域": "景点", "名称": "故宫", "地址": "北京市东城区景山前街4号", "门票": 60, "评分": 4.7,
             "周边酒店": ["北京贵都大酒店", "如家酒店(地铁站店)"], "周边餐馆": ["四季民福"], "周边景点": ["景山公园"]}],
    ["景山公园", {"领域": "景点", "名称": "景山公园", "地址": "西城区景山西街44号", "门票": 2, "评分": 4.6,
                "周边酒店": [], "周边餐馆": [], "周边景点": ["故宫"]}]])json");
  test::write_file(dir.file("crosswoz_hotel_db.json"), R"json([
    ["北京贵都大酒店", {"领域": "酒店", "名称": "北京贵都大酒店", "电话": "010-51979888", "价格": 1354, "评分": 4.7,
                   "酒店设施": ["wifi", "健身房"], "周边景点": ["故宫"], "周边餐馆": [], "周边酒店": []}],
    ["如家酒店(地铁站店)", {"领域": "酒店", "名称": "如家酒店(地铁站店)", "地铁": "东四地铁站", "价格": 300, "评分": 4.2,
                      "周边景点": ["故宫"], "周边餐馆": [], "周边酒店": []}]])json");
  test::write_file(dir.file("crosswoz_restaurant_db.json"), R"json([
    ["四季民福", {"领域": "餐馆", "名称": "四季民福", "人均消费": 150, "推荐菜": ["烤鸭", "炸酱面"], "评分": 4.8,
                "周边景点": ["故宫"], "周边餐馆": [], "周边酒店": []}]])json");
}

std::vector<std::string> texts(const std::vector<GraphValue>& v) {
  std::vector<std::string> out;
  for (const auto& x : v) out.push_back(x.text);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(PhraseMatcher, FindsEveryPhraseInOnePass) {
  PhraseMatcher m;
  m.add("he", 1), m.add("she", 2), m.add("his", 3), m.add("hers", 4), m.add("故宫", 5);
  m.build();
  const auto found = m.find_all("ushers 去故宫");
  std::vector<int32_t> values;
  for (const auto& [b, e, v] : found) values.push_back(v);
  std::sort(values.begin(), values.end());
  EXPECT_EQ(values, (std::vector<int32_t>{1, 2, 4, 5}));  // she, he, hers overlap; 故宫 after
  for (const auto& [b, e, v] : found)
    if (v == 4) {
      EXPECT_EQ(std::string("ushers 去故宫").substr(b, e - b), "hers");
    }
  EXPECT_TRUE(m.find_all("").empty());
}

TEST(KnowledgeGraph, CrossWozAttributesNearbyAndLookups) {
  test::TempDir dir;
  write_crosswoz(dir);
  KnowledgeGraph g;
  EXPECT_EQ(add_crosswoz(g, dir.path()), 5u);
  const GraphAnswerer a(g);
  auto ask = [&](const std::string& q, const std::vector<int64_t>& recent = {}) { return a.answer(q, recent); };

  auto r = ask("故宫的门票多少钱？");  // "多少钱" means an attraction's 门票
  ASSERT_EQ(r.kind, GraphAnswer::Kind::Attribute) << r.text;
  EXPECT_EQ(r.relation, "门票");
  EXPECT_EQ(texts(r.values), std::vector<std::string>{"60"});
  EXPECT_NE(r.text.find("60"), std::string::npos);
  r = ask("北京贵都大酒店多少钱一晚");  // and a hotel's 价格
  EXPECT_EQ(r.relation, "价格");
  EXPECT_EQ(texts(r.values), std::vector<std::string>{"1354"});
  r = ask("故宫的地址和评分是什么");  // two attributes at once
  ASSERT_EQ(r.facts.size(), 2u);
  EXPECT_EQ(r.facts[0].relation, "地址");
  EXPECT_EQ(r.facts[1].relation, "评分");
  r = ask("故宫附近有什么酒店");
  EXPECT_EQ(r.relation, "周边酒店");
  EXPECT_EQ(texts(r.values), (std::vector<std::string>{"北京贵都大酒店", "如家酒店(地铁站店)"}));
  // A word inside a name is not a question: "地铁" in 如家酒店(地铁站店) asks for nothing, its price does.
  r = ask("如家酒店(地铁站店)的价格");
  EXPECT_EQ(r.relation, "价格");
  r = ask("如家酒店(地铁站店)");
  EXPECT_EQ(r.kind, GraphAnswer::Kind::None);
  EXPECT_EQ(r.reason, "no attribute asked about");
  // References: the most recent entity, or the most recent of the type the question names.
  const auto gugong = g.find("故宫").front(), hotel = g.find("北京贵都大酒店").front();
  r = ask("它的评分呢", {hotel, gugong});
  EXPECT_EQ(g.entity_at(r.entity).name, "北京贵都大酒店");
  r = ask("那个景点的地址呢", {hotel, gugong});
  EXPECT_EQ(g.entity_at(r.entity).name, "故宫");
  r = ask("这个景点周边有什么餐馆", {hotel, gugong});  // the attraction's nearby restaurants
  EXPECT_EQ(g.entity_at(r.entity).name, "故宫");
  EXPECT_EQ(texts(r.values), std::vector<std::string>{"四季民福"});
  // Filtered lookups.
  r = ask("评分4.5以上的酒店");
  ASSERT_EQ(r.kind, GraphAnswer::Kind::Lookup);
  ASSERT_EQ(r.values.size(), 1u);
  EXPECT_EQ(g.entity_at(r.values[0].entity).name, "北京贵都大酒店");
  r = ask("hotels rated 4 or more near 故宫");
  EXPECT_EQ(r.values.size(), 2u);
  EXPECT_EQ(g.entity_at(r.values[0].entity).name, "北京贵都大酒店");  // best rated first
  r = ask("价格500元以下的酒店");
  ASSERT_EQ(r.values.size(), 1u);
  EXPECT_EQ(g.entity_at(r.values[0].entity).name, "如家酒店(地铁站店)");
  EXPECT_EQ(ask("评分4.9以上的酒店").kind, GraphAnswer::Kind::None);
  // What the graph does not know.
  r = ask("景山公园的电话");
  EXPECT_EQ(r.kind, GraphAnswer::Kind::None);
  EXPECT_EQ(r.reason, "no such attribute");
  EXPECT_NE(r.text.find("景山公园"), std::string::npos);
  EXPECT_EQ(ask("").kind, GraphAnswer::Kind::None);
  EXPECT_EQ(ask("今天天气怎么样").kind, GraphAnswer::Kind::None);
  EXPECT_EQ(ask(std::string(100000, 'x')).kind, GraphAnswer::Kind::None);
  EXPECT_EQ(ask("\xff\xfe 故宫的门票").relation, "门票");  // invalid UTF-8 is repaired, not fatal
}

TEST(KnowledgeGraph, CatalogueTriplesAndTheStore) {
  test::TempDir dir;
  auto store = store::open_sqlite_store(dir.file("s.db"));
  const auto ingest = store->begin_ingest("items", "i.jsonl", "h", "m");
  store::Batch b;
  b.items.push_back({"P1", "Kettle Pro 3", "Home > Kitchen", "Philips", "", 39.5, true, "飞利浦电水壶3| kettle 3 "});
  b.items.push_back({"P2", "iPhone 15", "Electronics > Phones", "Apple", "", 799.0, false});
  store->write_batch(ingest.id, b, 3);
  test::write_file(dir.file("policies.csv"),
                   "subject,subject_type,relation,object,object_type\n"
                   "returns,policy,days,30,\n"
                   "returns,policy,applies to,Kitchen,category\n");
  KnowledgeGraph g;
  add_catalogue(g, *store);
  EXPECT_EQ(add_triples_file(g, dir.file("policies.csv")), 2u);
  store->put_graph(g.rows());
  const KnowledgeGraph loaded(store->graph());
  EXPECT_EQ(loaded.entity_count(), g.entity_count());
  EXPECT_EQ(loaded.triple_count(), g.triple_count());
  const GraphAnswerer a(loaded);
  auto r = a.answer("How much is the Kettle Pro 3?");
  ASSERT_EQ(r.kind, GraphAnswer::Kind::Attribute) << r.text;
  EXPECT_EQ(texts(r.values), std::vector<std::string>{"39.50"});
  r = a.answer("which brand makes the IPHONE 15");  // case folded
  EXPECT_EQ(texts(r.values), std::vector<std::string>{"Apple"});
  r = a.answer("is ｉＰｈｏｎｅ 15 in stock");  // full width
  EXPECT_EQ(texts(r.values), std::vector<std::string>{"no"});
  r = a.answer("P1 price");  // the item id is an alias
  EXPECT_EQ(texts(r.values), std::vector<std::string>{"39.50"});
  // The catalogue's other names (a Chinese title), kept through the store.
  r = a.answer("飞利浦电水壶3多少钱");
  ASSERT_EQ(r.kind, GraphAnswer::Kind::Attribute) << r.text;
  EXPECT_EQ(texts(r.values), std::vector<std::string>{"39.50"});
  EXPECT_EQ(texts(a.answer("how much is kettle 3").values), std::vector<std::string>{"39.50"});
  const auto kitchen = loaded.find("Kitchen");
  ASSERT_EQ(kitchen.size(), 1u);
  EXPECT_EQ(texts(loaded.values(kitchen[0], "parent")), std::vector<std::string>{"Home"});
  EXPECT_EQ(texts(loaded.values(loaded.find("returns")[0], "days")), std::vector<std::string>{"30"});
  // Bad files.
  test::write_file(dir.file("bad.csv"), "subject,relation,object\nx,y,z\n");
  EXPECT_THROW(add_triples_file(g, dir.file("bad.csv")), Error);
  test::write_file(dir.file("empty_field.csv"), "subject,subject_type,relation,object\nx,t,,z\n");
  try {
    add_triples_file(g, dir.file("empty_field.csv"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.where().line, 2);
  }
  EXPECT_THROW(add_crosswoz(g, dir.file("nowhere")), Error);
}

}  // namespace
}  // namespace persona::assistant
