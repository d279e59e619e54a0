#include "persona/assistant/forms.h"

#include <fmt/format.h>

#include <fstream>

#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/io/input.h"

namespace persona::assistant {

nlohmann::json FormSpec::to_json() const {
  nlohmann::json slots_json = nlohmann::json::array();
  for (const auto& s : slots)
    slots_json.push_back({{"name", s.name}, {"kind", s.kind}, {"prompt_en", s.prompt_en}, {"prompt_zh", s.prompt_zh},
                          {"own_order", s.own_order}});
  return {{"name", name}, {"triggers", triggers}, {"slots", slots_json}, {"confirm", confirm}, {"confirm_en", confirm_en},
          {"confirm_zh", confirm_zh}, {"done_en", done_en}, {"done_zh", done_zh}};
}

FormSpec FormSpec::from_json(const nlohmann::json& j) {
  FormSpec f;
  f.name = j.at("name").get<std::string>();
  f.triggers = j.at("triggers").get<std::vector<std::string>>();
  if (f.name.empty() || f.triggers.empty()) throw std::runtime_error("a form needs a name and trigger phrases");
  for (const auto& s : j.at("slots")) {
    FormSlot slot;
    slot.name = s.at("name").get<std::string>();
    slot.kind = s.value("kind", "text");
    slot.prompt_en = s.at("prompt_en").get<std::string>();
    slot.prompt_zh = s.value("prompt_zh", slot.prompt_en);
    slot.own_order = s.value("own_order", slot.kind == "order_id");
    f.slots.push_back(std::move(slot));
  }
  f.confirm = j.value("confirm", true);
  f.confirm_en = j.value("confirm_en", "Shall I go ahead?");
  f.confirm_zh = j.value("confirm_zh", "确认办理吗？");
  f.done_en = j.at("done_en").get<std::string>();
  f.done_zh = j.value("done_zh", f.done_en);
  return f;
}

std::vector<FormSpec> default_forms() {
  const FormSlot order{"order_id", "order_id", "Which order is it? Please give me the order number.",
                       "请问是哪个订单？请告诉我订单号。", true};
  std::vector<FormSpec> forms;
  forms.push_back({"return_item",
                   {"return an item", "return my", "return the", "send it back", "want to return", "退货", "退掉", "退回"},
                   {order, {"reason", "text", "What is the reason for the return?", "请问退货原因是什么？", false}},
                   true,
                   "Return order {order_id} because \"{reason}\". Shall I go ahead? (yes/no)",
                   "为订单{order_id}申请退货，原因：{reason}。确认办理吗？（是/否）",
                   "Done: the return of order {order_id} is requested; you will get a pickup notice.",
                   "已为订单{order_id}提交退货申请，稍后会通知您上门取件时间。"});
  forms.push_back({"change_address",
                   {"change the address", "change my address", "change the shipping address", "wrong address", "改地址",
                    "修改地址", "更改地址", "换个地址"},
                   {order, {"address", "text", "What is the new shipping address?", "请问新的收货地址是什么？", false}},
                   true,
                   "Ship order {order_id} to \"{address}\". Shall I go ahead? (yes/no)",
                   "将订单{order_id}的收货地址改为：{address}。确认修改吗？（是/否）",
                   "Done: order {order_id} will be shipped to the new address.",
                   "已将订单{order_id}的收货地址修改为新地址。"});
  forms.push_back({"cancel_order",
                   {"cancel my order", "cancel the order", "cancel order", "取消订单", "把订单取消", "不要这个订单"},
                   {order},
                   true,
                   "Cancel order {order_id}. Shall I go ahead? (yes/no)",
                   "取消订单{order_id}。确认取消吗？（是/否）",
                   "Done: order {order_id} is cancelled; the refund follows within 5 working days.",
                   "已取消订单{order_id}，退款将在5个工作日内到账。"});
  forms.push_back({"track_order",
                   {"track my order", "track my parcel", "track my package", "查物流", "物流信息", "快递到哪"},
                   {order},
                   false, "", "",
                   "Here is order {order_id}: {order}", "订单{order_id}：{order}"});
  return forms;
}

std::vector<FormSpec> merge_forms(std::vector<FormSpec> base, const nlohmann::json& forms) {
  if (!forms.is_array()) throw std::runtime_error("expected an array of forms");
  for (size_t i = 0; i < forms.size(); ++i) {
    FormSpec f;
    try {
      f = FormSpec::from_json(forms[i]);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("form {}: {}", i + 1, e.what()));
    }
    const auto it = std::find_if(base.begin(), base.end(), [&](const FormSpec& b) { return b.name == f.name; });
    if (it != base.end()) *it = std::move(f);
    else base.push_back(std::move(f));
  }
  return base;
}

std::vector<FormSpec> load_forms(const std::string& path, std::vector<FormSpec> base) {
  const std::string text = io::read_small_input(path, "forms file");
  nlohmann::json j = parse_json_or_throw(text, {path});
  try {
    return merge_forms(std::move(base), j);
  } catch (const std::exception& e) {
    throw Error(e.what(), {path}, kFormsHint);
  }
}

std::string fill_template(const std::string& text, const nlohmann::json& slots) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const auto close = text[i] == '{' ? text.find('}', i) : std::string::npos;
    if (close != std::string::npos) {
      const auto name = text.substr(i + 1, close - i - 1);
      if (slots.contains(name) && slots[name].is_string()) {
        out += slots[name].get<std::string>();
        i = close + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

}  // namespace persona::assistant
