#pragma once
// Moving a store between backends (SQLite <-> PostgreSQL) and proving the two hold the same.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "persona/store/store.h"

namespace persona::store {

struct TableCount {
  std::string table;
  int64_t rows = 0;
  std::string digest;  // of this table alone: which table differs
};

// A canonical digest (XXH3-128, hex) of every table's rows in key order. `with_times`: include
// when each ingest started and finished, how long its steps took and how many write transactions
// the store has seen (a copy keeps them; two separate ingests of the same files differ only there).
std::string digest(Store& store, bool with_times = true, std::vector<TableCount>* counts = nullptr);

struct CopyReport {
  std::vector<TableCount> tables;
  std::string digest_from, digest_to;
  bool same() const { return digest_from == digest_to; }
};

// Copies every row of `from` into `to`, which must hold no data yet (an empty new store), in
// pieces of `batch_rows`; sealed values are copied sealed (no key is needed). Then digests both.
CopyReport copy_store(Store& from, Store& to, const std::function<void(const std::string& table, int64_t rows)>& progress = {},
                      size_t batch_rows = 20000);

}  // namespace persona::store
