#pragma once
// Questions to the knowledge graph, in Chinese and English: an attribute of a named entity ("故宫
// 的门票多少钱", "how much is the Kettle 3"), a relation ("what is near X", "X附近有什么餐馆"),
// and filtered lookups ("评分4.5以上的酒店", "hotels rated 4.5 or more near X"). Entities are found
// by dictionary matching of every name in the graph (Aho-Corasick over normalised text, so case
// and full/half width do not matter); a question without a name refers to the conversation's last
// entity ("它的地址呢").
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "persona/assistant/knowledge_graph.h"

namespace persona::assistant {

struct Mention {
  size_t begin = 0, end = 0;  // byte offsets in the normalised text
  std::vector<int64_t> entities;
};

// One attribute of the answer's entity.
struct GraphFact {
  std::string relation;
  std::vector<GraphValue> values;
};

struct GraphAnswer {
  enum class Kind { None, Attribute, Lookup } kind = Kind::None;
  int64_t entity = -1;               // Attribute: whose attribute
  std::string relation;              // the (first) relation asked about, or filtered on
  std::vector<GraphValue> values;    // Attribute: its values; Lookup: the entities found
  std::vector<GraphFact> facts;      // Attribute: every attribute asked ("地址和电话"), in the question's order
  std::string text;                  // the answer, phrased in the question's language
  std::string reason;                // None: why not ("no entity named", "no such attribute")
};

// Multi-pattern matching over normalised UTF-8 text (Aho-Corasick): every dictionary phrase in
// one pass, whatever the dictionary's size.
class PhraseMatcher {
 public:
  void add(const std::string& phrase, int32_t value);
  void build();
  // (begin, end, value) of every occurrence, in order of end.
  std::vector<std::tuple<size_t, size_t, int32_t>> find_all(std::string_view text) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> next;  // sorted by byte
    int32_t fail = 0, output_link = -1;
    std::vector<std::pair<int32_t, uint32_t>> outputs;   // (value, phrase length)
  };
  int32_t child(int32_t node, unsigned char c) const;
  std::vector<Node> nodes_{Node{}};
};

class GraphAnswerer {
 public:
  explicit GraphAnswerer(const KnowledgeGraph& graph);
  // Entity names in normalised text (text::normalize_for_analysis): longest first, not
  // overlapping, on word boundaries for Latin names.
  std::vector<Mention> link(std::string_view text) const;
  // The question's answer. Without a name in the question it refers to the conversation's recent
  // entities (most recent first): the first of the type the question names ("这家餐馆"), else the
  // first that has the attribute asked about.
  GraphAnswer answer(std::string_view question, const std::vector<int64_t>& recent = {}) const;
  const KnowledgeGraph& graph() const { return graph_; }

 private:
  // The attributes a question asks about, in its order: for each, the relations it may mean.
  std::vector<std::vector<std::string>> relations_in(const std::string& normalised) const;
  std::optional<GraphAnswer> lookup(const std::string& normalised, bool chinese, const std::vector<Mention>& mentions) const;
  std::string phrase(const GraphAnswer& a, bool chinese) const;

  const KnowledgeGraph& graph_;
  PhraseMatcher names_, relations_;
  std::vector<std::vector<int64_t>> name_entities_;
  std::vector<std::vector<std::string>> relation_candidates_;
};

}  // namespace persona::assistant
