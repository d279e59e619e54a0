#include "persona/store/store_copy.h"

#include <xxhash.h>

#include <fmt/format.h>

#include "persona/core/error.h"

namespace persona::store {

const std::vector<StoreTable>& store_tables() {
  static const std::vector<StoreTable> tables = {
      {"meta", {{"key", 'T'}, {"value", 'T'}}, "key"},
      {"users",
       {{"id", 'I'}, {"ext_id", 'T'}, {"age", 'I'}, {"gender", 'T'}, {"region", 'T'}, {"signup_ts", 'I'}, {"attrs", 'T'},
        {"consent_personalisation", 'I'}, {"consent_analytics", 'I'}},
       "id"},
      {"items",
       {{"id", 'I'}, {"ext_id", 'T'}, {"title", 'T'}, {"category", 'T'}, {"brand", 'T'}, {"price", 'R'}, {"text", 'T'},
        {"available", 'I'}, {"aliases", 'T'}, {"category_aliases", 'T'}},
       "id"},
      {"ingests",
       {{"id", 'I'}, {"source", 'T'}, {"path", 'T'}, {"content_hash", 'T'}, {"mapping_hash", 'T'}, {"status", 'T'},
        {"last_line", 'I'}, {"started", 'I'}, {"finished", 'I'}, {"summary", 'T'}},
       "id"},
      {"events",
       {{"id", 'I'}, {"user", 'I'}, {"item", 'I'}, {"type", 'I'}, {"quantity", 'R'}, {"value", 'R'}, {"ts", 'I'},
        {"session", 'T'}, {"ingest", 'I'}, {"line", 'I'}},
       "id"},
      {"texts",
       {{"id", 'I'}, {"user", 'I'}, {"item", 'I'}, {"kind", 'T'}, {"language", 'T'}, {"body", 'T'}, {"label", 'T'},
        {"category", 'T'}, {"sentiment", 'R'}, {"ts", 'I'}, {"ingest", 'I'}, {"line", 'I'}},
       "id"},
      {"rejects",
       {{"ingest", 'I'}, {"line", 'I'}, {"rule", 'T'}, {"field", 'T'}, {"value", 'T'}, {"reason", 'T'}, {"raw", 'T'},
        {"flagged", 'I'}},
       "ingest, line"},
      {"profiles", {{"user", 'T'}, {"profile", 'T'}}, "user"},
      {"kg_entities", {{"id", 'I'}, {"name", 'T'}, {"type", 'T'}}, "id"},
      {"kg_triples", {{"position", 'I'}, {"subject", 'I'}, {"relation", 'T'}, {"object", 'I'}, {"literal", 'T'}}, "position"},
      {"feedback",
       {{"request_id", 'T'}, {"item", 'T'}, {"kind", 'T'}, {"user_id", 'T'}, {"experiment", 'T'}, {"variant", 'T'},
        {"model", 'T'}, {"position", 'I'}, {"value", 'R'}, {"ts", 'I'}},
       "request_id, item, kind"},
  };
  return tables;
}

namespace {

// An ingest's summary without how long it took ("seconds" at any depth): the rest of it is what
// the ingest did, the same on every run of the same files.
std::string without_durations(const std::string& summary) {
  auto j = nlohmann::json::parse(summary, nullptr, false);
  if (j.is_discarded()) return summary;
  std::function<void(nlohmann::json&)> strip = [&](nlohmann::json& v) {
    if (v.is_object()) {
      v.erase("seconds");
      for (auto& [k, child] : v.items()) strip(child);
    } else if (v.is_array()) {
      for (auto& child : v) strip(child);
    }
  };
  strip(j);
  return j.dump();
}

}  // namespace

std::string digest(Store& store, bool with_times, std::vector<TableCount>* counts) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_state_t* table_state = XXH3_createState();
  XXH3_128bits_reset(state);
  auto add = [&](std::string_view bytes) {
    XXH3_128bits_update(state, bytes.data(), bytes.size());
    XXH3_128bits_update(table_state, bytes.data(), bytes.size());
  };
  auto hex = [](XXH128_hash_t h) { return fmt::format("{:016x}{:016x}", h.high64, h.low64); };
  for (const auto& table : store_tables()) {
    XXH3_128bits_reset(table_state);
    add(table.name);
    add(std::string_view("\0", 1));
    int64_t rows = 0;
    const bool meta = std::string_view(table.name) == "meta";
    store.export_table(table, [&](const StoreRow& row) {
      // "generation" counts the transactions that wrote the store (it names cache entries): one
      // ingest and a killed and resumed one write the same rows in different numbers of them.
      if (meta && !with_times && row[0] && *row[0] == "generation") return;
      ++rows;
      for (size_t c = 0; c < row.size(); ++c) {
        const std::string_view column = table.columns[c].name;
        const bool ingests = std::string_view(table.name) == "ingests";
        if (ingests && !with_times && (column == "started" || column == "finished")) continue;
        if (!row[c]) {
          add(std::string_view("N", 1));
          continue;
        }
        const std::string value = ingests && !with_times && column == "summary" ? without_durations(*row[c]) : *row[c];
        const uint64_t n = value.size();
        add("V");
        add(std::string_view(reinterpret_cast<const char*>(&n), sizeof n));  // length first: no two rows collide
        add(value);
      }
    });
    if (counts) counts->push_back({table.name, rows, hex(XXH3_128bits_digest(table_state))});
  }
  const std::string whole = hex(XXH3_128bits_digest(state));
  XXH3_freeState(state);
  XXH3_freeState(table_state);
  return whole;
}

CopyReport copy_store(Store& from, Store& to, const std::function<void(const std::string&, int64_t)>& progress,
                      size_t batch_rows) {
  for (const auto& table : store_tables()) {
    bool empty = true;
    to.export_table(table, [&](const StoreRow&) { empty = false; });
    if (!empty)
      throw Error(fmt::format("the destination store already holds data (table {})", table.name), {},
                  "copy into a new, empty store (a new file, or a database made with createdb)");
  }
  CopyReport report;
  for (const auto& table : store_tables()) {
    std::vector<StoreRow> rows;
    int64_t n = 0;
    auto flush = [&] {
      if (rows.empty()) return;
      to.import_rows(table, rows);
      n += static_cast<int64_t>(rows.size());
      rows.clear();
      if (progress) progress(table.name, n);
    };
    from.export_table(table, [&](const StoreRow& row) {
      rows.push_back(row);
      if (rows.size() >= batch_rows) flush();
    });
    flush();
    report.tables.push_back({table.name, n});
  }
  report.digest_from = digest(from);
  report.digest_to = digest(to);
  return report;
}

std::string model_checksum(std::string_view bytes) {
  const auto h = XXH3_128bits(bytes.data(), bytes.size());
  return fmt::format("{:016x}{:016x}", h.high64, h.low64);
}

}  // namespace persona::store
