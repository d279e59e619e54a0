// Any bytes as the body of an ingest request (/v1/events, /v1/users, /v1/items, /v1/texts) and
// of feedback (/v1/feedback):
// streamed as a JSON array, one object or JSON Lines, then decoded per entity. A body that is
// none of these, nests deeper than 64 levels or holds too many records is refused (400/413);
// otherwise every record is either accepted or rejected with its index and a bounded reason,
// never both, never neither, and never a crash (the seed corpus has 60,000 nested arrays).
// The same bytes as a request target (path and query) for the transport's decoding: decoding only
// shortens, and a target without '?' has no parameters.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "persona/core/error.h"
#include "persona/server/http_transport.h"
#include "persona/server/json_records.h"

#include <httplib.h>  // the Request struct

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  {
    httplib::Request req;
    persona::server::decode_target(body, req);
    if (req.path.size() > size) std::abort();
    if (body.find('?') == std::string_view::npos && !req.params.empty()) std::abort();
    for (const auto& [key, value] : req.params)
      if (key.size() + value.size() > size) std::abort();
  }
  // Every entity decodes the same records: count them once, without decoding, to compare.
  size_t records = 0;
  try {
    persona::server::for_each_record(body, 1000, [&](size_t index, const nlohmann::json&) {
      if (index != records) std::abort();  // in order, none skipped
      ++records;
    });
  } catch (const persona::server::BodyRefused& e) {
    if (e.status != 400 && e.status != 413) std::abort();
    return 0;
  }
  for (const auto entity : {persona::Entity::User, persona::Entity::Item, persona::Entity::Event, persona::Entity::Text}) {
    const auto d = persona::server::decode_body(entity, body, 1000);
    const size_t accepted = d.batch.users.size() + d.batch.items.size() + d.batch.events.size() + d.batch.texts.size();
    if (d.records != records || accepted + d.rejected() != records) std::abort();
    const auto errors = d.errors();
    if (errors.size() != d.rejected()) std::abort();
    size_t last = 0;
    for (size_t i = 0; i < errors.size(); ++i) {
      if (errors[i].index >= records || (i > 0 && errors[i].index <= last) || errors[i].reason.empty()) std::abort();
      if (errors[i].value.size() > 256) std::abort();  // error values are excerpts, never whole values
      last = errors[i].index;
    }
    for (const auto& r : d.batch.rejects)
      if (r.raw.size() > 4096 + 3) std::abort();  // an excerpt, bounded after redaction too
  }
  // Feedback: every record stored or named, the names bounded, what is kept valid as stored.
  const auto f = persona::server::decode_feedback(body, 1000, {}, 1764590400);
  if (f.records != records || f.rows.size() + f.errors.size() != records) std::abort();
  for (const auto& e : f.errors)
    if (e.index >= records || e.reason.empty() || e.value.size() > 200) std::abort();
  for (const auto& row : f.rows)
    if (row.request_id.empty() || row.request_id.size() > 64 || row.user.empty() || row.item.empty() ||
        !persona::is_feedback_kind(row.kind) || row.position < -1 || !(row.value >= 0))
      std::abort();
  return 0;
}
