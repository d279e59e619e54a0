#include "persona/assistant/assistant.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>

#include "persona/assistant/orders.h"
#include "persona/core/time.h"
#include "persona/demand/text_analysis.h"
#include "persona/ml/text_classifier.h"
#include "persona/recommend/recommend_model.h"
#include "persona/text/normalize.h"
#include "persona/text/tokenizer.h"

namespace persona::assistant {
namespace {

bool any_of_words(const std::string& q, std::initializer_list<const char*> words) {
  return std::any_of(words.begin(), words.end(), [&](const char* w) { return q.find(w) != std::string::npos; });
}

// Cuts a UTF-8 string at most `bytes` long on a character boundary.
std::string cut(const std::string& s, size_t bytes) {
  if (s.size() <= bytes) return s;
  size_t end = bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

// The first and last day (exclusive) of the calendar month `offset` months from `now`'s.
std::pair<int64_t, int64_t> month_range(int64_t now, int offset) {
  int y;
  unsigned m, d;
  civil_from_days(now / 86400, y, m, d);
  int month = static_cast<int>(m) - 1 + offset;
  y += month < 0 ? (month - 11) / 12 : month / 12;
  month = ((month % 12) + 12) % 12;
  const int64_t from = days_from_civil(y, static_cast<unsigned>(month + 1), 1);
  const int64_t to = month == 11 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, static_cast<unsigned>(month + 2), 1);
  return {from * 86400, to * 86400};
}

}  // namespace

nlohmann::json Reply::to_json() const {
  nlohmann::json es = nlohmann::json::array();
  for (const auto& e : entities) es.push_back({{"kind", e.kind}, {"text", e.text}, {"value", e.value}});
  nlohmann::json j = {{"reply", text}, {"intent", intent}, {"confidence", confidence}, {"entities", es},
                      {"sources", sources}, {"handoff", handoff}};
  if (handoff) j["summary"] = summary;
  if (!slots.empty()) j["slots"] = slots;
  if (!action.is_null()) j["action"] = action;
  if (!understood.empty()) j["understood"] = {{"intent", understood}, {"confidence", understood_confidence}};
  if (phrased) j["phrased"] = true;
  if (!responder_error.empty()) j["responder_error"] = responder_error;
  return j;
}

Assistant::Assistant(Knowledge knowledge, AssistantOptions options) : knowledge_(knowledge), options_(std::move(options)) {
  validate_intent_actions(options_);
  if (!options_.sessions) options_.sessions = std::make_shared<MemorySessions>();
  if (options_.responder.enabled()) responder_.emplace(options_.responder);
  if (knowledge_.store)
    for (const auto& item : knowledge_.store->items()) {
      titles_[item.id] = item.title;
      if (auto zh = text::han_alias(item.aliases); !zh.empty()) titles_zh_[item.id] = std::move(zh);
    }
}

std::string Assistant::prompt_for(const FormSlot& slot, bool chinese) const {
  std::string prompt = chinese ? slot.prompt_zh : slot.prompt_en;
  // Say what an order number looks like: a customer who gave something else asked three times
  // without being told was then handed off.
  if (slot.kind == "order_id")
    prompt += chinese ? fmt::format("（订单号形如 {}）", options_.entities.order_id_example)
                      : fmt::format(" (it looks like {})", options_.entities.order_id_example);
  return prompt;
}

std::string Assistant::item_name(const std::string& id, bool chinese) const {
  if (chinese)
    if (const auto it = titles_zh_.find(id); it != titles_zh_.end()) return it->second;
  if (const auto it = titles_.find(id); it != titles_.end() && !it->second.empty()) return it->second;
  return id;
}

std::optional<Session> Assistant::session(const std::string& id) const { return options_.sessions->find(id); }

Understanding Assistant::understand(std::string_view message) const {
  Understanding u;
  if (!knowledge_.intents) return u;
  // Without a word (only emoji, digits or punctuation) the model would answer its prior: unknown.
  const auto tokens = text::tokenize(text::normalize_for_analysis(message));
  if (std::none_of(tokens.begin(), tokens.end(),
                   [](const text::Token& t) { return t.kind == text::TokenKind::Word || t.kind == text::TokenKind::Ideographic; })) {
    u.label = "unknown";
    return u;
  }
  const auto& model = *knowledge_.intents;
  const auto p = model.predict(message);
  u.confidence = p.confidence;
  const double threshold = options_.out_of_scope_threshold.value_or(model.unknown_threshold());
  const bool out_of_scope = p.best < 0 || model.label_name(p.best) == ml::kOutOfScope || ml::unfamiliar(p.unknown);
  u.label = out_of_scope || p.confidence < threshold ? "unknown" : model.label_name(p.best);
  return u;
}

Reply Assistant::reply(const std::string& session_id, const std::string& user, std::string_view message, int64_t now) {
  if (now == 0)
    now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string text = cut(text::repair_utf8(message), options_.max_message_bytes);
  const Understanding understood = understand(text);  // the model runs outside the sessions' lock
  Reply r = converse(session_id, user, text, now, understood);
  // The responder words answers that rest on retrieved facts; it is called outside the lock (a
  // slow model must not hold up other conversations) and its failure keeps the assistant's text.
  if (responder_ && !r.sources.empty() && !r.handoff) {
    const auto p = responder_->phrase(text, r.text, r.sources, text::contains_han(r.text));
    if (p.text) {
      r.text = *p.text;
      r.phrased = true;
    } else {
      r.responder_error = p.error;
    }
  }
  return r;
}

Reply Assistant::converse(const std::string& session_id, const std::string& user, const std::string& text, int64_t now,
                          const Understanding& understood) {
  Reply r;
  // Idle sessions expire; a session belongs to the user it started with.
  options_.sessions->with_session(session_id, now, options_.session_ttl_s, [&](Session& s, bool fresh) {
    if (fresh) {
      s = Session();
      s.id = session_id;
      s.user = user;
    }
    if (s.user != user) {
      r.intent = "refused";
      r.text = "This conversation belongs to someone else; please start a new one.";
      return;
    }
    s.last_active = now;
    const bool chinese = text::contains_han(text);
    s.history.push_back({"user", text, ""});
    r = answer(s, text, chinese, now, understood);
    r.understood = understood.label;
    r.understood_confidence = understood.confidence;
    s.history.back().intent = r.intent;
    s.history.push_back({"assistant", r.text, r.intent});
  });
  return r;
}

Reply Assistant::handoff(Session& s, const std::string& why, bool chinese) const {
  Reply r;
  r.intent = "handoff";
  r.confidence = 1;
  r.handoff = true;
  s.handed_off = true;
  r.text = chinese ? "好的，我这就为您转接人工客服，请稍候。" : "I'm passing you to a colleague now; they will be with you shortly.";
  // The summary: why, who, and the conversation's last user messages.
  std::string last;
  int shown = 0;
  for (auto t = s.history.rbegin(); t != s.history.rend() && shown < 3; ++t)
    if (t->role == "user") last = fmt::format("\"{}\"{}{}", cut(t->text, 200), last.empty() ? "" : " / ", last), ++shown;
  r.summary = fmt::format("Hand-off ({}). User: {}. Last messages: {}", why, s.user.empty() ? "anonymous" : s.user, last);
  return r;
}

Reply Assistant::start_form(Session& s, const FormSpec& form, const std::string& message, const std::string& q,
                            const std::vector<Entity>& entities, bool chinese) {
  s.failures = 0;
  s.form = form.name;
  s.slots = nlohmann::json::object();
  s.confirming = false;
  auto reply = form_turn(s, form, message, q, entities, chinese, true);
  reply.entities = entities;
  return reply;
}

Reply Assistant::answer(Session& s, const std::string& message, bool chinese, int64_t now, const Understanding& understood) {
  const auto q = text::normalize_for_analysis(message);
  Reply r;
  EntityOptions eo = options_.entities;
  eo.now = now;
  r.entities = extract_entities(message, eo, knowledge_.graph);
  // The reply's language: Chinese for Han text, English for Latin words; a message of only ids,
  // numbers or emoji ("S00000004") keeps the conversation's language.
  if (!chinese) {
    std::string rest = q;
    for (const auto& e : r.entities) std::fill(rest.begin() + static_cast<long>(e.begin), rest.begin() + static_cast<long>(e.end), ' ');
    const bool latin = std::any_of(rest.begin(), rest.end(), [](char c) { return (c >= 'a' && c <= 'z'); });
    chinese = latin ? false : s.chinese;
  }
  s.chinese = chinese;
  if (q.find_first_not_of(" ") == std::string::npos) {
    r.intent = "empty";
    r.text = chinese ? "您好，请问有什么可以帮您？" : "Hello! How can I help you?";
    return r;
  }
  if (any_of_words(q, {"人工", "真人", "客服专员", "human", "real person", "an agent", "a person", "representative"}))
    return handoff(s, "asked for a person", chinese);
  // A very unhappy message goes to a person unless the assistant can act on it: "the kettle
  // arrived broken, I want a refund" starts the return, and "too salty" is a return's reason,
  // not a reason to hand off (see the fallback at the end).
  bool very_unhappy = false;
  if (knowledge_.analyzer && knowledge_.analyzer->model(demand::TextTask::Sentiment)) {
    const auto a = demand::answer(*knowledge_.analyzer->model(demand::TextTask::Sentiment), message, demand::TextTask::Sentiment);
    const bool negative = a.best == "negative" || a.best == "neg" || a.best == "0" || a.best == "负面";
    very_unhappy = negative && a.confidence >= 1 - options_.unhappy_below;
  }
  static const RE2 greeting(R"(^\s*(?:hi|hello|hey|good (?:morning|afternoon|evening)|你好|您好|在吗|嗨)[\s!！.。,，?？]*$)");
  if (RE2::FullMatch(q, greeting)) {
    s.failures = 0;
    r.intent = "greet";
    r.confidence = 1;
    r.text = chinese ? "您好！我可以帮您查订单、解答常见问题、介绍商品。" : "Hello! I can look up your orders, answer questions and tell you about our products.";
    return r;
  }
  if (!s.form.empty()) {
    const auto f = std::find_if(options_.forms.begin(), options_.forms.end(), [&](const FormSpec& x) { return x.name == s.form; });
    if (f != options_.forms.end()) {
      auto reply = form_turn(s, *f, message, q, r.entities, chinese, false);
      reply.entities = r.entities;
      return reply;
    }
    s.form.clear();
  }
  // A task starts its form, unless it is a how-to question the FAQ answers ("how do I return an
  // item?" wants the policy; "I want to return an item" wants the return).
  const bool how_to = any_of_words(q, {"how do i", "how can i", "how to", "怎么", "如何", "怎样"}) && knowledge_.faq &&
                      knowledge_.faq->answer(message).has_value();
  for (const auto& f : options_.forms)
    if (!how_to &&
        std::any_of(f.triggers.begin(), f.triggers.end(), [&](const std::string& t) { return q.find(t) != std::string::npos; }))
      return start_form(s, f, message, q, r.entities, chinese);
  if (any_of_words(q, {"thank", "谢谢", "多谢"})) {
    s.failures = 0;
    r.intent = "thanks";
    r.text = chinese ? "不客气，还有什么可以帮您的吗？" : "You're welcome! Anything else I can help with?";
    return r;
  }
  // The graph answers only when it names an entity and a relation, so it goes before the intent
  // model; the model's task goes before the FAQ, whose fuzzy matches would otherwise answer "I
  // want my money back" with the refund policy instead of starting the return.
  if (auto found = retrieve(s, message, q, From::Graph)) {
    s.failures = 0;
    found->entities = r.entities;
    return *found;
  }
  // The intent model's form: one that changes something (it asks for confirmation: cancel, return,
  // change the address) goes before the personal look-ups, whose phrases ("my order") also occur
  // in such requests; a look-up form (tracking) comes after them, which answer it directly.
  const FormSpec* model_form = nullptr;
  if (understood.known() && !how_to) {
    const auto action = options_.intent_actions.find(understood.label);
    if (action != options_.intent_actions.end() && action->second.rfind("form:", 0) == 0) {
      const auto f = std::find_if(options_.forms.begin(), options_.forms.end(),
                                  [&](const FormSpec& x) { return "form:" + x.name == action->second; });
      if (f != options_.forms.end()) model_form = &*f;
    }
  }
  if (model_form && model_form->confirm) return start_form(s, *model_form, message, q, r.entities, chinese);
  if (auto p = personal(s, q, r.entities, chinese, now)) {
    s.failures = 0;
    p->entities = r.entities;
    return *p;
  }
  if (model_form) return start_form(s, *model_form, message, q, r.entities, chinese);
  if (understood.known()) {
    const auto action = options_.intent_actions.find(understood.label);
    if (action != options_.intent_actions.end() && action->second == "handoff")
      return handoff(s, fmt::format("understood as {}", understood.label), chinese);
  }
  if (auto found = retrieve(s, message, q, From::Faq)) {
    s.failures = 0;
    found->entities = r.entities;
    return *found;
  }
  if (very_unhappy) return handoff(s, "very unhappy customer", chinese);
  if (++s.failures > options_.max_failures) return handoff(s, "not understood repeatedly", chinese);
  r.intent = "unknown";
  r.text = chinese ? "抱歉，我没有完全理解。您可以换个说法，或告诉我订单号、商品名称吗？"
                   : "Sorry, I didn't quite get that. Could you rephrase it, or give me an order number or a product name?";
  return r;
}

std::optional<Reply> Assistant::retrieve(Session& s, const std::string& message, const std::string& q, From from) {
  auto remember = [&](int64_t e) {
    s.recent.erase(std::remove(s.recent.begin(), s.recent.end(), e), s.recent.end());
    s.recent.insert(s.recent.begin(), e);
  };
  Reply r;
  if (knowledge_.graph && (static_cast<int>(from) & static_cast<int>(From::Graph))) {
    const auto g = knowledge_.graph->answer(message, s.recent);
    if (g.kind != GraphAnswer::Kind::None) {
      r.intent = g.kind == GraphAnswer::Kind::Lookup ? "graph_lookup" : "graph_attribute";
      r.confidence = 1;
      r.text = g.text;
      nlohmann::json source = {{"kind", "graph"}, {"relation", g.relation}};
      if (g.entity >= 0) {
        remember(g.entity);
        source["entity"] = knowledge_.graph->graph().entity_at(g.entity).name;
      }
      r.sources.push_back(std::move(source));
      return r;
    }
    // Names mentioned without a question still become the conversation's recent entities.
    for (const auto& m : knowledge_.graph->link(q))
      for (auto e : m.entities) remember(e);
  }
  if (knowledge_.faq && (static_cast<int>(from) & static_cast<int>(From::Faq)))
    if (const auto m = knowledge_.faq->answer(message)) {
      const auto& e = knowledge_.faq->entry(m->entry);
      r.intent = "faq";
      r.confidence = m->cosine;
      r.text = e.answer;
      r.sources.push_back({{"kind", "faq"}, {"id", e.id}, {"question", e.question}, {"score", m->score}});
      return r;
    }
  return std::nullopt;
}

Reply Assistant::form_turn(Session& s, const FormSpec& form, const std::string& message, const std::string& q,
                           const std::vector<Entity>& entities, bool chinese, bool started_now) {
  Reply r;
  r.intent = form.name;
  r.confidence = 1;
  auto finish = [&](const std::string& text, const std::string& intent) {
    s.form.clear();
    s.slots = nlohmann::json::object();
    s.confirming = false;
    r.intent = intent;
    r.text = text;
    return r;
  };
  // Cancelling the form: "never mind", "算了"; and "no" to the confirmation.
  const bool cancel = any_of_words(q, {"never mind", "nevermind", "forget it", "stop it", "算了", "不用了", "不办了", "先不"}) ||
                      (form.name != "cancel_order" && !started_now && any_of_words(q, {"cancel", "取消"}));
  if (cancel) return finish(chinese ? "好的，已取消。还有什么可以帮您？" : "OK, I've stopped that. Anything else?", "form_cancelled");
  if (s.user.empty()) return finish(chinese ? "请先登录，我才能为您办理。" : "Please sign in first so that I can do that for you.",
                                    "sign_in_needed");
  const auto orders = knowledge_.store ? orders_from_events(knowledge_.store->events_of({s.user}), titles_) : std::vector<Order>{};
  static const RE2 yes(R"(^\s*(?:yes|y|yeah|yep|ok|okay|sure|confirm|go ahead|please do|是|是的|好|好的|确认|可以|对|嗯)[\s!！.。,，]*$)");
  static const RE2 no(R"(^\s*(?:no|n|nope|don't|do not|不|否|不要|不用|不是)[\s!！.。,，]*$)");
  auto perform = [&]() {
    nlohmann::json slots = s.slots;
    if (slots.contains("order_id"))
      if (const auto o = find_order(orders, slots["order_id"].get<std::string>())) slots["order"] = describe_order(*o, chinese, &titles_zh_);
    r.action = {{"name", form.name}, {"slots", s.slots}};
    r.slots = s.slots;
    return finish(fill_template(chinese ? form.done_zh : form.done_en, slots), form.name + "_done");
  };
  if (s.confirming) {
    if (RE2::FullMatch(q, yes)) return perform();
    if (RE2::FullMatch(q, no)) return finish(chinese ? "好的，没有办理。还有什么可以帮您？" : "OK, I haven't done it. Anything else?",
                                            "form_cancelled");
    if (auto d = retrieve(s, message, q)) {
      d->text += chinese ? " " + fill_template(form.confirm_zh, s.slots) : " " + fill_template(form.confirm_en, s.slots);
      d->slots = s.slots;
      return *d;
    }
    r.slots = s.slots;
    r.text = chinese ? "请回答“是”或“否”。" + fill_template(form.confirm_zh, s.slots)
                     : "Please answer yes or no. " + fill_template(form.confirm_en, s.slots);
    return r;
  }
  // Fill what this message gives: entities of the slots' kinds, and the next free-text slot
  // (never from the message that started the form).
  bool filled = false;
  std::string problem;
  for (const auto& slot : form.slots) {
    if (s.slots.contains(slot.name)) continue;
    if (slot.kind == "text") {
      const bool next = std::none_of(form.slots.begin(), form.slots.end(), [&](const FormSlot& o) {
        return &o < &slot && !s.slots.contains(o.name);
      });
      if (!started_now && !filled && next && q.find_first_not_of(' ') != std::string::npos) {
        s.slots[slot.name] = message;
        filled = true;
      }
      continue;
    }
    const auto e = std::find_if(entities.begin(), entities.end(), [&](const Entity& x) { return x.kind == slot.kind; });
    if (e == entities.end()) continue;
    const auto order = slot.own_order ? find_order(orders, e->value) : std::nullopt;
    if (slot.own_order && !order) {
      problem = chinese ? fmt::format("您的账户里没有订单 {}。", e->text) : fmt::format("I can't find order {} in your account.", e->text);
      continue;
    }
    s.slots[slot.name] = order ? order->id : e->value;
    filled = true;
  }
  if (!filled && !started_now) {
    if (problem.empty())
      if (auto d = retrieve(s, message, q)) {
        // A question in the middle: answered, then back to the form.
        for (const auto& slot : form.slots)
          if (!s.slots.contains(slot.name)) {
            d->text += " " + prompt_for(slot, chinese);
            break;
          }
        d->slots = s.slots;
        return *d;
      }
    if (++s.failures > options_.max_failures) {
      s.form.clear();
      return handoff(s, fmt::format("could not complete {}", form.name), chinese);
    }
  } else if (filled) {
    s.failures = 0;
  }
  r.slots = s.slots;
  for (const auto& slot : form.slots)
    if (!s.slots.contains(slot.name)) {
      r.text = (problem.empty() ? "" : problem + " ") + prompt_for(slot, chinese);
      return r;
    }
  if (!form.confirm) return perform();
  s.confirming = true;
  r.text = fill_template(chinese ? form.confirm_zh : form.confirm_en, s.slots);
  return r;
}

std::optional<Reply> Assistant::personal(Session& s, const std::string& q, const std::vector<Entity>& entities, bool chinese,
                                         int64_t now) {
  const auto order_id = std::find_if(entities.begin(), entities.end(), [](const Entity& e) { return e.kind == "order_id"; });
  const bool about_orders = order_id != entities.end() ||
                            any_of_words(q, {"my order", "last order", "latest order", "recent order", "我的订单", "最近的订单",
                                             "上一个订单", "上个订单", "订单到哪", "订单状态"});
  const bool about_purchases = any_of_words(q, {"did i buy", "have i bought", "i bought", "my purchases", "买了什么", "买过什么",
                                                "买了哪些", "购买记录"});
  const bool wants_recommendation =
      any_of_words(q, {"recommend me", "recommend something", "suggest something", "what should i buy", "给我推荐", "推荐点",
                       "推荐一些", "推荐几个", "有什么推荐"}) &&
      !any_of_words(q, {"景点", "酒店", "餐馆", "餐厅", "restaurant", "hotel", "attraction"});
  if (!about_orders && !about_purchases && !wants_recommendation) return std::nullopt;
  Reply r;
  r.confidence = 1;
  if (s.user.empty()) {
    r.intent = "sign_in_needed";
    r.text = chinese ? "请先登录，我才能查看您的订单和购买记录。" : "Please sign in first so that I can look at your orders.";
    return r;
  }
  if (!knowledge_.store) return std::nullopt;
  // Only this user's events are read: another user's order id is simply not found here.
  const auto events = knowledge_.store->events_of({s.user});
  const auto live = knowledge_.recommend_service ? knowledge_.recommend_service->model() : nullptr;
  const recommend::RecommendModel* recommender = live ? live.get() : knowledge_.recommender;
  if (wants_recommendation && recommender) {
    recommend::RecommendRequest req;
    req.k = 3;
    req.exclude_items = knowledge_.store->unavailable_items();
    // Without consent to personalisation: what is popular, not what their history suggests.
    const bool personal = knowledge_.store->consent(s.user).personalisation;
    const auto recs = recommender->recommend(personal ? recommender->history(events) : recommend::Row{}, req);
    r.intent = "recommend";
    std::string list;
    for (const auto& x : recs) {
      list += fmt::format("{}{}", list.empty() ? "" : (chinese ? "、" : ", "), item_name(x.item, chinese));
      r.sources.push_back({{"kind", "recommender"}, {"item", x.item}, {"title", item_name(x.item, chinese)}, {"reason", x.reason}});
    }
    r.text = recs.empty() ? (chinese ? "暂时没有合适的推荐。" : "I have nothing to recommend right now.")
                          : (chinese ? "为您推荐：" + list + "。" : "You might like: " + list + ".");
    return r;
  }
  if (wants_recommendation) return std::nullopt;
  const auto orders = orders_from_events(events, titles_);
  r.sources.push_back({{"kind", "orders"}, {"user", s.user}});
  if (order_id != entities.end()) {
    r.intent = "order_status";
    const auto o = find_order(orders, order_id->value);
    r.text = o ? describe_order(*o, chinese, &titles_zh_)
               : (chinese ? fmt::format("您的账户里没有订单 {}，请核对订单号。", order_id->text)
                          : fmt::format("I can't find order {} in your account; please check the number.", order_id->text));
    return r;
  }
  if (about_purchases) {
    r.intent = "purchases";
    auto [from, to] = std::pair<int64_t, int64_t>{now - 30 * 86400, now + 1};
    std::string period = chinese ? "最近30天" : "in the last 30 days";
    if (any_of_words(q, {"last month", "上个月", "上月"})) {
      std::tie(from, to) = month_range(now, -1);
      period = chinese ? "上个月" : "last month";
    } else if (any_of_words(q, {"this month", "这个月", "本月"})) {
      std::tie(from, to) = month_range(now, 0);
      period = chinese ? "这个月" : "this month";
    } else if (const auto d = std::find_if(entities.begin(), entities.end(), [](const Entity& e) { return e.kind == "date"; });
               d != entities.end()) {
      // The entity's value is YYYY-MM-DD.
      from = days_from_civil(std::stoi(d->value.substr(0, 4)), static_cast<unsigned>(std::stoi(d->value.substr(5, 2))),
                             static_cast<unsigned>(std::stoi(d->value.substr(8, 2)))) * 86400;
      to = from + 86400;
      period = d->value;
    }
    const auto lines = bought_between(orders, from, to);
    std::string list;
    for (const auto& l : lines) list += fmt::format("{}{:g} x {}", list.empty() ? "" : (chinese ? "、" : ", "), l.quantity, l.title);
    r.text = lines.empty() ? (chinese ? fmt::format("您{}没有购买记录。", period) : fmt::format("You bought nothing {}.", period))
                           : (chinese ? fmt::format("您{}买了：{}。", period, list) : fmt::format("You bought {}: {}.", period, list));
    return r;
  }
  r.intent = "last_order";
  r.text = orders.empty() ? (chinese ? "您还没有订单。" : "You have no orders yet.")
                          : (chinese ? "您最近的订单：" : "Your latest order: ") + describe_order(orders.front(), chinese, &titles_zh_);
  return r;
}

}  // namespace persona::assistant
