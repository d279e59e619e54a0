#include "persona/io/redis_stream.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "persona/io/redis_client.h"

namespace persona::io {
namespace {

// The longest a read blocks: the connection's timeout must exceed it.
constexpr std::chrono::milliseconds kMaxBlock{2000};

// "ms-seq" as a key; false when it is not one.
bool parse_id(const std::string& id, store::StreamEntryKey& key) {
  const auto dash = id.find('-');
  if (dash == std::string::npos) return false;
  const char* end = id.data() + id.size();
  return std::from_chars(id.data(), id.data() + dash, key.hi).ptr == id.data() + dash &&
         std::from_chars(id.data() + dash + 1, end, key.lo).ptr == end;
}

std::string id_of(const store::StreamEntryKey& key) { return fmt::format("{}-{}", key.hi, key.lo); }

// An entry's fields as one JSON object: its one field when that holds an object, else the fields
// as strings (the mapping converts them as it does CSV's).
StreamEntry entry_of(const redis::Reply& entry) {
  StreamEntry out;
  const std::string id = entry.elements.size() > 0 ? entry.elements[0].text : "";
  if (!parse_id(id, out.key)) {
    out.problem = fmt::format("not a stream entry id: {}", id);
    return out;
  }
  if (entry.elements.size() < 2 || entry.elements[1].nil()) {
    out.problem = "deleted from the stream before it was read";
    return out;
  }
  const auto& fields = entry.elements[1].elements;
  if (fields.size() == 2) {
    const std::string& value = fields[1].text;
    const auto first = value.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && value[first] == '{') {
      out.json = value;
      return out;
    }
  }
  nlohmann::json object = nlohmann::json::object();
  for (size_t i = 0; i + 1 < fields.size(); i += 2) object[fields[i].text] = fields[i + 1].text;
  out.json = object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return out;
}

bool is_nogroup(const Error& e) { return std::string(e.what()).find("NOGROUP") != std::string::npos; }

// Redis out of reach is the consumer's to wait out (StreamUnavailable), whatever was asked.
template <typename F>
auto reachable(const std::string& name, F&& f) {
  try {
    return f();
  } catch (const redis::Unavailable& e) {
    throw StreamUnavailable(fmt::format("Redis cannot be reached: {}", e.reason()), {name},
                            "the consumer reads on once it is back");
  }
}

}  // namespace

RedisStreamOptions parse_redis_stream_url(const std::string& url) {
  constexpr std::string_view scheme = "redis-stream://";
  if (url.rfind(scheme, 0) != 0)
    throw Error("not a Redis stream", {url}, "redis-stream://HOST[:PORT][/DB]/KEY");
  const auto slash = url.rfind('/');
  if (slash < scheme.size() || slash + 1 == url.size())
    throw Error("the Redis stream names no key", {url}, "redis-stream://HOST[:PORT][/DB]/KEY");
  RedisStreamOptions o;
  o.url = "redis://" + url.substr(scheme.size(), slash - scheme.size());
  o.key = url.substr(slash + 1);
  return o;
}

RedisStream::RedisStream(RedisStreamOptions options) : options_(std::move(options)) {
  if (options_.consumer.empty()) options_.consumer = default_consumer_name();
  name_ = fmt::format("redis-stream://{}/{}#{}", redis::printable_url(options_.url).substr(8), options_.key, options_.group);
  try {
    ensure_group();
  } catch (const redis::Unavailable& e) {  // at the start: a wrong URL is likelier than an outage
    throw Error(fmt::format("cannot reach Redis: {}", e.reason()), {name_},
                "start redis-server there, or give the stream's URL: redis-stream://HOST[:PORT][/DB]/KEY");
  }
}

RedisStream::~RedisStream() = default;

std::string RedisStream::position(const store::StreamEntryKey& key) const { return "entry " + id_of(key); }

redis::Connection& RedisStream::connection() {
  if (conn_ && conn_->ok()) return *conn_;
  if (conn_) {  // lost: acknowledgements may have been lost with it, so this consumer's pending entries come first again
    conn_.reset();
    own_pending_done_ = false;
    own_pending_after_ = "0";
  }
  conn_ = std::make_unique<redis::Connection>(options_.url, kMaxBlock + std::chrono::seconds(2));
  return *conn_;
}

void RedisStream::ensure_group() {
  try {
    connection().command({"XGROUP", "CREATE", options_.key, options_.group, "0", "MKSTREAM"});
  } catch (const redis::Unavailable&) {
    throw;
  } catch (const Error& e) {
    if (std::string(e.what()).find("BUSYGROUP") == std::string::npos) throw;  // it exists: fine
  }
}

