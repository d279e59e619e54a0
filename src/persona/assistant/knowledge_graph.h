#pragma once
// The assistant's knowledge graph: entities (a name and a type) and triples (entity, relation,
// entity or literal), built from the shop's catalogue (item -> category, brand, price,
// availability), from triples files (policies and other facts) and from the CrossWOZ databases
// (attractions, hotels, restaurants and their "nearby" relations). Persisted in the store.
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "persona/store/store.h"

namespace persona::assistant {

// One value of a relation: an entity (id >= 0, name) or a literal.
struct GraphValue {
  int64_t entity = -1;
  std::string text;
};

class KnowledgeGraph {
 public:
  KnowledgeGraph() = default;
  explicit KnowledgeGraph(store::Graph graph);

  // The entity of this type and name, created when new. Names are matched after normalisation
  // (NFKC, case folding), so "iPhone 15" and "ｉｐｈｏｎｅ 15" are one entity.
  int64_t entity(const std::string& name, const std::string& type);
  void relate(int64_t subject, const std::string& relation, int64_t object);
  void set(int64_t subject, const std::string& relation, const std::string& literal);
  // Another name for an entity (an item id beside its title).
  void alias(int64_t entity, const std::string& name);

  // Entities called `name` (any type), after normalisation.
  std::vector<int64_t> find(std::string_view name) const;
  std::vector<GraphValue> values(int64_t subject, const std::string& relation) const;
  std::vector<std::string> relations_of(int64_t subject) const;
  // A numeric literal of a relation ("4.5", "60", "1354"): the first number in its text.
  std::optional<double> number(int64_t subject, const std::string& relation) const;
  std::vector<int64_t> entities_of_type(const std::string& type) const;

  const store::GraphEntity& entity_at(int64_t id) const { return graph_.entities.at(static_cast<size_t>(id)); }
  size_t entity_count() const { return graph_.entities.size(); }
  size_t triple_count() const { return graph_.triples.size(); }
  std::vector<std::string> types() const;
  std::vector<std::string> relations() const;
  // Every name and alias, normalised, with its entity: what entity linking matches against.
  const std::unordered_map<std::string, std::vector<int64_t>>& names() const { return by_name_; }
  const store::Graph& rows() const { return graph_; }

 private:
  void index(size_t triple);

  store::Graph graph_;
  std::unordered_map<std::string, std::vector<int64_t>> by_name_;
  std::unordered_map<std::string, int64_t> by_type_and_name_;
  std::unordered_map<int64_t, std::vector<size_t>> by_subject_;
};

// Normalised form of a name for matching (NFKC, case folding, white space collapsed).
std::string name_key(std::string_view name);

// Item -> "category", "brand", "price", "available" (and the item id as an alias) from the store's
// catalogue; category paths add "parent" relations between categories.
void add_catalogue(KnowledgeGraph& graph, store::Store& store);
// Triples from a CSV file with a header: subject,subject_type,relation,object[,object_type].
// With an object_type the object is an entity, else a literal (policies: "Returns,policy,days,30").
size_t add_triples_file(KnowledgeGraph& graph, const std::string& path);
// The CrossWOZ databases in `dir` (crosswoz_{attraction,hotel,restaurant}_db.json): every record
// an entity of its domain (景点, 酒店, 餐馆), scalar fields literals, list fields one literal each,
// and 周边景点 / 周边酒店 / 周边餐馆 relations to the named entities. Returns the records added.
size_t add_crosswoz(KnowledgeGraph& graph, const std::string& dir);

}  // namespace persona::assistant
