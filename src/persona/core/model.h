#pragma once
// Persona's one data model. Every source is mapped onto these five kinds of record; the store,
// the profiles and every later stage read only these.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace persona {

enum class Entity : uint8_t { User, Item, Event, Text, Feedback };
constexpr int kEntityCount = 5;
const char* entity_name(Entity e);            // "user", "item", "event", "text", "feedback"
std::optional<Entity> parse_entity(std::string_view name);  // also accepts plurals

enum class EventType : uint8_t { View, Click, Cart, Purchase, Return, Rate, Review, Search, Favourite };
constexpr int kEventTypeCount = 9;
const char* event_type_name(EventType t);
// Canonical names and common synonyms: pv, buy, order, fav, add_to_cart, rating, ...
std::optional<EventType> parse_event_type(std::string_view name);

enum class TextKind : uint8_t { Review, Query, Chat };
const char* text_kind_name(TextKind k);
std::optional<TextKind> parse_text_kind(std::string_view name);

enum class FieldType : uint8_t { Text, Integer, Number, Timestamp, EventKind, TextKindField, Boolean, FeedbackKind };

// What a user did with an item of a served list (or a chat answer): feedback.kind.
const std::vector<std::string_view>& feedback_kinds();  // impression, click, cart, purchase, not_interested
bool is_feedback_kind(std::string_view name);

// One field of the model, e.g. event.quantity.
struct ModelField {
  Entity entity;
  const char* name;
  FieldType type;
  bool required;
  const char* description;
};
const std::vector<ModelField>& model_fields();
// Also finds user attributes: "attr.NAME" for any NAME is the one attribute field.
const ModelField* find_model_field(Entity entity, std::string_view name);
const ModelField* user_attribute_field();
constexpr std::string_view kAttributePrefix = "attr.";

struct User {
  std::string id;
  std::optional<int64_t> age;
  std::string gender, region;
  std::optional<int64_t> signup_time;
  std::vector<std::pair<std::string, std::string>> attributes;  // free-form: member level, channel, ...
  // Consent to the two uses of a person's data (unknown: given; see docs/privacy.md).
  std::optional<bool> consent_personalisation, consent_analytics;
};

struct Item {
  std::string id, title, category, brand, text;
  std::optional<double> price;
  std::optional<bool> available;  // whether it can be bought now; unknown counts as available
  std::string aliases;            // other names ("小米手机壳571|phone case 571"), '|'-separated
  std::string category_aliases;   // the category path in other languages ("美妆 > 护肤"), '|'-separated
};

// An item's aliases one by one (empty ones left out).
std::vector<std::string> split_aliases(std::string_view aliases);

struct Event {
  std::string user, item;
  EventType type = EventType::View;
  double quantity = 1;
  std::optional<double> value;  // unit price, rating, ...
  int64_t timestamp = 0;
  std::string session;
};

struct Text {
  std::string user, item;
  TextKind kind = TextKind::Review;
  std::string language, body, label, category;
  std::optional<double> sentiment;
  std::optional<int64_t> timestamp;
};

// What a user did with a list Persona served (POST /v1/feedback, or a source mapped onto
// feedback): one per request, item and kind, so the same feedback sent again is stored once. The
// experiment and variant the user was in, and the model that made the list, are stamped when it
// is stored ("" when none).
struct Feedback {
  std::string request_id, user, item, kind;  // kind: impression | click | cart | purchase | not_interested
  std::string experiment, variant, model;
  int64_t position = -1;  // the item's place in the list, from 0; -1 when not given
  double value = 0;       // a purchase's revenue
  int64_t ts = 0;         // seconds since the epoch
};

}  // namespace persona
