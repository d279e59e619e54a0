#pragma once
// Records posted to the ingest routes: JSON in the data model's own field names (docs/api.md),
// decoded into a store batch. Every record is checked on its own; a bad one becomes an error
// naming its index, field, value and reason (and a reject row), and the others go on.
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/core/error.h"
#include "persona/core/model.h"
#include "persona/core/time.h"
#include "persona/store/store.h"

namespace persona::server {

struct RecordError {
  size_t index = 0;  // 0-based position in the request
  std::string field, value, reason;
  nlohmann::json to_json() const;
};

struct DecodedRecords {
  size_t records = 0;
  store::Batch batch;                // rows' "line" is the record's index + 1; a bad record is a reject row
  std::set<std::string> users;       // users whose data the accepted records touch
  size_t rejected() const { return batch.rejects.size(); }
  // The first `limit` bad records, as the answer lists them (read from the reject rows: a body of
  // 100,000 bad records keeps one row each, not two).
  std::vector<RecordError> errors(size_t limit = SIZE_MAX) const;
};

// A body the server refuses whole: `status` 400 (not JSON, nested too deep, empty) or 413 (more
// records than allowed).
class BodyRefused : public Error {
 public:
  BodyRefused(int status, std::string message, std::string hint) : Error(std::move(message), {}, std::move(hint)), status(status) {}
  int status;
};

// The records of a request body, streamed: a JSON array of records, one object, or JSON Lines (one
// object per line). `on_record(index, value)` sees each record as soon as it is parsed, and the
// value is freed after it, so a body never exists as one document in memory. Nesting is bounded
// (kMaxJsonDepth) and records are counted while parsing: the first one past `max_records` stops
// the parse. Throws BodyRefused for a body that is none of these.
void for_each_record(std::string_view body, size_t max_records,
                     const std::function<void(size_t index, const nlohmann::json& record)>& on_record);

// Decodes the records of one entity (user, item, event, text) in a body (for_each_record). Texts
// are PII-redacted. Timestamps outside `window` are rejected.
DecodedRecords decode_body(Entity entity, std::string_view body, size_t max_records = 100000,
                           const TimeWindow& window = {});

// Feedback on served lists (POST /v1/feedback), in the same shapes as ingest: each record has
// request_id, user, item and kind (impression, click, cart, purchase, not_interested), and may
// have position, value (a purchase's revenue), model and time (ISO 8601 or seconds; default now).
struct DecodedFeedback {
  size_t records = 0;
  std::vector<store::Feedback> rows;
  std::vector<RecordError> errors;
};
DecodedFeedback decode_feedback(std::string_view body, size_t max_records, const TimeWindow& window, int64_t now);

}  // namespace persona::server
