#pragma once
// A user's orders from their events, for the assistant's personal answers ("where is my last
// order", "what did I buy last month"). An order is a session (or invoice) with purchases; its
// lines are the items bought, and items returned later count against it. Only the user's own
// events are ever read, so one user never sees another's orders.
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "persona/store/store.h"

namespace persona::assistant {

struct OrderLine {
  std::string item, title;
  double quantity = 0;
  double unit_price = 0;  // NaN when unknown
  bool returned = false;
};

struct Order {
  std::string id;   // the session or invoice id; "<user>-<date>" for purchases without one
  int64_t time = 0; // the first purchase
  std::vector<OrderLine> lines;
  double total() const;  // priced lines, returned ones left out
};

// The orders in `user_events` (one user's events, as Store::events_of gives them), newest first.
// `titles` names items by id (the catalogue's titles; the id when missing).
std::vector<Order> orders_from_events(const store::EventColumns& user_events,
                                      const std::unordered_map<std::string, std::string>& titles = {});

// The order with this id among the user's orders (ids compared case-insensitively); none when
// it is not theirs, whoever else's it may be.
std::optional<Order> find_order(const std::vector<Order>& orders, const std::string& id);

// Items bought in [from, to), newest first, summed by item.
std::vector<OrderLine> bought_between(const std::vector<Order>& orders, int64_t from, int64_t to);

// "2 x Kettle Pro 3 (39.50)" lines and a total, in English or Chinese.
// `zh_titles`: items' Chinese names (item id -> name), used in a Chinese description when given.
std::string describe_order(const Order& order, bool chinese,
                           const std::unordered_map<std::string, std::string>* zh_titles = nullptr);

}  // namespace persona::assistant
