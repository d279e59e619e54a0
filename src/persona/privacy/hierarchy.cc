#include "persona/privacy/hierarchy.h"

#include <fmt/format.h>

#include <fstream>
#include <functional>

#include "persona/core/error.h"

namespace persona::privacy {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  size_t at = 0;
  for (size_t next; (next = line.find(sep, at)) != std::string::npos; at = next + 1) out.push_back(trim(line.substr(at, next - at)));
  out.push_back(trim(line.substr(at)));
  return out;
}

}  // namespace

Hierarchy::Hierarchy() { add("*", -1); }

int Hierarchy::add(const std::string& name, int parent) {
  const int id = static_cast<int>(name_.size());
  name_.push_back(name);
  parent_.push_back(parent);
  depth_.push_back(parent < 0 ? 0 : depth_[static_cast<size_t>(parent)] + 1);
  children_.emplace_back();
  if (parent >= 0) children_[static_cast<size_t>(parent)].push_back(id);
  by_name_.emplace(name, id);
  counted_ = false;
  return id;
}

int Hierarchy::find(const std::string& value) const {
  const auto it = by_name_.find(value);
  return it == by_name_.end() ? -1 : it->second;
}

int Hierarchy::leaf(const std::string& value) {
  const int id = find(value);
  return id >= 0 ? id : add(value, 0);
}

Hierarchy Hierarchy::load(const std::string& path, std::vector<std::string>* warnings) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read the hierarchy file", {path});
  Hierarchy h;
  std::vector<std::pair<std::string, std::string>> pairs;  // child, parent (the "a,b" layout)
  std::vector<int64_t> pair_lines;
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    line = trim(line);
    if (line.empty()) continue;
    if (line.find(';') != std::string::npos) {
      // leaf;parent;...;root: create the path from the root down.
      auto path_parts = split(line, ';');
      int parent = 0;
      for (size_t i = path_parts.size() - 1; i-- > 0;) {  // skip the root (last part)
        const auto& name = path_parts[i];
        const int known = h.find(name);
        if (known >= 0) {
          if (i == 0) h.problems_.push_back(fmt::format("{}:{}: \"{}\" listed again; its first place is kept", path, line_no, name));
          parent = known;
          continue;
        }
        parent = h.add(name, parent);
      }
    } else {
      const auto parts = split(line, ',');
      if (parts.size() != 2) throw Error(fmt::format("expected child,parent or value;parent;...;*, got \"{}\"", line), {path, line_no});
      pairs.emplace_back(parts[0], parts[1]);
      pair_lines.push_back(line_no);
    }
  }
  // child,parent pairs in any order: attach each child once its parent exists.
  std::vector<bool> done(pairs.size(), false);
  for (bool progress = true; progress;) {
    progress = false;
    for (size_t i = 0; i < pairs.size(); ++i) {
      if (done[i]) continue;
      const auto& [child, parent] = pairs[i];
      const int p = parent == "*" ? 0 : h.find(parent);
      if (p < 0) continue;
      if (h.find(child) >= 0) h.problems_.push_back(fmt::format("{}:{}: \"{}\" listed again; its first place is kept", path, pair_lines[i], child));
      else h.add(child, p);
      done[i] = progress = true;
    }
  }
  for (size_t i = 0; i < pairs.size(); ++i)
    if (!done[i])
      throw Error(fmt::format("\"{}\" has the parent \"{}\", which never reaches the root \"*\"", pairs[i].first, pairs[i].second),
                  {path, pair_lines[i]});
  if (warnings) *warnings = h.problems_;
  return h;
}

void Hierarchy::recount() const {
  leaves_.assign(name_.size(), 0);
  for (size_t n = name_.size(); n-- > 0;) {  // children always come after their parent
    if (children_[n].empty()) leaves_[n] = 1;
    if (parent_[n] >= 0) leaves_[static_cast<size_t>(parent_[n])] += leaves_[n];
  }
  counted_ = true;
}

int64_t Hierarchy::leaves_under(int node) const {
  if (!counted_) recount();
  return leaves_[static_cast<size_t>(node)];
}

int Hierarchy::lowest_common_ancestor(int a, int b) const {
  while (depth(a) > depth(b)) a = parent(a);
  while (depth(b) > depth(a)) b = parent(b);
  while (a != b) a = parent(a), b = parent(b);
  return a;
}

int Hierarchy::child_towards(int ancestor, int node) const {
  while (node >= 0 && parent(node) != ancestor) node = parent(node);
  return node;
}

}  // namespace persona::privacy
