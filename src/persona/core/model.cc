#include "persona/core/model.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace persona {

std::vector<std::string> split_aliases(std::string_view aliases) {
  std::vector<std::string> out;
  while (!aliases.empty()) {
    const auto bar = aliases.find('|');
    if (const auto one = aliases.substr(0, bar); !one.empty()) out.emplace_back(one);
    aliases = bar == std::string_view::npos ? std::string_view() : aliases.substr(bar + 1);
  }
  return out;
}

const char* entity_name(Entity e) {
  static const char* names[] = {"user", "item", "event", "text", "feedback"};
  return names[static_cast<int>(e)];
}

const std::vector<std::string_view>& feedback_kinds() {
  static const std::vector<std::string_view> kinds = {"impression", "click", "cart", "purchase", "not_interested"};
  return kinds;
}

bool is_feedback_kind(std::string_view name) {
  const auto& k = feedback_kinds();
  return std::find(k.begin(), k.end(), name) != k.end();
}

std::optional<Entity> parse_entity(std::string_view name) {
  if (name == "user" || name == "users") return Entity::User;
  if (name == "item" || name == "items") return Entity::Item;
  if (name == "event" || name == "events") return Entity::Event;
  if (name == "text" || name == "texts") return Entity::Text;
  if (name == "feedback" || name == "feedbacks") return Entity::Feedback;
  return std::nullopt;
}

const char* event_type_name(EventType t) {
  static const char* names[] = {"view", "click", "cart", "purchase", "return", "rate", "review", "search", "favourite"};
  return names[static_cast<int>(t)];
}

std::optional<EventType> parse_event_type(std::string_view name) {
  struct Alias { const char* name; EventType type; };
  static const Alias aliases[] = {
      {"view", EventType::View},         {"pv", EventType::View},           {"page_view", EventType::View},
      {"click", EventType::Click},       {"cart", EventType::Cart},         {"add_to_cart", EventType::Cart},
      {"addtocart", EventType::Cart},    {"purchase", EventType::Purchase}, {"buy", EventType::Purchase},
      {"order", EventType::Purchase},    {"transaction", EventType::Purchase}, {"return", EventType::Return},
      {"refund", EventType::Return},     {"rate", EventType::Rate},         {"rating", EventType::Rate},
      {"review", EventType::Review},     {"search", EventType::Search},     {"favourite", EventType::Favourite},
      {"favorite", EventType::Favourite}, {"fav", EventType::Favourite},    {"like", EventType::Favourite},
  };
  auto equal_ignoring_case = [](std::string_view a, const char* b) {
    size_t i = 0;
    for (; i < a.size() && b[i]; ++i)
      if ((a[i] >= 'A' && a[i] <= 'Z' ? a[i] + ('a' - 'A') : a[i]) != b[i]) return false;
    return i == a.size() && !b[i];
  };
  for (const auto& a : aliases)
    if (equal_ignoring_case(name, a.name)) return a.type;
  return std::nullopt;
}

const char* text_kind_name(TextKind k) {
  static const char* names[] = {"review", "query", "chat"};
  return names[static_cast<int>(k)];
}

std::optional<TextKind> parse_text_kind(std::string_view name) {
  if (name == "review") return TextKind::Review;
  if (name == "query" || name == "question") return TextKind::Query;
  if (name == "chat") return TextKind::Chat;
  return std::nullopt;
}

const std::vector<ModelField>& model_fields() {
  using E = Entity;
  using T = FieldType;
  static const std::vector<ModelField> fields = {
      {E::User, "id", T::Text, true, "external user id"},
      {E::User, "age", T::Integer, false, "age in years"},
      {E::User, "gender", T::Text, false, "gender as given"},
      {E::User, "region", T::Text, false, "region, city or country"},
      {E::User, "signup_time", T::Timestamp, false, "when the user signed up"},
      {E::User, "consent_personalisation", T::Boolean, false,
       "consents to personalised recommendations and answers: true/false, yes/no, 1/0 (unknown: yes)"},
      {E::User, "consent_analytics", T::Boolean, false,
       "consents to use in statistics, segments and model training: true/false, yes/no, 1/0 (unknown: yes)"},
      {E::Item, "id", T::Text, true, "external item id"},
      {E::Item, "title", T::Text, false, "item title"},
      {E::Item, "category", T::Text, false, "category path, levels separated by ' > '"},
      {E::Item, "brand", T::Text, false, "brand"},
      {E::Item, "price", T::Number, false, "list price"},
      {E::Item, "text", T::Text, false, "free description"},
      {E::Item, "aliases", T::Text, false, "other names (a translated title, a short name), separated by '|'"},
      {E::Item, "category_aliases", T::Text, false,
       "the category path in other languages (\"美妆 > 护肤\"), separated by '|': the dashboard shows it to Chinese readers"},
      {E::Item, "available", T::Boolean, false, "whether it can be bought now: true/false, yes/no, 1/0, 有货/缺货 (unknown: available)"},
      {E::Event, "user", T::Text, true, "external user id"},
      {E::Event, "item", T::Text, true, "external item id"},
      {E::Event, "type", T::EventKind, true, "view, click, cart, purchase, return, rate, review, search, favourite"},
      {E::Event, "quantity", T::Number, false, "quantity (default 1)"},
      {E::Event, "value", T::Number, false, "unit price paid, or the rating"},
      {E::Event, "timestamp", T::Timestamp, true, "when it happened"},
      {E::Event, "session", T::Text, false, "session or invoice id"},
      {E::Text, "user", T::Text, false, "external user id of the author"},
      {E::Text, "item", T::Text, false, "external item id the text is about"},
      {E::Text, "kind", T::TextKindField, true, "review, query or chat"},
      {E::Text, "language", T::Text, false, "language code (en, zh); detected later when absent"},
      {E::Text, "body", T::Text, true, "the text itself"},
      {E::Text, "label", T::Text, false, "a class label, e.g. an intent"},
      {E::Text, "category", T::Text, false, "a category, e.g. a product category or domain"},
      {E::Text, "sentiment", T::Number, false, "sentiment label or score (1 positive, 0 negative)"},
      {E::Text, "timestamp", T::Timestamp, false, "when it was written"},
      {E::Feedback, "request_id", T::Text, true, "the request_id of the served list (or chat answer) the item was in"},
      {E::Feedback, "user", T::Text, true, "external user id"},
      {E::Feedback, "item", T::Text, true, "external item id (for a chat answer: what it was about)"},
      {E::Feedback, "kind", T::FeedbackKind, true, "impression, click, cart, purchase or not_interested"},
      {E::Feedback, "position", T::Integer, false, "the item's place in the list, from 0"},
      {E::Feedback, "value", T::Number, false, "a purchase's revenue"},
      {E::Feedback, "model", T::Text, false, "the model version the list named"},
      {E::Feedback, "experiment", T::Text, false, "the experiment it belongs to (default: the one running on the recommend surface)"},
      {E::Feedback, "timestamp", T::Timestamp, true, "when it happened"},
  };
  return fields;
}

const ModelField* user_attribute_field() {
  static const ModelField field{Entity::User, "attr.*", FieldType::Text, false, "a free-form attribute (attr.NAME)"};
  return &field;
}

const ModelField* find_model_field(Entity entity, std::string_view name) {
  if (entity == Entity::User && name.size() > kAttributePrefix.size() && name.substr(0, kAttributePrefix.size()) == kAttributePrefix)
    return user_attribute_field();
  for (const auto& f : model_fields())
    if (f.entity == entity && name == f.name) return &f;
  return nullptr;
}

}  // namespace persona
