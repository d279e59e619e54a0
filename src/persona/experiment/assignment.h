#pragma once
// Sticky assignment: a user's variant is a keyed hash (BLAKE2b) of their id under the
// experiment's random salt, so the same user always gets the same variant on every server and
// after every restart, and nothing per user is stored (an erased user leaves no assignment
// behind). A new salt per experiment makes experiments independent of each other.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace persona::experiment {

struct Variant {
  std::string name;   // a, b, control, ...
  std::string model;  // the model file as given (a path, or "current")
  double share = 0;   // of the users, summing to 1 over the variants
  std::string file;     // recommend: the experiment's own copy of the model (what is served)
  std::string version;  // its checksum's first 12 hex digits: the model version feedback names
  // assistant: the [assistant] settings this variant serves with, over the server's own (null:
  // the server's own, "current")
  nlohmann::json settings;
};

// 32 random bytes, in hex.
std::string new_salt();
// Which variant the user is in: the hash as a number in [0, 1), against the shares' running sum.
size_t assign(const std::string& salt, const std::string& user, const std::vector<Variant>& variants);
// "a=FILE,b=FILE" with "50/50" (or "" for equal shares): the variants, or a clear error.
std::vector<Variant> parse_variants(const std::string& spec, const std::string& split);

}  // namespace persona::experiment
