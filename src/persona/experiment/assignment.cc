#include "persona/experiment/assignment.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <set>

#include <fmt/format.h>
#include <sodium.h>

#include "persona/core/error.h"
#include "persona/privacy/crypto.h"
#include "persona/privacy/keys.h"

namespace persona::experiment {

std::string new_salt() { return privacy::random_hex(32); }

size_t assign(const std::string& salt, const std::string& user, const std::vector<Variant>& variants) {
  if (variants.empty()) throw Error("an experiment needs variants");
  unsigned char hash[8];
  crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(user.data()), user.size(),
                     reinterpret_cast<const unsigned char*>(salt.data()), std::min<size_t>(salt.size(), crypto_generichash_KEYBYTES_MAX));
  uint64_t bits = 0;
  std::memcpy(&bits, hash, sizeof bits);
  const double u = static_cast<double>(bits >> 11) * 0x1.0p-53;
  double cumulative = 0;
  for (size_t i = 0; i < variants.size(); ++i) {
    cumulative += variants[i].share;
    if (u < cumulative) return i;
  }
  return variants.size() - 1;
}

namespace {
std::vector<std::string> split_on(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}
bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 40) return false;
  for (unsigned char c : name)
    if (!std::isalnum(c) && c != '_' && c != '-') return false;
  return true;
}
}  // namespace

std::vector<Variant> parse_variants(const std::string& spec, const std::string& split) {
  std::vector<Variant> out;
  std::set<std::string> names;
  for (const auto& part : split_on(spec, ',')) {
    const auto eq = part.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == part.size())
      throw Error(fmt::format("a variant is NAME=MODEL, not \"{}\"", part), {}, "e.g. --variants a=current,b=models/als.model");
    Variant v{part.substr(0, eq), part.substr(eq + 1), 0};
    if (!valid_name(v.name))
      throw Error(fmt::format("variant name \"{}\": letters, digits, _ and - (at most 40)", v.name));
    if (!names.insert(v.name).second) throw Error(fmt::format("variant \"{}\" is given twice", v.name));
    out.push_back(std::move(v));
  }
  if (out.size() < 2) throw Error("an experiment needs at least two variants", {}, "e.g. --variants a=current,b=models/als.model");
  if (split.empty()) {
    for (auto& v : out) v.share = 1.0 / static_cast<double>(out.size());
    return out;
  }
  const auto shares = split_on(split, '/');
  if (shares.size() != out.size())
    throw Error(fmt::format("--split has {} shares for {} variants", shares.size(), out.size()), {}, "e.g. --split 50/50");
  double total = 0;
  for (size_t i = 0; i < shares.size(); ++i) {
    char* end = nullptr;
    const double s = std::strtod(shares[i].c_str(), &end);
    if (shares[i].empty() || *end != '\0' || !(s > 0) || !std::isfinite(s))
      throw Error(fmt::format("--split share \"{}\" is not a positive number", shares[i]));
    out[i].share = s;
    total += s;
  }
  for (auto& v : out) v.share /= total;
  return out;
}

}  // namespace persona::experiment
