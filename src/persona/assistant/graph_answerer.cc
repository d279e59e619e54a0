#include "persona/assistant/graph_answerer.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <deque>
#include <map>

#include "persona/text/normalize.h"

namespace persona::assistant {
namespace {

// Words that ask for a relation, each with the relations it may mean, most likely first; the
// first one the entity has is answered ("多少钱" is a hotel's 价格 but an attraction's 门票).
// Relation names themselves match too (added from the graph).
const std::vector<std::pair<const char*, std::vector<const char*>>> kRelationWords = {
    {"地址", {"地址"}}, {"在哪", {"地址"}}, {"在哪里", {"地址"}}, {"在哪儿", {"地址"}}, {"什么地方", {"地址"}},
    {"位置", {"地址"}}, {"电话", {"电话"}}, {"号码", {"电话"}}, {"联系方式", {"电话"}},
    {"评分", {"评分"}}, {"几分", {"评分"}}, {"分数", {"评分"}}, {"口碑", {"评分"}}, {"评价", {"评分"}},
    {"门票", {"门票"}}, {"票价", {"门票"}}, {"收费", {"门票", "价格"}}, {"免费", {"门票"}},
    {"价格", {"价格", "人均消费", "门票", "price"}}, {"多少钱", {"价格", "人均消费", "门票", "price"}},
    {"价钱", {"价格", "人均消费", "门票", "price"}}, {"房价", {"价格"}}, {"贵不贵", {"价格", "人均消费", "门票", "price"}},
    {"人均", {"人均消费"}}, {"消费", {"人均消费"}}, {"营业时间", {"营业时间"}}, {"几点", {"营业时间"}},
    {"开门", {"营业时间"}}, {"关门", {"营业时间"}}, {"营业", {"营业时间"}},
    {"推荐菜", {"推荐菜"}}, {"招牌菜", {"推荐菜"}}, {"特色菜", {"推荐菜"}}, {"什么菜", {"推荐菜"}}, {"好吃", {"推荐菜"}},
    {"游玩时间", {"游玩时间"}}, {"玩多久", {"游玩时间"}}, {"多长时间", {"游玩时间"}}, {"玩多长", {"游玩时间"}},
    {"地铁", {"地铁"}}, {"设施", {"酒店设施"}}, {"类型", {"酒店类型"}}, {"档次", {"酒店类型"}}, {"星级", {"酒店类型"}},
    {"price", {"price", "价格", "人均消费", "门票"}}, {"how much", {"price", "价格", "人均消费", "门票"}},
    {"cost", {"price", "价格", "门票"}}, {"brand", {"brand"}}, {"made by", {"brand"}}, {"who makes", {"brand"}},
    {"category", {"category"}}, {"what kind", {"category"}}, {"in stock", {"available"}}, {"available", {"available"}},
    {"品牌", {"brand"}}, {"牌子", {"brand"}}, {"类别", {"category"}}, {"分类", {"category"}}, {"品类", {"category"}},
    {"有货", {"available"}}, {"有没有货", {"available"}}, {"库存", {"available"}}, {"缺货", {"available"}},
    {"address", {"地址"}}, {"where is", {"地址"}}, {"phone", {"电话"}}, {"rating", {"评分"}}, {"rated", {"评分"}},
    {"opening hours", {"营业时间"}}, {"ticket", {"门票"}},
};
const std::vector<const char*> kNearWords = {"附近", "周边", "周围", "旁边", "near", "nearby", "around"};
// Type words: which entity type a question is about.
const std::vector<std::pair<const char*, const char*>> kTypeWords = {
    {"景点", "景点"}, {"好玩", "景点"}, {"attraction", "景点"}, {"酒店", "酒店"}, {"宾馆", "酒店"}, {"住", "酒店"},
    {"hotel", "酒店"}, {"餐馆", "餐馆"}, {"餐厅", "餐馆"}, {"饭店", "餐馆"}, {"吃", "餐馆"}, {"restaurant", "餐馆"},
    {"product", "item"}, {"item", "item"}, {"商品", "item"}};
// Relations that are bookkeeping, never asked about.
bool internal_relation(const std::string& r) { return r == "alias" || r == "id" || r == "parent"; }

// The catalogue's relations are named in English; a Chinese answer names them in Chinese.
std::string chinese_label(const std::string& relation) {
  static const std::map<std::string, std::string> labels = {
      {"price", "价格"}, {"brand", "品牌"}, {"category", "类别"}, {"available", "库存"}, {"parent", "上级类别"}};
  const auto it = labels.find(relation);
  return it == labels.end() ? relation : it->second;
}

bool latin_word_byte(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

std::string join(const std::vector<GraphValue>& values, bool chinese, size_t most = 10) {
  std::string out;
  for (size_t i = 0; i < values.size() && i < most; ++i) out += (i ? (chinese ? "、" : ", ") : "") + values[i].text;
  if (values.size() > most)
    out += chinese ? fmt::format("等{}个", values.size()) : fmt::format(" and {} more", values.size() - most);
  return out;
}

}  // namespace

void PhraseMatcher::add(const std::string& phrase, int32_t value) {
  if (phrase.empty()) return;
  int32_t node = 0;
  for (unsigned char c : phrase) {
    int32_t next = child(node, c);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      auto& edges = nodes_[static_cast<size_t>(node)].next;
      edges.insert(std::lower_bound(edges.begin(), edges.end(), std::make_pair(c, 0)), {c, next});
      nodes_.emplace_back();
    }
    node = next;
  }
  nodes_[static_cast<size_t>(node)].outputs.emplace_back(value, static_cast<uint32_t>(phrase.size()));
}

int32_t PhraseMatcher::child(int32_t node, unsigned char c) const {
  const auto& edges = nodes_[static_cast<size_t>(node)].next;
  const auto it = std::lower_bound(edges.begin(), edges.end(), std::make_pair(c, 0),
                                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return it != edges.end() && it->first == c ? it->second : -1;
}

void PhraseMatcher::build() {
  // Breadth first: a node's failure link is the longest proper suffix that is also a prefix.
  std::deque<int32_t> queue;
  for (const auto& [c, next] : nodes_[0].next) {
    nodes_[static_cast<size_t>(next)].fail = 0;
    queue.push_back(next);
  }
  while (!queue.empty()) {
    const int32_t node = queue.front();
    queue.pop_front();
    for (const auto& [c, next] : nodes_[static_cast<size_t>(node)].next) {
      int32_t f = nodes_[static_cast<size_t>(node)].fail;
      while (f > 0 && child(f, c) < 0) f = nodes_[static_cast<size_t>(f)].fail;
      const int32_t target = child(f, c);
      auto& n = nodes_[static_cast<size_t>(next)];
      n.fail = target >= 0 && target != next ? target : 0;
      const auto& fail_node = nodes_[static_cast<size_t>(n.fail)];
      n.output_link = !fail_node.outputs.empty() ? n.fail : fail_node.output_link;
      queue.push_back(next);
    }
  }
}

std::vector<std::tuple<size_t, size_t, int32_t>> PhraseMatcher::find_all(std::string_view text) const {
  std::vector<std::tuple<size_t, size_t, int32_t>> out;
  int32_t node = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    while (node > 0 && child(node, c) < 0) node = nodes_[static_cast<size_t>(node)].fail;
    const int32_t next = child(node, c);
    node = next >= 0 ? next : 0;
    for (int32_t o = node; o >= 0; o = nodes_[static_cast<size_t>(o)].output_link)
      for (const auto& [value, length] : nodes_[static_cast<size_t>(o)].outputs) out.emplace_back(i + 1 - length, i + 1, value);
  }
  return out;
}

GraphAnswerer::GraphAnswerer(const KnowledgeGraph& graph) : graph_(graph) {
  for (const auto& [key, entities] : graph.names()) {
    std::u32string cps;
    text::decode_utf8(key, cps);
    if (cps.size() < 2) continue;  // one-character names would match everywhere
    names_.add(key, static_cast<int32_t>(name_entities_.size()));
    name_entities_.push_back(entities);
  }
  names_.build();
  std::map<std::string, std::vector<std::string>> words;
  for (const auto& [word, relations] : kRelationWords)
    for (const char* r : relations) words[text::normalize_for_analysis(word)].push_back(r);
  for (const auto& r : graph.relations())
    if (!internal_relation(r) && !words.count(name_key(r))) words[name_key(r)].push_back(r);
  for (auto& [word, relations] : words) {
    relations_.add(word, static_cast<int32_t>(relation_candidates_.size()));
    relation_candidates_.push_back(std::move(relations));
  }
  relations_.build();
}

std::vector<Mention> GraphAnswerer::link(std::string_view normalised) const {
  auto matches = names_.find_all(normalised);
  // Longest first, then leftmost; Latin names only on word boundaries ("pen" is not in "open").
  std::sort(matches.begin(), matches.end(), [](const auto& a, const auto& b) {
    const auto la = std::get<1>(a) - std::get<0>(a), lb = std::get<1>(b) - std::get<0>(b);
    return la != lb ? la > lb : std::get<0>(a) < std::get<0>(b);
  });
  std::vector<Mention> out;
  std::vector<uint8_t> used(normalised.size(), 0);
  for (const auto& [begin, end, value] : matches) {
    const auto first = static_cast<unsigned char>(normalised[begin]), last = static_cast<unsigned char>(normalised[end - 1]);
    if (latin_word_byte(first) && begin > 0 && latin_word_byte(static_cast<unsigned char>(normalised[begin - 1]))) continue;
    if (latin_word_byte(last) && end < normalised.size() && latin_word_byte(static_cast<unsigned char>(normalised[end]))) continue;
    if (std::any_of(used.begin() + static_cast<long>(begin), used.begin() + static_cast<long>(end), [](uint8_t u) { return u; })) continue;
    std::fill(used.begin() + static_cast<long>(begin), used.begin() + static_cast<long>(end), 1);
    out.push_back({begin, end, name_entities_[static_cast<size_t>(value)]});
  }
  std::sort(out.begin(), out.end(), [](const Mention& a, const Mention& b) { return a.begin < b.begin; });
  return out;
}

namespace {

// Where a type word first occurs in the question (npos when none), for each type word found.
std::vector<std::pair<size_t, std::string>> types_in(const std::string& q, size_t from = 0) {
  std::vector<std::pair<size_t, std::string>> out;
  for (const auto& [word, type] : kTypeWords) {
    const auto at = q.find(word, from);
    if (at != std::string::npos) out.emplace_back(at, type);
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t near_word_at(const std::string& q) {
  size_t at = std::string::npos;
  for (const char* w : kNearWords) at = std::min(at, q.find(w));
  return at;
}

}  // namespace

std::vector<std::vector<std::string>> GraphAnswerer::relations_in(const std::string& q) const {
  // Phrases in the question's order; a phrase inside a longer one ("价格" in "价格贵不贵") is dropped.
  auto matches = relations_.find_all(q);
  std::vector<std::tuple<size_t, size_t, int32_t>> kept;
  for (const auto& m : matches) {
    const bool inside = std::any_of(matches.begin(), matches.end(), [&](const auto& o) {
      return &o != &m && std::get<0>(o) <= std::get<0>(m) && std::get<1>(m) <= std::get<1>(o) &&
             std::get<1>(o) - std::get<0>(o) > std::get<1>(m) - std::get<0>(m);
    });
    if (!inside) kept.push_back(m);
  }
  std::sort(kept.begin(), kept.end());
  std::vector<std::pair<size_t, std::vector<std::string>>> groups;
  for (const auto& [begin, end, value] : kept) groups.emplace_back(begin, relation_candidates_[static_cast<size_t>(value)]);
  // "X附近有什么餐馆": the nearby relation of each type named after the near word (attractions,
  // hotels and restaurants when none is).
  const size_t near = near_word_at(q);
  if (near != std::string::npos) {
    auto types = types_in(q, near);
    std::vector<std::string> nearby;
    for (const auto& [at, type] : types)
      if (type != "item" && std::find(nearby.begin(), nearby.end(), "周边" + type) == nearby.end()) nearby.push_back("周边" + type);
    if (nearby.empty()) nearby = {"周边景点", "周边酒店", "周边餐馆"};
    for (const auto& r : nearby) groups.emplace_back(near, std::vector<std::string>{r});
    std::stable_sort(groups.begin(), groups.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  }
  std::vector<std::vector<std::string>> out;
  for (auto& [at, candidates] : groups) out.push_back(std::move(candidates));
  return out;
}

std::optional<GraphAnswer> GraphAnswerer::lookup(const std::string& q, bool chinese, const std::vector<Mention>& mentions) const {
  // A numeric condition makes a lookup: "评分4.5以上", "4.5 or more", "under 500".
  static const RE2 at_least_zh(R"((\d+(?:\.\d+)?)\s*(?:分|元|块)?\s*(?:以上|及以上|或以上|起))");
  static const RE2 at_most_zh(R"((\d+(?:\.\d+)?)\s*(?:分|元|块)?\s*(?:以下|及以下|以内|之内))");
  static const RE2 at_least_en(R"((?:at least|over|above|more than|from)\s*\$?(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*(?:or more|or above|or higher|\+))");
  static const RE2 at_most_en(R"((?:at most|under|below|less than|up to|cheaper than)\s*\$?(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*(?:or less|or below|or lower))");
  double value = 0;
  bool at_least = true;
  std::string a, b;
  if (RE2::PartialMatch(q, at_least_zh, &a) || RE2::PartialMatch(q, at_least_en, &a, &b)) at_least = true;
  else if (RE2::PartialMatch(q, at_most_zh, &a) || RE2::PartialMatch(q, at_most_en, &a, &b)) at_least = false;
  else return std::nullopt;
  value = std::stod(!a.empty() ? a : b);
  std::string type;
  for (const auto& [word, t] : kTypeWords)
    if (q.find(word) != std::string::npos) {
      type = t;
      break;
    }
  if (type.empty()) return std::nullopt;
  const bool rating = q.find("分") != std::string::npos || q.find("评") != std::string::npos || q.find("rat") != std::string::npos ||
                      q.find("star") != std::string::npos || (value <= 5 && q.find("元") == std::string::npos);
  std::string relation = rating ? "评分" : type == "酒店" ? "价格" : type == "餐馆" ? "人均消费" : type == "景点" ? "门票" : "price";
  // Near a named entity: its nearby entities of the type; otherwise every entity of the type.
  std::vector<int64_t> candidates;
  const bool near = std::any_of(kNearWords.begin(), kNearWords.end(), [&](const char* w) { return q.find(w) != std::string::npos; });
  if (near && !mentions.empty()) {
    for (auto e : mentions.front().entities)
      for (const auto& v : graph_.values(e, "周边" + type))
        if (v.entity >= 0) candidates.push_back(v.entity);
  } else {
    candidates = graph_.entities_of_type(type);
  }
  std::vector<std::pair<double, int64_t>> found;
  for (auto e : candidates) {
    const auto x = graph_.number(e, relation);
    if (x && (at_least ? *x >= value : *x <= value)) found.emplace_back(*x, e);
  }
  std::sort(found.begin(), found.end(), [&](const auto& l, const auto& r) {
    return l.first != r.first ? (at_least ? l.first > r.first : l.first < r.first) : l.second < r.second;
  });
  found.erase(std::unique(found.begin(), found.end()), found.end());
  GraphAnswer out;
  out.kind = GraphAnswer::Kind::Lookup;
  out.relation = relation;
  for (size_t i = 0; i < found.size() && i < 5; ++i) {
    const auto& name = graph_.entity_at(found[i].second).name;
    out.values.push_back({found[i].second, fmt::format("{} ({} {})", name, relation, found[i].first)});
  }
  if (out.values.empty()) {
    out.kind = GraphAnswer::Kind::None;
    out.reason = "nothing matches the condition";
  }
  out.text = phrase(out, chinese);
  return out;
}

GraphAnswer GraphAnswerer::answer(std::string_view question, const std::vector<int64_t>& recent) const {
  const auto full = text::normalize_for_analysis(question);
  const auto mentions = link(full);
  // Words inside a name are not asked about: "地铁" in "7天优品酒店(国贸劲松地铁站店)" is not the
  // metro, nor "酒店" the type. The rest of the question, with the names blanked, is; it also
  // says the language to answer in (an English question about a Chinese brand gets English).
  std::string q = full;
  for (const auto& m : mentions) std::fill(q.begin() + static_cast<long>(m.begin), q.begin() + static_cast<long>(m.end), ' ');
  const bool chinese = text::contains_han(q) || (q.find_first_not_of(" ") == std::string::npos && text::contains_han(full));
  if (auto l = lookup(q, chinese, mentions)) return *l;
  GraphAnswer out;
  std::vector<int64_t> entities;
  for (const auto& m : mentions) entities.insert(entities.end(), m.entities.begin(), m.entities.end());
  if (entities.empty() && !recent.empty()) {
    // "这家餐馆的地址": the most recent restaurant (the type named before any near word: "这个景点
    // 周边的餐馆" is about the attraction); with no type named, every recent entity in turn.
    const size_t near = near_word_at(q);
    for (const auto& [at, type] : types_in(q)) {
      if (at >= near) break;
      for (auto e : recent)
        if (graph_.entity_at(e).type == type) {
          entities.push_back(e);
          break;
        }
      if (!entities.empty()) break;
    }
    if (entities.empty()) entities = recent;
  }
  const auto asked = relations_in(q);
  if (entities.empty()) {
    out.reason = asked.empty() ? "no entity or attribute asked about" : "no entity named";
  } else if (asked.empty()) {
    out.entity = entities.front();
    out.reason = "no attribute asked about";
  } else {
    // The entity: the first that has what is asked first; then each attribute asked, as it has it.
    for (auto e : entities) {
      for (const auto& candidates : asked)
        for (const auto& r : candidates) {
          auto values = graph_.values(e, r);
          if (values.empty()) continue;
          if (std::any_of(out.facts.begin(), out.facts.end(), [&](const GraphFact& f) { return f.relation == r; })) break;
          out.facts.push_back({r, std::move(values)});
          break;
        }
      if (!out.facts.empty()) {
        out.kind = GraphAnswer::Kind::Attribute;
        out.entity = e;
        out.relation = out.facts.front().relation;
        out.values = out.facts.front().values;
        out.text = phrase(out, chinese);
        return out;
      }
    }
    out.entity = entities.front();
    out.relation = asked.front().front();
    out.reason = "no such attribute";
  }
  out.text = phrase(out, chinese);
  return out;
}

namespace {

std::string chinese_values(const GraphFact& f) {
  if (f.relation != "available") return join(f.values, true);
  std::vector<GraphValue> v = f.values;
  for (auto& x : v) x.text = x.text == "yes" ? "有货" : x.text == "no" ? "缺货" : x.text;
  return join(v, true);
}

}  // namespace

std::string GraphAnswerer::phrase(const GraphAnswer& a, bool chinese) const {
  const std::string name = a.entity >= 0 ? graph_.entity_at(a.entity).name : "";
  switch (a.kind) {
    case GraphAnswer::Kind::Attribute: {
      std::string text;
      for (const auto& f : a.facts)
        text += chinese ? fmt::format("{}的{}：{}。", name, chinese_label(f.relation), chinese_values(f))
                        : fmt::format("{}The {} of {}: {}.", text.empty() ? "" : " ",
                                      f.relation == "available" ? "availability" : f.relation, name, join(f.values, false));
      return text;
    }
    case GraphAnswer::Kind::Lookup:
      return chinese ? fmt::format("找到：{}。", join(a.values, true)) : fmt::format("Found: {}.", join(a.values, false));
    case GraphAnswer::Kind::None:
      break;
  }
  if (a.reason == "no such attribute")
    return chinese ? fmt::format("抱歉，我没有{}的{}信息。", name, a.relation)
                   : fmt::format("Sorry, I have no {} for {}.", a.relation, name);
  if (a.reason == "nothing matches the condition") return chinese ? "抱歉，没有符合条件的结果。" : "Sorry, nothing matches that.";
  return chinese ? "抱歉，我不确定您问的是哪一个。" : "Sorry, I am not sure what you are asking about.";
}

}  // namespace persona::assistant
