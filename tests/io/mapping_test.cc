#include "persona/io/mapping.h"

#include <gtest/gtest.h>

#include "persona/core/error.h"

namespace persona::io {
namespace {

SourceMapping retail_like() {
  SourceMapping m;
  m.name = "retail";
  m.path = "retail.csv";
  OutputMapping events{Entity::Event, {}};
  FieldSpec type{.column = "Invoice", .prefix_map = {{"C", "return"}}, .default_value = "purchase"};
  events.fields = {{"user", {.column = "Customer"}},
                   {"item", {.column = "Code"}},
                   {"type", type},
                   {"quantity", {.column = "Qty", .absolute = true}},
                   {"value", {.column = "Price"}},
                   {"timestamp", {.column = "Date", .format = "%m/%d/%Y %H:%M"}}};
  m.outputs.push_back(events);
  m.outputs.push_back({Entity::Item, {{"id", {.column = "Code"}}, {"title", {.column = "Description"}}}});
  return m;
}

const std::vector<std::string> kColumns = {"Invoice", "Code", "Description", "Qty", "Date", "Price", "Customer"};

Record record(std::vector<std::string_view> fields) {
  Record r;
  r.line = 2;
  r.fields = std::move(fields);
  r.present.assign(r.fields.size(), true);
  return r;
}

TEST(Mapping, MapsColumnsPrefixMapsAndTypes) {
  const auto m = retail_like();
  m.validate();
  Mapper mapper(m, kColumns, "retail.csv");
  std::vector<FieldValue> v;
  mapper.map(record({"C536379", "D", "Discount", "-1", "12/1/2010 9:41", "27.50", "14527"}), v);
  const int type = mapper.slot(Entity::Event, "type");
  EXPECT_EQ(v[type].text, "return");
  EXPECT_EQ(v[type].code, static_cast<uint8_t>(EventType::Return));
  const int qty = mapper.slot(Entity::Event, "quantity");
  EXPECT_EQ(v[qty].number, 1.0);
  const auto built = mapper.build(v);
  ASSERT_TRUE(built.event && built.item);
  EXPECT_EQ(built.event->user, "14527");
  EXPECT_EQ(built.event->timestamp, 1291196460);
  EXPECT_EQ(built.event->value, 27.5);
  EXPECT_EQ(built.item->title, "Discount");

  mapper.map(record({"536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850"}), v);
  EXPECT_EQ(v[type].text, "purchase");
}

TEST(Mapping, NaValuesAreMissingAndBadValuesAreErrors) {
  const auto m = retail_like();
  Mapper mapper(m, kColumns, "retail.csv");
  std::vector<FieldValue> v;
  mapper.map(record({"1", "A", "x", "two", "31/31/2010 0:00", "NaN", "NA"}), v);
  EXPECT_FALSE(v[mapper.slot(Entity::Event, "user")].present);
  EXPECT_FALSE(v[mapper.slot(Entity::Event, "value")].present);
  EXPECT_STREQ(v[mapper.slot(Entity::Event, "quantity")].error, "is not a number");
  EXPECT_NE(v[mapper.slot(Entity::Event, "timestamp")].error, nullptr);
  mapper.map(record({"1", "A", "bad \xFF utf8", "1", "12/1/2010 8:26", "1", "5"}), v);
  EXPECT_STREQ(v[mapper.slot(Entity::Item, "title")].error, "is not valid UTF-8");
}

TEST(Mapping, AvailabilityIsAYesOrNo) {
  SourceMapping m;
  m.name = "items";
  m.path = "items.csv";
  m.outputs.push_back({Entity::Item, {{"id", {.column = "id"}}, {"available", {.column = "stock"}}}});
  m.validate();
  Mapper mapper(m, {"id", "stock"}, "items.csv");
  std::vector<FieldValue> v;
  const int slot = mapper.slot(Entity::Item, "available");
  for (const auto& [text, expected] : std::vector<std::pair<const char*, bool>>{
           {"true", true}, {"No", false}, {" 1 ", true}, {"0", false}, {"缺货", false}, {"有货", true}, {"FALSE", false}}) {
    mapper.map(record({"i1", text}), v);
    ASSERT_EQ(v[slot].error, nullptr) << text;
    EXPECT_EQ(mapper.build(v).item->available, expected) << text;
  }
  mapper.map(record({"i1", "maybe"}), v);
  ASSERT_NE(v[slot].error, nullptr);
  EXPECT_NE(std::string(v[slot].error).find("true or false"), std::string::npos);
}

TEST(Mapping, UnknownColumnNamesTheFileAndItsColumns) {
  auto m = retail_like();
  m.outputs[0].fields[0].second.column = "CustomerId";
  try {
    Mapper mapper(m, kColumns, "retail.csv");
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("retail.csv"), std::string::npos);
    EXPECT_NE(what.find("CustomerId"), std::string::npos);
    EXPECT_NE(what.find("\"Customer\""), std::string::npos);
  }
}

TEST(Mapping, ValidateRequiresTheModelsRequiredFields) {
  auto m = retail_like();
  m.outputs[0].fields.erase(m.outputs[0].fields.begin() + 5);  // no timestamp
  try {
    m.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("timestamp"), std::string::npos);
  }
}

