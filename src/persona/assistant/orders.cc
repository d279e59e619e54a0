#include "persona/assistant/orders.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "persona/core/model.h"
#include "persona/core/time.h"
#include "persona/text/normalize.h"

namespace persona::assistant {
namespace {

std::string title_of(const std::unordered_map<std::string, std::string>& titles, const std::string& item) {
  const auto it = titles.find(item);
  return it == titles.end() || it->second.empty() ? item : it->second;
}

}  // namespace

double Order::total() const {
  double sum = 0;
  for (const auto& l : lines)
    if (!l.returned && std::isfinite(l.unit_price)) sum += l.quantity * l.unit_price;
  return sum;
}

std::vector<Order> orders_from_events(const store::EventColumns& e, const std::unordered_map<std::string, std::string>& titles) {
  std::map<std::string, Order> by_id;
  std::map<std::pair<int32_t, int32_t>, std::string> order_of_purchase;  // (user, item) -> the latest order with it
  std::vector<size_t> order(e.size());
  for (size_t k = 0; k < e.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return e.timestamp[a] < e.timestamp[b]; });
  for (size_t k : order) {
    const auto type = static_cast<EventType>(e.type[k]);
    const auto item = static_cast<size_t>(e.item[k]);
    if (type == EventType::Purchase) {
      const auto& user = e.user_ids[static_cast<size_t>(e.user[k])];
      const std::string id = e.session[k] >= 0 ? e.sessions[static_cast<size_t>(e.session[k])]
                                               : user + "-" + format_date(e.timestamp[k]);
      auto [it, fresh] = by_id.try_emplace(id);
      if (fresh) it->second.id = id, it->second.time = e.timestamp[k];
      const double price = std::isfinite(e.value[k]) ? e.value[k] : (item < e.item_prices.size() ? e.item_prices[item] : NAN);
      it->second.lines.push_back({e.item_ids[item], title_of(titles, e.item_ids[item]), e.quantity[k], price, false});
      order_of_purchase[{e.user[k], e.item[k]}] = id;
    } else if (type == EventType::Return) {
      const auto found = order_of_purchase.find({e.user[k], e.item[k]});
      if (found == order_of_purchase.end()) continue;
      for (auto& line : by_id[found->second].lines)
        if (line.item == e.item_ids[item]) line.returned = true;
    }
  }
  std::vector<Order> out;
  for (auto& [id, o] : by_id) out.push_back(std::move(o));
  std::sort(out.begin(), out.end(), [](const Order& a, const Order& b) { return a.time != b.time ? a.time > b.time : a.id < b.id; });
  return out;
}

std::optional<Order> find_order(const std::vector<Order>& orders, const std::string& id) {
  const auto key = text::normalize_for_analysis(id);
  for (const auto& o : orders)
    if (text::normalize_for_analysis(o.id) == key) return o;
  return std::nullopt;
}

std::vector<OrderLine> bought_between(const std::vector<Order>& orders, int64_t from, int64_t to) {
  std::vector<OrderLine> out;
  for (const auto& o : orders) {
    if (o.time < from || o.time >= to) continue;
    for (const auto& l : o.lines) {
      auto it = std::find_if(out.begin(), out.end(), [&](const OrderLine& x) { return x.item == l.item; });
      if (it == out.end()) out.push_back(l);
      else it->quantity += l.quantity;
    }
  }
  return out;
}

std::string describe_order(const Order& o, bool chinese, const std::unordered_map<std::string, std::string>* zh_titles) {
  std::string lines;
  for (const auto& l : o.lines) {
    std::string title = l.title;
    if (chinese && zh_titles)
      if (const auto zh = zh_titles->find(l.item); zh != zh_titles->end()) title = zh->second;
    const std::string price = std::isfinite(l.unit_price) ? fmt::format(" ({:.2f})", l.unit_price) : "";
    const std::string returned = l.returned ? (chinese ? "，已退货" : ", returned") : "";
    lines += fmt::format("{}{:g} x {}{}{}", lines.empty() ? "" : (chinese ? "；" : "; "), l.quantity, title, price, returned);
  }
  return chinese ? fmt::format("订单 {}（{}）：{}。合计 {:.2f}。", o.id, format_date(o.time), lines, o.total())
                 : fmt::format("Order {} ({}): {}. Total {:.2f}.", o.id, format_date(o.time), lines, o.total());
}

}  // namespace persona::assistant
