// Any bytes through the CSV reader (with small limits so oversize paths run too): it must
// neither crash nor hang, and every record must come with a line number that only grows.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "persona/core/error.h"
#include "persona/io/csv_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  persona::io::CsvOptions options;
  // The first byte picks the dialect, so one corpus covers them all.
  const uint8_t mode = data[0];
  options.delimiter = (mode & 3) == 0 ? "," : (mode & 3) == 1 ? "\t" : (mode & 3) == 2 ? "::" : ";";
  options.quote = (mode & 4) ? 0 : '"';
  options.header = (mode & 8) == 0;
  options.max_record_bytes = (mode & 16) ? 64 : 4096;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    persona::io::CsvReader reader(persona::io::ByteSource::from_memory(std::move(text), "fuzz.csv"), options);
    persona::io::Record record;
    int64_t last = 0;
    while (reader.next(record)) {
      if (record.line <= last) std::abort();
      last = record.line;
      for (auto f : record.fields) (void)f.size();
    }
  } catch (const persona::Error&) {
    // A clear error (a malformed header) is an allowed outcome.
  }
  return 0;
}
