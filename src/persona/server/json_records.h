#pragma once
// Records posted to the ingest routes: JSON in the data model's own field names (docs/api.md),
// decoded into a store batch. Every record is checked on its own; a bad one becomes an error
// naming its index, field, value and reason (and a reject row), and the others go on.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/core/model.h"
#include "persona/store/store.h"

namespace persona::server {

struct RecordError {
  size_t index = 0;  // 0-based position in the request
  std::string field, value, reason;
  nlohmann::json to_json() const;
};

struct DecodedRecords {
  size_t records = 0;
  store::Batch batch;                // rows' "line" is the record's index + 1
  std::vector<RecordError> errors;   // also in batch.rejects, for the reject log
  std::set<std::string> users;       // users whose data the accepted records touch
};

// The records of a request body: a JSON array of objects, one object, or JSON Lines (one object
// per line). Throws persona::Error (a 400) for a body that is none of these, or holds more than
// `max_records`.
std::vector<nlohmann::json> parse_records(std::string_view body, size_t max_records = 100000);

// Decodes records of one entity (user, item, event, text). Texts are PII-redacted.
DecodedRecords decode_records(Entity entity, const std::vector<nlohmann::json>& records);

}  // namespace persona::server
