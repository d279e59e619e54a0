// Any bytes through the JSON Lines reader: no crash, no hang, line numbers only grow.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "persona/core/error.h"
#include "persona/io/jsonl_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    persona::io::JsonlReader reader(persona::io::ByteSource::from_memory(std::move(text), "fuzz.jsonl"),
                                    {"user", "item", "a.b", "n"}, 4096);
    persona::io::Record record;
    int64_t last = 0;
    while (reader.next(record)) {
      if (record.line <= last) std::abort();
      last = record.line;
      if (record.fields.size() != 4) std::abort();
    }
  } catch (const persona::Error&) {
  }
  return 0;
}
