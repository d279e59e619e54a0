// Any bytes as the body of an ingest request (/v1/events, /v1/users, /v1/items, /v1/texts):
// parsed as a JSON array, one object or JSON Lines, then decoded per entity. A body that is none
// of these is a persona::Error (the server's 400); otherwise every record is either accepted or
// rejected with its index and a reason, never both, never neither, and never a crash.
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
  std::vector<nlohmann::json> records;
  try {
    records = persona::server::parse_records(body, 1000);
  } catch (const persona::Error&) {
    return 0;
  }
  for (const auto entity : {persona::Entity::User, persona::Entity::Item, persona::Entity::Event, persona::Entity::Text}) {
    const auto d = persona::server::decode_records(entity, records);
    const size_t accepted = d.batch.users.size() + d.batch.items.size() + d.batch.events.size() + d.batch.texts.size();
    if (d.records != records.size() || accepted + d.errors.size() != records.size()) std::abort();
    if (d.batch.rejects.size() != d.errors.size()) std::abort();
    size_t last = 0;
    for (size_t i = 0; i < d.errors.size(); ++i) {
      if (d.errors[i].index >= records.size() || (i > 0 && d.errors[i].index <= last) || d.errors[i].reason.empty())
        std::abort();
      last = d.errors[i].index;
    }
  }
  return 0;
}
