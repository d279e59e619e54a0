#include "persona/core/json.h"

#include <gtest/gtest.h>

#include <string>

namespace persona {
namespace {

std::string nested(size_t depth, const std::string& open = "[", const std::string& close = "]") {
  std::string s;
  for (size_t i = 0; i < depth; ++i) s += open;
  for (size_t i = 0; i < depth; ++i) s += close;
  return s;
}

TEST(Json, NestingIsBoundedAtParseTime) {
  EXPECT_TRUE(parse_json(nested(64)));
  std::string error;
  EXPECT_FALSE(parse_json(nested(65), &error));
  EXPECT_EQ(error, "nested deeper than 64 levels");
  // 60,000 levels: refused without building (or later recursing through) anything.
  EXPECT_FALSE(parse_json(nested(60000), &error));
  std::string objects;
  for (int i = 0; i < 100; ++i) objects += "{\"a\":";
  objects += "1" + std::string(100, '}');
  EXPECT_FALSE(parse_json(objects, &error));
  EXPECT_TRUE(parse_json(nested(3), nullptr, 3));
  EXPECT_FALSE(parse_json(nested(4), nullptr, 3));
}

TEST(Json, NumbersTooLargeForADoubleAreNotValidJson) {
  std::string error;
  EXPECT_FALSE(parse_json("[1e99999]", &error));
  EXPECT_EQ(error, "not valid JSON: number overflow parsing '1e99999'");
}

TEST(Json, BadTextSaysWhereAndThrowsWhereAsked) {
  std::string error;
  EXPECT_FALSE(parse_json("{\"a\": }", &error));
  EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
  EXPECT_NE(error.find("column"), std::string::npos) << error;
  try {
    parse_json_or_throw(nested(100), {"model.bin", 3});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.bin:3"), std::string::npos) << e.what();
  }
}

TEST(Json, ExcerptsAreBoundedAndValid) {
  const nlohmann::json big = std::string(10000, 'x');
  EXPECT_EQ(json_excerpt(big, 200).size(), 203u);
  const nlohmann::json chinese = std::string(300, 'a') + "中文";
  const auto cut = json_excerpt(nlohmann::json(std::string(199, 'a') + "中文"), 200);
  EXPECT_EQ(cut, std::string(199, 'a') + "...");  // never half a character
  EXPECT_EQ(json_excerpt(nlohmann::json::parse("[1,2]")), "[1,2]");
  EXPECT_EQ(dump_json(nlohmann::json(std::string("\xff"))), "\"\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace persona