TEST(Mapping, EventTypeSynonymsAndUnknownTypes) {
  EXPECT_EQ(parse_event_type("pv"), EventType::View);
  EXPECT_EQ(parse_event_type("BUY"), EventType::Purchase);
  EXPECT_EQ(parse_event_type("fav"), EventType::Favourite);
  EXPECT_FALSE(parse_event_type("clik").has_value());
}

TEST(Mapping, ItemAliasesSplitOnBars) {
  EXPECT_EQ(split_aliases("小米手机壳571|phone case 571"), (std::vector<std::string>{"小米手机壳571", "phone case 571"}));
  EXPECT_EQ(split_aliases("|a||b|"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(split_aliases("").empty());
}

}  // namespace
}  // namespace persona::io

namespace persona::io {
namespace {

TEST(Mapping, UserAttributesAreFreeFormFields) {
  SourceMapping m;
  m.name = "users";
  m.path = "users.csv";
  m.outputs.push_back({Entity::User, {{"id", {.column = "uid"}}, {"attr.channel", {.column = "ch"}},
                                      {"attr.level", {.column = "lvl"}}}});
  m.validate();
  Mapper mapper(m, {"uid", "ch", "lvl"}, "users.csv");
  EXPECT_GE(mapper.slot(Entity::User, "attr.level"), 0);
  std::vector<FieldValue> v;
  mapper.map(record({"U1", "mini_program", ""}), v);
  const auto built = mapper.build(v);
  ASSERT_TRUE(built.user);
  ASSERT_EQ(built.user->attributes.size(), 1u);  // a missing attribute is left out
  EXPECT_EQ(built.user->attributes[0], (std::pair<std::string, std::string>{"channel", "mini_program"}));
  EXPECT_EQ(find_model_field(Entity::Item, "attr.x"), nullptr);  // items have no free attributes
}

// Two columns of one name: the first used to win without a word.
TEST(Mapping, AColumnNamedTwiceIsAnErrorWhenTheMappingReadsIt) {
  const auto m = retail_like();
  std::vector<std::string> columns = kColumns;
  columns.push_back("Customer");
  try {
    Mapper mapper(m, columns, "retail.csv");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("two columns \"Customer\" (columns 7 and 8)"), std::string::npos) << what;
    EXPECT_NE(what.find("retail.csv:1"), std::string::npos) << what;
  }
  columns.back() = "Unused";
  columns.push_back("Unused");  // twice, but never read: fine
  EXPECT_NO_THROW(Mapper(m, columns, "retail.csv"));
}

// Times outside the window are type errors with the window in the reason.
TEST(Mapping, TimesOutsideTheWindowAreRejected) {
  auto m = retail_like();
  m.outputs[0].fields.back().second.format = "iso8601";
  Mapper mapper(m, kColumns, "retail.csv");
  std::vector<FieldValue> v;
  const int ts = mapper.slot(Entity::Event, "timestamp");
  mapper.map(record({"536379", "D", "Discount", "1", "9999-01-01", "27.50", "14527"}), v);
  ASSERT_TRUE(v[ts].error);
  EXPECT_NE(std::string(v[ts].error).find("from 1970-01-01 to 2100-01-01"), std::string::npos) << v[ts].error;
  mapper.map(record({"536379", "D", "Discount", "1", "2011-01-01T00:00:00+99:99", "27.50", "14527"}), v);
  EXPECT_TRUE(v[ts].error);
  m.time_window = {0, INT64_MAX};
  Mapper wide(m, kColumns, "retail.csv");
  wide.map(record({"536379", "D", "Discount", "1", "9999-01-01", "27.50", "14527"}), v);
  EXPECT_FALSE(v[ts].error);
}

}  // namespace
}  // namespace persona::io
