#include "persona/core/id_map.h"

namespace persona {

IdMap::Id IdMap::intern(std::string_view name) {
  if (auto it = index_.find(name); it != index_.end()) return it->second;
  const Id id = static_cast<Id>(names_.size());
  names_.emplace_back(name);
  index_.emplace(std::string_view(names_.back()), id);
  return id;
}

std::optional<IdMap::Id> IdMap::find(std::string_view name) const {
  if (auto it = index_.find(name); it != index_.end()) return it->second;
  return std::nullopt;
}

}  // namespace persona
