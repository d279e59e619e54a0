#include "persona/assistant/knowledge_graph.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/io/csv_reader.h"
#include "persona/io/input.h"
#include "persona/text/normalize.h"

namespace persona::assistant {

std::string name_key(std::string_view name) { return text::normalize_for_analysis(name); }

KnowledgeGraph::KnowledgeGraph(store::Graph graph) : graph_(std::move(graph)) {
  for (size_t e = 0; e < graph_.entities.size(); ++e) {
    const auto& ent = graph_.entities[e];
    by_name_[name_key(ent.name)].push_back(static_cast<int64_t>(e));
    by_type_and_name_.emplace(ent.type + '\x1f' + name_key(ent.name), static_cast<int64_t>(e));
  }
  for (size_t t = 0; t < graph_.triples.size(); ++t) index(t);
}

void KnowledgeGraph::index(size_t t) {
  const auto& tr = graph_.triples[t];
  by_subject_[tr.subject].push_back(t);
  if (tr.relation == "alias") by_name_[name_key(tr.literal)].push_back(tr.subject);
}

int64_t KnowledgeGraph::entity(const std::string& name, const std::string& type) {
  const auto key = type + '\x1f' + name_key(name);
  const auto it = by_type_and_name_.find(key);
  if (it != by_type_and_name_.end()) return it->second;
  const auto id = static_cast<int64_t>(graph_.entities.size());
  graph_.entities.push_back({name, type});
  by_type_and_name_.emplace(key, id);
  by_name_[name_key(name)].push_back(id);
  return id;
}

void KnowledgeGraph::relate(int64_t subject, const std::string& relation, int64_t object) {
  graph_.triples.push_back({subject, relation, object, ""});
  index(graph_.triples.size() - 1);
}

void KnowledgeGraph::set(int64_t subject, const std::string& relation, const std::string& literal) {
  graph_.triples.push_back({subject, relation, -1, literal});
  index(graph_.triples.size() - 1);
}

void KnowledgeGraph::alias(int64_t entity, const std::string& name) { set(entity, "alias", name); }

std::vector<int64_t> KnowledgeGraph::find(std::string_view name) const {
  const auto it = by_name_.find(name_key(name));
  if (it == by_name_.end()) return {};
  std::vector<int64_t> out = it->second;
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<GraphValue> KnowledgeGraph::values(int64_t subject, const std::string& relation) const {
  std::vector<GraphValue> out;
  const auto it = by_subject_.find(subject);
  if (it == by_subject_.end()) return out;
  for (size_t t : it->second) {
    const auto& tr = graph_.triples[t];
    if (tr.relation != relation) continue;
    if (tr.object >= 0) out.push_back({tr.object, graph_.entities.at(static_cast<size_t>(tr.object)).name});
    else out.push_back({-1, tr.literal});
  }
  return out;
}

std::vector<std::string> KnowledgeGraph::relations_of(int64_t subject) const {
  std::set<std::string> seen;
  const auto it = by_subject_.find(subject);
  if (it != by_subject_.end())
    for (size_t t : it->second) seen.insert(graph_.triples[t].relation);
  return {seen.begin(), seen.end()};
}

std::optional<double> KnowledgeGraph::number(int64_t subject, const std::string& relation) const {
  for (const auto& v : values(subject, relation)) {
    const auto& s = v.text;
    const auto start = s.find_first_of("0123456789");
    if (start == std::string::npos) continue;
    try {
      return std::stod(s.substr(start));
    } catch (const std::exception&) {
      continue;
    }
  }
  return std::nullopt;
}

std::vector<int64_t> KnowledgeGraph::entities_of_type(const std::string& type) const {
  std::vector<int64_t> out;
  for (size_t e = 0; e < graph_.entities.size(); ++e)
    if (graph_.entities[e].type == type) out.push_back(static_cast<int64_t>(e));
  return out;
}

std::vector<std::string> KnowledgeGraph::types() const {
  std::set<std::string> s;
  for (const auto& e : graph_.entities) s.insert(e.type);
  return {s.begin(), s.end()};
}

std::vector<std::string> KnowledgeGraph::relations() const {
  std::set<std::string> s;
  for (const auto& t : graph_.triples) s.insert(t.relation);
  return {s.begin(), s.end()};
}

void add_catalogue(KnowledgeGraph& graph, store::Store& store) {
  for (const auto& item : store.items()) {
    const auto e = graph.entity(item.title.empty() ? item.id : item.title, "item");
    if (!item.title.empty()) graph.alias(e, item.id);
    // Other names (a Chinese title): the same entity, so "小米手机壳571多少钱" finds it.
    for (const auto& name : split_aliases(item.aliases))
      if (name.find_first_not_of(' ') != std::string::npos) graph.alias(e, name);
    graph.set(e, "id", item.id);
    if (!item.category.empty()) {
      // "Home > Kitchen": the item is in Kitchen, and Kitchen's parent is Home.
      std::vector<std::string> levels;
      std::stringstream path(item.category);
      for (std::string level; std::getline(path, level, '>');) {
        const auto first = level.find_first_not_of(' '), last = level.find_last_not_of(' ');
        if (first != std::string::npos) levels.push_back(level.substr(first, last - first + 1));
      }
      for (size_t i = 1; i < levels.size(); ++i) {
        const auto child = graph.entity(levels[i], "category");
        if (graph.values(child, "parent").empty()) graph.relate(child, "parent", graph.entity(levels[i - 1], "category"));
      }
      if (!levels.empty()) graph.relate(e, "category", graph.entity(levels.back(), "category"));
    }
    if (!item.brand.empty()) graph.relate(e, "brand", graph.entity(item.brand, "brand"));
    if (item.price) graph.set(e, "price", fmt::format("{:.2f}", *item.price));
    if (item.available) graph.set(e, "available", *item.available ? "yes" : "no");
  }
}

size_t add_triples_file(KnowledgeGraph& graph, const std::string& path) {
  io::CsvReader reader(path);
  std::unordered_map<std::string, int> col;
  for (size_t c = 0; c < reader.columns().size(); ++c) col[reader.columns()[c]] = static_cast<int>(c);
  for (const char* need : {"subject", "subject_type", "relation", "object"})
    if (!col.count(need))
      throw Error(fmt::format("a triples file needs the column \"{}\"", need), {path, 1},
                  "header: subject,subject_type,relation,object[,object_type]");
  const int object_type = col.count("object_type") ? col["object_type"] : -1;
  size_t added = 0;
  io::Record r;
  while (reader.next(r)) {
    if (!r.problem.empty()) throw Error(r.problem, {path, r.line});
    auto field = [&](int c) { return c >= 0 && static_cast<size_t>(c) < r.fields.size() ? std::string(r.fields[static_cast<size_t>(c)]) : ""; };
    const auto subject = field(col["subject"]), type = field(col["subject_type"]), relation = field(col["relation"]),
               object = field(col["object"]);
    if (subject.empty() || type.empty() || relation.empty() || object.empty())
      throw Error("a triple needs a subject, its type, a relation and an object", {path, r.line});
    const auto s = graph.entity(subject, type);
    const auto otype = field(object_type);
    if (otype.empty()) graph.set(s, relation, object);
    else graph.relate(s, relation, graph.entity(object, otype));
    ++added;
  }
  return added;
}

size_t add_crosswoz(KnowledgeGraph& graph, const std::string& dir) {
  namespace fs = std::filesystem;
  // The nearby lists name entities of another domain: link by name once every record exists.
  const std::vector<std::pair<std::string, std::string>> files = {
      {"crosswoz_attraction_db.json", "景点"}, {"crosswoz_hotel_db.json", "酒店"}, {"crosswoz_restaurant_db.json", "餐馆"}};
  const std::map<std::string, std::string> nearby = {{"周边景点", "景点"}, {"周边酒店", "酒店"}, {"周边餐馆", "餐馆"}};
  struct Pending {
    int64_t subject;
    std::string relation, type, name;
  };
  std::vector<Pending> links;
  size_t records = 0;
  for (const auto& [file, domain] : files) {
    const auto path = (fs::path(dir) / file).string();
    if (!fs::exists(path)) throw Error("cannot read the CrossWOZ database", {path}, "give the folder of crosswoz_*_db.json");
    const std::string text = io::read_small_input(path, "CrossWOZ database", 1u << 30);
    const nlohmann::json db = parse_json_or_throw(text, {path});
    if (!db.is_array()) throw Error("expected a JSON array of [name, record] pairs", {path});
    for (const auto& entry : db) {
      if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() || !entry[1].is_object()) continue;
      const auto e = graph.entity(entry[0].get<std::string>(), domain);
      ++records;
      for (const auto& [key, value] : entry[1].items()) {
        if (key == "名称" || key == "领域") continue;
        if (nearby.count(key) && value.is_array()) {
          for (const auto& v : value)
            if (v.is_string()) links.push_back({e, key, nearby.at(key), v.get<std::string>()});
          continue;
        }
        auto literal = [](const nlohmann::json& v) {
          if (v.is_string()) return v.get<std::string>();
          if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
          if (v.is_number()) return fmt::format("{}", v.get<double>());
          return v.dump();
        };
        if (value.is_array()) {
          for (const auto& v : value) graph.set(e, key, literal(v));
        } else if (!value.is_null()) {
          graph.set(e, key, literal(value));
        }
      }
    }
  }
  for (const auto& l : links) graph.relate(l.subject, l.relation, graph.entity(l.name, l.type));
  return records;
}

}  // namespace persona::assistant
