#pragma once
// Forms: tasks the assistant carries out with the customer over several turns (return an item,
// change the shipping address, cancel an order, track a parcel). A form has trigger phrases,
// slots to fill (each from an entity of the message, or the message itself for free text), a
// prompt per slot in English and Chinese, validation (an order id must be one of the signed-in
// user's orders), and a confirmation before the action. The customer can ask something else in
// the middle (a FAQ, a product question) and come back, or cancel.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace persona::assistant {

struct FormSlot {
  std::string name;
  std::string kind;  // an entity kind (order_id, quantity, date, phone, email, product, money) or "text"
  std::string prompt_en, prompt_zh;
  bool own_order = false;  // the value must be an order id of the signed-in user
};

struct FormSpec {
  std::string name;                       // the action's name: return_item, change_address, ...
  std::vector<std::string> triggers;      // phrases that start it (normalised: lower case)
  std::vector<FormSlot> slots;
  bool confirm = true;
  std::string confirm_en, confirm_zh;     // with {slot} placeholders
  std::string done_en, done_zh;
  nlohmann::json to_json() const;
  static FormSpec from_json(const nlohmann::json& j);  // throws on a missing name, trigger or slot field
};

// The built-in forms: return_item, change_address, cancel_order, track_order.
std::vector<FormSpec> default_forms();
inline constexpr const char* kFormsHint =
    "a form has name, triggers, slots (name, kind, prompt_en, prompt_zh) and done_en";
// `forms` (a JSON array of forms) merged into `base`: one of the same name replaces it, others are
// added. Throws std::runtime_error naming the form ("form 2: ...").
std::vector<FormSpec> merge_forms(std::vector<FormSpec> base, const nlohmann::json& forms);
// Forms from a JSON file (an array of forms, the shape of FormSpec::to_json), replacing the
// built-in ones of the same name and adding the others. Errors name the file and the form.
std::vector<FormSpec> load_forms(const std::string& path, std::vector<FormSpec> base = default_forms());

// `text` with each {slot} replaced by the slot's value.
std::string fill_template(const std::string& text, const nlohmann::json& slots);

}  // namespace persona::assistant
