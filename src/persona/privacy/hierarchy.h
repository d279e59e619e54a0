#pragma once
// A generalisation hierarchy for a categorical quasi-identifier: a tree whose leaves are the
// values and whose inner nodes are their generalisations, up to the root ("*"). Read from either
// file layout in use: one leaf per line with its ancestors ("Divorced;leave;*"), or child,parent
// pairs ("Divorced,leave" and "leave,*"). Faults found in real files are repaired and reported,
// never fatal: a value listed twice keeps its first place; a value the data holds but the file
// lacks ("?" for missing) becomes a leaf directly under the root.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace persona::privacy {

class Hierarchy {
 public:
  // A flat hierarchy: every value directly under the root.
  Hierarchy();
  // Throws persona::Error naming the file and line for an unreadable file or a cycle.
  static Hierarchy load(const std::string& path, std::vector<std::string>* warnings = nullptr);

  int root() const { return 0; }
  // The node of a value; adds it as a leaf under the root when unknown (returns its id).
  int leaf(const std::string& value);
  int find(const std::string& value) const;  // -1 when unknown
  int parent(int node) const { return parent_[static_cast<size_t>(node)]; }
  int depth(int node) const { return depth_[static_cast<size_t>(node)]; }
  const std::string& name(int node) const { return name_[static_cast<size_t>(node)]; }
  bool is_leaf(int node) const { return children_[static_cast<size_t>(node)].empty(); }
  const std::vector<int>& children(int node) const { return children_[static_cast<size_t>(node)]; }
  int lowest_common_ancestor(int a, int b) const;
  // Leaves below a node (1 for a leaf) and in the whole tree: a generalisation to `node` costs
  // leaves_under(node) / leaf_count() in NCP (0 for a leaf).
  int64_t leaves_under(int node) const;
  int64_t leaf_count() const { return leaves_under(0); }
  // The child of `ancestor` on the path to `node` (node itself when it is a child).
  int child_towards(int ancestor, int node) const;
  size_t size() const { return name_.size(); }
  std::vector<std::string> problems() const { return problems_; }

 private:
  int add(const std::string& name, int parent);
  void recount() const;
  std::vector<std::string> name_;
  std::vector<int> parent_, depth_;
  std::vector<std::vector<int>> children_;
  std::unordered_map<std::string, int> by_name_;
  mutable std::vector<int64_t> leaves_;
  mutable bool counted_ = false;
  std::vector<std::string> problems_;
};

}  // namespace persona::privacy
