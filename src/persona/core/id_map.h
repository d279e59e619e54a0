#pragma once
// Interns external string ids (user "C-1042", item "85123A") to dense integers 0..n-1 so that
// hot data can be columnar arrays indexed by id.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace persona {

class IdMap {
 public:
  using Id = uint32_t;

  // Returns the id of `name`, assigning the next dense id when it is new.
  Id intern(std::string_view name);
  std::optional<Id> find(std::string_view name) const;
  std::string_view name(Id id) const { return names_[id]; }
  size_t size() const { return names_.size(); }
  void reserve(size_t n) { index_.reserve(n); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Names live in a deque so that the string_view keys stay valid as it grows.
  std::deque<std::string> names_;
  std::unordered_map<std::string_view, Id, Hash, std::equal_to<>> index_;
};

}  // namespace persona
