#include <algorithm>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/io/record.h"

namespace persona::io {

static bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Format format_from_path(const std::string& path) {
  std::string name = path;
  std::transform(name.begin(), name.end(), name.begin(), ::tolower);
  if (ends_with(name, ".gz")) name.resize(name.size() - 3);
  if (ends_with(name, ".csv")) return Format::Csv;
  if (ends_with(name, ".tsv") || ends_with(name, ".tab")) return Format::Tsv;
  if (ends_with(name, ".jsonl") || ends_with(name, ".ndjson") || ends_with(name, ".json")) return Format::Jsonl;
  if (ends_with(name, ".txt") || ends_with(name, ".data") || ends_with(name, ".dat")) return Format::Csv;
  throw Error("cannot tell the format from the file name", {path},
              "name it .csv, .tsv, .jsonl (optionally .gz) or set format = \"csv\" | \"tsv\" | \"jsonl\"");
}

Format parse_format(const std::string& name) {
  if (name == "csv") return Format::Csv;
  if (name == "tsv") return Format::Tsv;
  if (name == "jsonl" || name == "ndjson" || name == "json") return Format::Jsonl;
  throw Error(fmt::format("unknown format \"{}\"", name), {}, "use csv, tsv or jsonl");
}

const char* format_name(Format f) {
  switch (f) {
    case Format::Csv: return "csv";
    case Format::Tsv: return "tsv";
    case Format::Jsonl: return "jsonl";
  }
  return "?";
}

}  // namespace persona::io
