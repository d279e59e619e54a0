// Where a store lives, named by one string everywhere (CLI, config, server).
#include <filesystem>
#include <string_view>

#include "persona/store/store.h"

namespace persona::store {
namespace {
bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }
}  // namespace

bool is_postgres_location(const std::string& location) {
  return starts_with(location, "postgresql://") || starts_with(location, "postgres://");
}

std::string sqlite_path(const std::string& location) {
  return starts_with(location, "sqlite:") ? location.substr(7) : location;
}

std::string printable_location(const std::string& location) {
  if (!is_postgres_location(location)) return sqlite_path(location);
  const auto scheme = location.find("://");
  const auto at = location.find('@');
  const auto colon = location.find(':', scheme + 3);
  if (at == std::string::npos || colon == std::string::npos || colon > at) return location;
  return location.substr(0, colon) + location.substr(at);
}

std::string normal_location(const std::string& location) {
  return is_postgres_location(location) ? location : sqlite_path(location);
}

std::string local_base(const std::string& location) {
  if (!is_postgres_location(location)) return sqlite_path(location);
  // postgresql://user@host:port/NAME?params or postgresql:///NAME?host=...
  std::string rest = location.substr(location.find("://") + 3);
  rest = rest.substr(0, rest.find('?'));
  const auto slash = rest.find('/');
  std::string name = slash == std::string::npos ? "" : rest.substr(slash + 1);
  for (char& c : name)
    if (c == '/' || c == '\\' || c == '%') c = '_';
  return name.empty() ? std::string("postgres") : name;
}

std::string store_identity(const std::string& location) {
  if (is_postgres_location(location)) return printable_location(location);
  return std::filesystem::absolute(sqlite_path(location)).lexically_normal().string();
}

bool store_exists(const std::string& location) {
  return is_postgres_location(location) || std::filesystem::exists(sqlite_path(location));
}

std::unique_ptr<Store> open_store(const std::string& location, const StoreOptions& options) {
  if (is_postgres_location(location)) return open_postgres_store(location, options);
  return open_sqlite_store(sqlite_path(location), options);
}

}  // namespace persona::store