std::vector<StreamEntry> RedisStream::read(const std::string& from, size_t max, std::chrono::milliseconds wait) {
  std::vector<std::string> args = {"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT", std::to_string(max)};
  if (from == ">") args.insert(args.end(), {"BLOCK", std::to_string(std::min(wait, kMaxBlock).count())});
  args.insert(args.end(), {"STREAMS", options_.key, from});
  redis::Reply reply;
  try {
    reply = connection().command(args);
  } catch (const redis::Unavailable&) {
    throw;
  } catch (const Error& e) {
    if (!is_nogroup(e)) throw;
    ensure_group();  // the stream or its group was deleted: from its start again
    own_pending_done_ = false;
    own_pending_after_ = "0";
    return {};
  }
  std::vector<StreamEntry> out;
  if (reply.nil() || reply.elements.empty()) return out;
  for (const auto& entry : reply.elements[0].elements.size() > 1 ? reply.elements[0].elements[1].elements : std::vector<redis::Reply>{})
    out.push_back(entry_of(entry));
  return out;
}

std::vector<StreamEntry> RedisStream::claim(size_t max) {
  const auto reply = connection().command({"XAUTOCLAIM", options_.key, options_.group, options_.consumer,
                                           std::to_string(options_.claim_after.count()), claim_from_, "COUNT",
                                           std::to_string(max)});
  std::vector<StreamEntry> out;
  if (reply.elements.size() < 2) return out;
  claim_from_ = reply.elements[0].text;  // "0-0" once the whole pending list was scanned
  for (const auto& entry : reply.elements[1].elements) {
    auto e = entry_of(entry);
    if (!in_hand_.contains(e.key)) out.push_back(std::move(e));
  }
  return out;
}

std::vector<StreamEntry> RedisStream::poll(size_t max, std::chrono::milliseconds wait) {
  auto entries = reachable(name_, [&] { return poll_reachable(max, wait); });
  for (const auto& e : entries) in_hand_.insert(e.key);
  return entries;
}

std::vector<StreamEntry> RedisStream::poll_reachable(size_t max, std::chrono::milliseconds wait) {
  // This consumer's own pending entries first: read before a crash, perhaps stored, not acknowledged.
  if (!own_pending_done_) {
    auto mine = read(own_pending_after_, max, wait);
    if (!mine.empty()) {
      own_pending_after_ = id_of(mine.back().key);
      return mine;
    }
    own_pending_done_ = true;
  }
  const auto now = std::chrono::steady_clock::now();
  if (now >= next_claim_) {
    auto claimed = claim(max);
    if (claim_from_ == "0-0") next_claim_ = now + options_.claim_after / 2;
    if (!claimed.empty()) return claimed;
  }
  return read(">", max, wait);
}

void RedisStream::acknowledge(const std::vector<store::StreamEntryKey>& keys) {
  if (keys.empty()) return;
  std::vector<std::string> args = {"XACK", options_.key, options_.group};
  for (const auto& k : keys) {
    args.push_back(id_of(k));
    in_hand_.erase(k);
  }
  reachable(name_, [&] { return connection().command(args); });
}

// Below the oldest entry pending anywhere in the group, and not past the last one delivered,
// nothing is delivered again.
std::vector<store::StreamEntryKey> RedisStream::watermarks() {
  try {
    return reachable(name_, [&] { return watermarks_reachable(); });
  } catch (const StreamUnavailable&) {
    throw;
  } catch (const Error&) {
    return {};  // the stream or its group was deleted: nothing to forget until the next poll creates them
  }
}

std::vector<store::StreamEntryKey> RedisStream::watermarks_reachable() {
  const auto pending = connection().command({"XPENDING", options_.key, options_.group});
  store::StreamEntryKey mark;
  if (pending.elements.size() >= 2 && !pending.elements[1].nil() && parse_id(pending.elements[1].text, mark)) return {mark};
  for (const auto& group : connection().command({"XINFO", "GROUPS", options_.key}).elements)
    for (size_t i = 0; i + 1 < group.elements.size(); i += 2)
      if (group.elements[i].text == "name" && group.elements[i + 1].text != options_.group) break;
      else if (group.elements[i].text == "last-delivered-id" && parse_id(group.elements[i + 1].text, mark)) {
        ++mark.lo;  // the last one delivered is acknowledged too (nothing is pending)
        return {mark};
      }
  return {};
}

int64_t RedisStream::lag() {
  redis::Reply groups;
  try {
    groups = reachable(name_, [&] { return connection().command({"XINFO", "GROUPS", options_.key}); });
  } catch (const StreamUnavailable&) {
    throw;
  } catch (const Error&) {
    return -1;  // deleted: the next poll creates it again
  }
  for (const auto& group : groups.elements) {
    bool ours = false;
    for (size_t i = 0; i + 1 < group.elements.size(); i += 2) {
      if (group.elements[i].text == "name") ours = group.elements[i + 1].text == options_.group;
      if (ours && group.elements[i].text == "lag") return group.elements[i + 1].type == redis::Reply::Type::Integer
                                                         ? group.elements[i + 1].integer
                                                         : -1;  // Redis cannot tell (entries were deleted)
    }
  }
  return -1;
}

}  // namespace persona::io
