#pragma once
// The entities of a customer's message: order ids (the shop's pattern), emails, phone numbers
// (Chinese mobiles and international), money ("¥12.5", "30元", "$30"), quantities ("2 pieces",
// "两件"), dates, absolute and relative, in English and Chinese ("yesterday", "last Friday",
// "上周五", "3天前", "11月3日"), and, given the knowledge graph, product and brand names.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace persona::assistant {

class GraphAnswerer;

struct Entity {
  std::string kind;    // order_id | email | phone | money | quantity | date | product | brand | ...
  std::string text;    // as written (normalised: NFKC, case folded)
  std::string value;   // canonical: a date as YYYY-MM-DD, money as "12.50", a phone's digits, a count
  size_t begin = 0, end = 0;  // byte offsets in the normalised text
};

struct EntityOptions {
  // RE2, matched against normalised (lower-case) text: ORD-2025-000123, or the session ids the
  // sample shop's orders are named by (S00001234). [assistant] order_id_pattern sets the shop's own.
  std::string order_id_pattern = R"((?:ord-\d{4}-\d{6}|s\d{8}))";
  // What an order number looks like, said to a customer who gave something else.
  std::string order_id_example = "ORD-2025-000123";
  int64_t now = 0;  // Unix seconds that relative dates count from (0: the current time)
};

// Entities in order of position; spans do not overlap (an order id's digits are not a phone).
std::vector<Entity> extract_entities(std::string_view message, const EntityOptions& options = {},
                                     const GraphAnswerer* graph = nullptr);

}  // namespace persona::assistant
