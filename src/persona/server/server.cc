#include "persona/server/server.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <xxhash.h>

#include "persona/assistant/assistant.h"
#include "persona/assistant/faq.h"
#include "persona/assistant/graph_answerer.h"
#include "persona/assistant/knowledge_graph.h"
#include "persona/assistant/settings.h"
#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/core/time.h"
#include "persona/demand/text_analysis.h"
#include "persona/experiment/experiments.h"
#include "persona/experiment/report.h"
#include "persona/pipeline/config.h"
#include "persona/pipeline/erasure.h"
#include "persona/pipeline/profiles.h"
#include "persona/pipeline/statistics.h"
#include "persona/privacy/access.h"
#include "persona/privacy/audit.h"
#include "persona/privacy/crypto.h"
#include "persona/privacy/dp.h"
#include "persona/privacy/keys.h"
#include "persona/recommend/recommend_model.h"
#include "persona/server/dashboard.h"
#include "persona/server/global_rate_limiter.h"
#include "persona/server/http_transport.h"
#include "persona/server/json_records.h"
#include "persona/server/metrics.h"
#include "persona/io/redis_client.h"
#include "persona/server/redis_sessions.h"
#include "persona/store/pg_shared.h"
#include "persona/store/store.h"
#include "persona/text/normalize.h"

// After Eigen (through the recommender): <resolv.h>, which httplib includes, defines a macro _res
// that breaks Eigen's parameter names.
#include <httplib.h>

namespace persona::server {
namespace fs = std::filesystem;

extern const char* const kOpenApiJson;  // generated from docs/openapi.json at build time

namespace {

// Records in one ingest request, counted while parsing (docs/operations.md, "Limits").
constexpr size_t kMaxRecordsPerRequest = 100000;
// Failed authentications allowed per client address and per key id: a burst of 10, then one a
// second.
constexpr double kFailedAuthPerS = 1, kFailedAuthBurst = 10;

// An error with its HTTP status; answered as application/problem+json.
struct HttpError : std::runtime_error {
  HttpError(int s, std::string t, const std::string& detail) : std::runtime_error(detail), status(s), title(std::move(t)) {}
  int status;
  std::string title;
  nlohmann::json extra = nlohmann::json::object();
  double retry_after = 0;  // > 0: a Retry-After header
};

std::string problem_body(int status, const std::string& title, const std::string& detail,
                         const nlohmann::json& extra = nlohmann::json::object()) {
  nlohmann::json j = {{"type", "about:blank"}, {"title", title}, {"status", status}, {"detail", detail}};
  for (const auto& [k, v] : extra.items()) j[k] = v;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

const char* status_title(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Internal Server Error" : "Error";
  }
}

// Store connections, one per request at a time: a store object is one connection (SQLite or
// PostgreSQL) and not shared between threads; WAL (or PostgreSQL's MVCC) lets the readers go on
// while one writer writes. A PostgreSQL connection that was cut is not given back.
class StorePool {
 public:
  StorePool(std::string path, store::StoreOptions options) : path_(std::move(path)), options_(std::move(options)) {}
  class Lease {
   public:
    Lease(StorePool& pool, std::unique_ptr<store::Store> s) : pool_(pool), store_(std::move(s)) {}
    ~Lease() { pool_.give_back(std::move(store_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    store::Store* operator->() { return store_.get(); }
    store::Store& operator*() { return *store_; }

   private:
    StorePool& pool_;
    std::unique_ptr<store::Store> store_;
  };
  Lease acquire() {
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        auto s = std::move(free_.back());
        free_.pop_back();
        return Lease(*this, std::move(s));
      }
    }
    return Lease(*this, store::open_store(path_, options_));
  }

 private:
  void give_back(std::unique_ptr<store::Store> s) {
    if (!s || !s->connected()) return;  // a cut database connection is dropped; the next acquire opens one
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(s));
  }
  std::string path_;
  store::StoreOptions options_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<store::Store>> free_;
};

// Recommendation answers by user and query, until that user's data, the catalogue or the model
// changes (here, or on another server of the same PostgreSQL store: its change feed says so), and
// at most `ttl` seconds. Served users are mostly repeat visitors; a hit costs a map look-up
// instead of a store read and a scoring pass.
class AnswerCache {
 public:
  void set_ttl(double seconds) { ttl_ = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)); }
  // The answer into `out` (its capacity reused), when there is a fresh one.
  bool get(const std::string& user, std::string_view query, std::string& out) const {
    std::shared_lock lock(mutex_);
    const auto u = by_user_.find(user);
    if (u == by_user_.end()) return false;
    for (const auto& e : u->second)
      if (e.query == query) {
        if (Clock::now() - e.at > ttl_) return false;
        out.assign(e.body);
        return true;
      }
    return false;
  }
  void put(const std::string& user, std::string_view query, std::string body, uint64_t generation) {
    std::unique_lock lock(mutex_);
    if (generation != generation_) return;  // computed before an invalidation: stale
    if (entries_ >= kMaxEntries) {
      by_user_.clear();
      entries_ = 0;
    }
    auto& answers = by_user_[user];
    for (auto& e : answers)
      if (e.query == query) {
        e.body = std::move(body);
        e.at = Clock::now();
        return;
      }
    answers.push_back({std::string(query), std::move(body), Clock::now()});
    ++entries_;
  }
  uint64_t generation() const {
    std::shared_lock lock(mutex_);
    return generation_;
  }
  void forget(const std::string& user) {
    std::unique_lock lock(mutex_);
    ++generation_;
    if (const auto u = by_user_.find(user); u != by_user_.end()) {
      entries_ -= u->second.size();
      by_user_.erase(u);
    }
  }
  void clear() {
    std::unique_lock lock(mutex_);
    ++generation_;
    by_user_.clear();
    entries_ = 0;
  }
  size_t size() const {
    std::shared_lock lock(mutex_);
    return entries_;
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    std::string query, body;
    Clock::time_point at;
  };
  static constexpr size_t kMaxEntries = 200000;
  mutable std::shared_mutex mutex_;
  // By user, then the few queries asked of that user's list (a hash look-up and a short scan).
  std::unordered_map<std::string, std::vector<Entry>> by_user_;
  size_t entries_ = 0;
  uint64_t generation_ = 0;
  Clock::duration ttl_ = std::chrono::seconds(300);
};

// A token bucket per API key (or per client address, key id...).
class RateLimiter {
 public:
  RateLimiter(double per_s, double burst) : per_s_(per_s), burst_(burst) {}
  // Seconds until a token is there, without taking one (0: one is there now).
  double wait(const std::string& key) {
    if (per_s_ <= 0) return 0;
    std::lock_guard lock(mutex_);
    const auto it = buckets_.find(key);
    if (it == buckets_.end()) return 0;
    const double tokens = std::min(burst_, it->second.tokens + (now() - it->second.at) * per_s_);
    return tokens >= 1 ? 0 : (1 - tokens) / per_s_;
  }
  // Seconds to wait before the next request is allowed (0: allowed now, and counted).
  double take(const std::string& key) {
    if (per_s_ <= 0) return 0;
    const double t = now();
    std::lock_guard lock(mutex_);
    if (buckets_.size() >= kMaxBuckets) buckets_.clear();  // many addresses: forget, not grow
    auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst_, t});
    Bucket& b = it->second;
    b.tokens = std::min(burst_, b.tokens + (t - b.at) * per_s_);
    b.at = t;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / per_s_;
  }

 private:
  struct Bucket {
    double tokens, at;
  };
  static constexpr size_t kMaxBuckets = 100000;
  static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
  double per_s_, burst_;
  std::mutex mutex_;
  std::map<std::string, Bucket> buckets_;
};

// Work run off the request path, gathered: callers name the users concerned and return; one
// thread runs the work after a gathering pause, so a burst of requests costs one run. The pause
// is at least `min_gather` and at least as long as the last run took, so the work takes at most
// about half of a core under a steady stream of requests. Stopping runs what is still due.
// Two of them: profile refreshes after ingest (pipeline::update_profiles rebuilds every profile
// when new events move the clock on: far too slow to run once per request on a large store),
// and the dashboard's aggregates computed again after the data changed.
class GatheringWorker {
 public:
  using Refresh = std::function<void(const std::set<std::string>& users)>;
  GatheringWorker(Refresh refresh, std::chrono::milliseconds min_gather,
                  std::chrono::milliseconds first_gather = std::chrono::milliseconds(-1))
      : refresh_(std::move(refresh)), min_gather_(min_gather),
        first_gather_(first_gather.count() >= 0 ? first_gather : min_gather), thread_([this] { loop(); }) {}
  ~GatheringWorker() { stop(); }
  GatheringWorker(const GatheringWorker&) = delete;
  GatheringWorker& operator=(const GatheringWorker&) = delete;
  void request(const std::set<std::string>& users) {
    {
      std::lock_guard lock(mutex_);
      due_.insert(users.begin(), users.end());
      requested_ = true;
    }
    wake_.notify_one();
  }
  // `finish_due`: run what is still due first (profiles); else drop it (aggregates nobody will read).
  void stop(bool finish_due = true) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      if (!finish_due) requested_ = false;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    std::chrono::steady_clock::duration gather = first_gather_;
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return requested_ || stopping_; });
      if (!requested_) return;  // stopping, nothing due
      if (!stopping_) wake_.wait_for(lock, gather, [this] { return stopping_; });
      if (!requested_) return;  // stopped meanwhile, what was due dropped
      std::set<std::string> users;
      users.swap(due_);
      requested_ = false;
      lock.unlock();
      const auto t0 = std::chrono::steady_clock::now();
      refresh_(users);
      gather = std::max<std::chrono::steady_clock::duration>(min_gather_, std::chrono::steady_clock::now() - t0);
      lock.lock();
    }
  }
  Refresh refresh_;
  std::chrono::milliseconds min_gather_, first_gather_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::set<std::string> due_;
  bool requested_ = false, stopping_ = false;
  std::thread thread_;  // last: starts once the rest is ready
};

// Answers computed from the whole store (the dashboard's overview, timeline and demand pages:
// seconds of work at 1M events), kept per store generation (which any write, in any process,
// moves). After ingest only, the answer of an earlier generation is served at once while a fresh
// one is computed in the background (`stale` is called: it asks for that); after an erasure, or
// with no earlier answer, the request computes, and requests for the same answer wait for that
// one computation. Different answers compute side by side. On PostgreSQL the store keeps the
// newest answer computed by any server (Store::share_answer): one newer than this server's is
// taken from there instead of being computed again.
class WholeStoreAnswers {
 public:
  WholeStoreAnswers(std::function<void()> stale, Metrics& metrics) : stale_(std::move(stale)), metrics_(metrics) {}

  // `fresh`: never an earlier generation's answer (the warmer's own calls).
  std::string get(store::Store& s, const std::string& key, const std::function<std::string()>& compute, bool fresh = false) {
    // Read before the data: an answer is never older than the generation it is kept under.
    const int64_t generation = s.generation(), erasures = s.erasure_count();
    std::unique_lock lock(mutex_);
    forget_beyond(kMaxAnswers, key);
    bool asked_store = false;
    for (;;) {
      auto& a = answers_[key];
      a.used = ++uses_;
      if (a.generation >= generation) return a.body;
      if (!asked_store) {  // another server's answer, when it is newer
        asked_store = true;
        lock.unlock();
        auto shared = s.shared_answer(key);
        lock.lock();
        auto& b = answers_[key];
        if (shared && shared->erasures == erasures && shared->generation > b.generation) {
          b.body = std::move(shared->body);
          b.generation = shared->generation;
          b.erasures = shared->erasures;
          metrics_.add_counter("persona_aggregates_total", "source=\"shared\"", 1);
        }
        continue;  // with the answer looked up again: another thread may have dropped it meanwhile
      }
      if (!fresh && a.generation >= 0 && a.erasures == erasures) {
        std::string body = a.body;  // copied under the lock: the warmer replaces it
        lock.unlock();
        stale_();
        return body;
      }
      if (!a.computing) break;
      done_.wait(lock);
    }
    answers_[key].computing = true;
    lock.unlock();
    std::string body;
    try {
      body = compute();
      metrics_.add_counter("persona_aggregates_total", "source=\"computed\"", 1);
    } catch (...) {
      lock.lock();
      answers_[key].computing = false;
      done_.notify_all();
      throw;
    }
    try {
      s.share_answer(key, {generation, erasures, body});
    } catch (const std::exception&) {
      // Not shared this time (the database went away meanwhile): the answer is still this server's.
    }
    lock.lock();
    auto& a = answers_[key];
    a.computing = false;
    if (generation >= a.generation) {
      a.body = body;
      a.generation = generation;
      a.erasures = erasures;
    }
    done_.notify_all();
    return body;
  }

  // A key this server has no answer for yet, to be warmed with the others.
  void know(const std::string& key) {
    std::lock_guard lock(mutex_);
    forget_beyond(kMaxAnswers, key);
    answers_.try_emplace(key);
  }

  // The keys kept: what the warmer computes again after a change.
  std::vector<std::string> keys() {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [key, a] : answers_) out.push_back(key);
    return out;
  }

  void forget(const std::string& key) {
    std::lock_guard lock(mutex_);
    if (const auto it = answers_.find(key); it != answers_.end() && !it->second.computing) answers_.erase(it);
  }

 private:
  // Each days= or weeks= or segment page asked for is its own answer: the least recently used go
  // past a few dozen.
  static constexpr size_t kMaxAnswers = 32;
  void forget_beyond(size_t n, const std::string& keep) {
    while (answers_.size() >= n && !answers_.count(keep)) {
      auto oldest = answers_.end();
      for (auto it = answers_.begin(); it != answers_.end(); ++it)
        if (!it->second.computing && (oldest == answers_.end() || it->second.used < oldest->second.used)) oldest = it;
      if (oldest == answers_.end()) return;
      answers_.erase(oldest);
    }
  }
  struct Answer {
    std::string body;
    int64_t generation = -1, erasures = 0;
    bool computing = false;
    uint64_t used = 0;
  };
  uint64_t uses_ = 0;
  std::function<void()> stale_;
  Metrics& metrics_;
  std::mutex mutex_;
  std::condition_variable done_;
  std::map<std::string, Answer> answers_;
};

// Erasures answered before their recommender retrain finished: what each reported, and the
// retrain's outcome once known (GET /v1/erasures/{id}). Kept in memory, the newest 10,000; the
// audit log is the lasting record.
class ErasureFollowUps {
 public:
  // The report as answered (202): its id, status and where to follow it.
  nlohmann::json start(const pipeline::ErasureReport& report) {
    const std::string id = report.receipt.empty() ? "e" + privacy::random_hex(16) : report.receipt;
    nlohmann::json j = report.to_json();
    j["id"] = id;
    j["status"] = "retraining";
    j["status_url"] = "/v1/erasures/" + id;
    nlohmann::json answer = j;
    std::lock_guard lock(mutex_);
    if (order_.size() >= 10000) {
      entries_.erase(order_.front());
      order_.pop_front();
    }
    if (entries_.emplace(id, std::move(j)).second) order_.push_back(id);
    return answer;
  }
  void finish(const std::set<std::string>& ids, const std::string& error) {
    std::lock_guard lock(mutex_);
    for (const auto& id : ids) {
      const auto it = entries_.find(id);
      if (it == entries_.end()) continue;
      auto& j = it->second;
      j["status"] = error.empty() ? "complete" : "complete, recommender removed";
      auto& done = j[error.empty() ? "models_retrained" : "models_removed"];
      for (const auto& m : j["models_pending"]) done.push_back(m);
      j["models_pending"] = nlohmann::json::array();
      if (!error.empty()) j["retrain_error"] = error;
    }
  }
  std::optional<nlohmann::json> status(const std::string& id) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(id);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, nlohmann::json> entries_;
  std::deque<std::string> order_;
};

// Who is calling: the API key (or the local admin of --no-auth).
struct Caller {
  privacy::ApiKey key;
  std::string id() const { return key.id.empty() ? "local" : key.id; }
};

struct Reply {
  int status = 200;
  std::string body, content_type = "application/json";
};

Reply json_reply(const nlohmann::json& j, int status = 200) {
  return {status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json"};
}

nlohmann::json body_json(const httplib::Request& req) {
  std::string error;
  auto j = parse_json(req.body, &error);
  if (!j) throw HttpError(400, "Bad Request", fmt::format("the body is {}", error));
  if (!j->is_object()) throw HttpError(400, "Bad Request", "the body is not a JSON object");
  return std::move(*j);
}

template <typename T>
T field(const nlohmann::json& j, const char* name, T fallback) {
  const auto it = j.find(name);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw HttpError(400, "Bad Request", fmt::format("\"{}\" has the wrong type ({})", name, it->type_name()));
  }
}

std::optional<double> number_param(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return std::nullopt;
  const std::string v = req.get_param_value(name);
  try {
    size_t used = 0;
    const double d = std::stod(v, &used);
    if (used != v.size() || !std::isfinite(d)) throw std::invalid_argument(v);
    return d;
  } catch (const std::exception&) {
    throw HttpError(400, "Bad Request", fmt::format("query parameter \"{}\" is not a number: \"{}\"", name, v));
  }
}

// A whole-number query parameter within [lo, hi], or `fallback` when absent.
int int_param(const httplib::Request& req, const char* name, int fallback, int lo, int hi) {
  const auto v = number_param(req, name);
  if (!v) return fallback;
  if (*v < lo || *v > hi || *v != std::floor(*v))
    throw HttpError(400, "Bad Request", fmt::format("{} is a whole number from {} to {}", name, lo, hi));
  return static_cast<int>(*v);
}

// The API key a request presents: X-API-Key, else Authorization: Bearer ("" when none). A view
// into the request's headers: no copy on every request.
std::string_view presented_key(const httplib::Request& req) {
  auto named = [](const std::string& name, std::string_view want) {
    return name.size() == want.size() &&
           std::equal(name.begin(), name.end(), want.begin(), [](char a, char b) { return (a >= 'A' && a <= 'Z' ? a + 32 : a) == b; });
  };
  std::string_view api_key, bearer;  // one pass over the few headers (a look-up by name compares ignoring case, slowly)
  for (const auto& [name, value] : req.headers) {
    if (api_key.empty() && named(name, "x-api-key")) api_key = value;
    else if (bearer.empty() && named(name, "authorization") && value.rfind("Bearer ", 0) == 0) bearer = std::string_view(value).substr(7);
  }
  return api_key.empty() ? bearer : api_key;
}

}  // namespace

struct Route {
  std::string method, path;          // path in OpenAPI form: /v1/users/{id}/profile
  std::vector<std::string> scopes;   // any one of them will do; empty: public
  bool subject_in_path = false;      // the first path parameter is the user the data belongs to
  bool subject_in_body = false;      // the body's "user" is (chat)
  // The request, its caller and the path's first parameter (the {id} of /v1/users/{id}/profile).
  std::function<Reply(const httplib::Request&, const Caller&, const std::string&)> handler;
  size_t metric = 0;
  bool quick = false;                // answered on the event loop (reads one user's data at most)
  std::vector<std::string> segments; // path split at '/'; "{}" stands for a parameter (one whole segment)
};

// Whether `path` has the route's segments; the first parameter's segment goes to `param`. (Was
// a std::regex per route, tried in turn: a tenth of a cached answer's CPU time.)
bool route_matches(const std::vector<std::string>& segments, std::string_view path, std::string& param) {
  param.clear();  // not a parameter of a route tried before
  if (path.empty() || path[0] != '/') return false;
  path.remove_prefix(1);
  bool first_param = true;
  for (size_t i = 0; i < segments.size(); ++i) {
    const size_t slash = path.find('/');
    const bool last = i + 1 == segments.size();
    if (last != (slash == std::string_view::npos)) return false;
    const std::string_view segment = path.substr(0, slash);
    if (segments[i] == "{}") {
      if (segment.empty()) return false;
      if (first_param) param.assign(segment.data(), segment.size());
      first_param = false;
    } else if (segment != segments[i]) {
      return false;
    }
    if (!last) path.remove_prefix(slash + 1);
  }
  return true;
}

struct Server::Impl {
  ServerOptions options;
  pipeline::Config config;
  std::string models_dir;
  std::optional<privacy::KeyRing> keys;
  std::shared_ptr<const privacy::KeyRing> shared_keys;
  std::unique_ptr<privacy::ApiKeyStore> api_keys;
  std::unique_ptr<StorePool> stores;
  std::mutex write_mutex;  // one writer at a time (SQLite has one anyway); ingest, erase
  std::unique_ptr<recommend::RecommendService> recommender;
  // The running experiment with each variant's model, as last read from the store (nullptr: none).
  struct RunningExperiment {
    experiment::Experiment definition;
    std::vector<std::shared_ptr<const recommend::RecommendModel>> models;
  };
  std::mutex experiment_mutex;
  std::shared_ptr<const RunningExperiment> running;
  std::string experiments_seen = "?";  // the definitions last read, as stored: a change is noticed
  std::set<std::string> promotions_seen;
  std::mutex refresh_mutex;  // one refresh at a time (the watcher, an API call)
  // Watches the store for experiments changed elsewhere (the CLI, another server).
  std::thread experiment_watch;
  std::mutex watch_mutex;
  std::condition_variable watch_wake;
  bool watching = false;
  AnswerCache cache;
  std::mutex unavailable_mutex;
  std::vector<std::string> unavailable;  // the catalogue's unavailable items
  std::unordered_map<std::string, std::pair<std::string, std::string>> titles;  // id -> (title, Chinese name)
  struct CategoryName {
    std::string zh;  // "" when the catalogue gives none
    int64_t items = 0;
  };
  std::map<std::string, CategoryName> category_names;  // every level of every item's category path
  std::optional<demand::TextAnalyzer> analyzer;
  std::mutex analyze_mutex;  // its classifiers keep scratch buffers: one text at a time
  std::optional<text::KeywordIndex> keyword_index;
  WholeStoreAnswers aggregates{[this] { warmer->request({}); }, metrics};
  ErasureFollowUps erasures;
  std::unique_ptr<store::Store> assistant_store;
  std::optional<assistant::FaqIndex> faq;
  std::optional<assistant::KnowledgeGraph> graph;
  std::optional<assistant::GraphAnswerer> answerer;
  std::unique_ptr<assistant::Assistant> bot;
  // What the assistant is built from (again for an experiment's variants, or a promotion).
  assistant::Knowledge knowledge;
  assistant::AssistantOptions assistant_base;
  // The running assistant experiment with one assistant per variant (under chat_mutex).
  struct ChatExperiment {
    experiment::Experiment definition;
    std::vector<std::unique_ptr<assistant::Assistant>> bots;
  };
  std::unique_ptr<ChatExperiment> chat_experiment;
  nlohmann::json assistant_promoted;  // the settings a promotion left in force (null: the config's)
  std::mutex chat_mutex;  // the assistant reads through one store connection
  Metrics metrics;
  RateLimiter limiter;
  // Failed authentications per client address and per key id: past a burst, answered 429 before
  // any Argon2id (docs/operations.md, "Limits").
  RateLimiter failed_by_address{kFailedAuthPerS, kFailedAuthBurst};
  RateLimiter failed_by_key{kFailedAuthPerS, kFailedAuthBurst};
  std::vector<Route> routes;
  std::set<std::string> web_files;  // the dashboard's files, relative to web_dir (its allow-list)
  std::unique_ptr<HttpTransport> http;
  std::FILE* log = nullptr;
  std::mutex log_mutex;
  std::atomic<bool> ready{false};
  std::unique_ptr<GatheringWorker> refresher;  // after everything they use: stopped first
  std::unique_ptr<GatheringWorker> warmer;     // the dashboard's aggregates, after a change
  std::unique_ptr<GatheringWorker> erasure_followups;  // retrains after erasures answered 202
  // Several servers of one PostgreSQL store (docs/operations.md, "Several servers"): the changes
  // others commit, followed; the leader lock; the shared privacy-budget ledger.
  bool shared_store = false;
  std::unique_ptr<GlobalRateLimiter> global_limiter;  // with --redis: per key across every server
  std::unique_ptr<privacy::BudgetLedger> ledger;
  std::mutex ledger_mutex;  // one database connection (or one file)
  std::unique_ptr<store::ChangeFeed> feed;
  std::unique_ptr<store::LeaderLock> leader;
  std::atomic<bool> leading{false}, following{false};
  std::thread follower;  // last: started once the rest is ready

  explicit Impl(ServerOptions o) : options(std::move(o)), limiter(options.rate_per_s, options.burst) {}
  ~Impl() {
    stop_watching_experiments();  // a constructor that threw after load() leaves it running
    if (log && log != stderr) std::fclose(log);
  }

  void load();
  void use_redis(assistant::AssistantOptions& assistant_options);
  bool take_published_model(store::Store& s);
  static std::string file_checksum(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return store::model_checksum(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
  }
  std::mutex model_mutex;  // the model file, written from the published one
  void follow_changes();
  void apply(const store::ChangeFeed::Update& update);
  void stop_following() {
    following = false;
    if (follower.joinable()) follower.join();
  }
  void add_routes();
  void install();
  Plan plan(httplib::Request& req);
  // Answers a routed request; `known`: the caller's key when the planner found it verified already.
  void dispatch(const Route& route, const httplib::Request& req, httplib::Response& res, const std::string& id,
                std::optional<privacy::ApiKey> known);
  void serve_file(const httplib::Request& req, httplib::Response& res);
  void refuse(const httplib::Request& req, httplib::Response& res, int status, const std::string& detail);
  Caller authenticate(const httplib::Request& req);
  double failed_auth_wait(const std::string& address, std::string_view presented) {
    return std::max(failed_by_address.wait("addr:" + address), failed_by_key.wait("key:" + privacy::api_key_id(presented)));
  }
  void access_log(const Route* route, const httplib::Request& req, int status, double seconds, const std::string& caller,
                  const char* unrouted = "(unrouted)");

  Reply ingest(Entity entity, const httplib::Request& req, const Caller& caller);
  void refresh_profiles(const std::set<std::string>& users);
  Reply recommendations(const httplib::Request& req, const std::string& user);
  // Experiments and feedback (docs/recommend.md, "Experiments").
  std::shared_ptr<const RunningExperiment> running_experiment() {
    std::lock_guard lock(experiment_mutex);
    return running;
  }
  void refresh_experiments(store::Store& s);
  void refresh_assistants(const std::vector<experiment::Experiment>& all);
  std::unique_ptr<assistant::Assistant> assistant_with(const nlohmann::json& settings);
  void start_watching_experiments();
  void stop_watching_experiments();
  std::string experiment_model_file(const experiment::Experiment& e, const experiment::Variant& v);
  Reply feedback(const httplib::Request& req, const Caller& caller);
  Reply experiments();
  Reply create_experiment(const httplib::Request& req, const Caller& caller);
  Reply end_experiment(const httplib::Request& req, const std::string& name, bool promote, const Caller& caller);
  Reply experiment_report(const httplib::Request& req, const std::string& name, const Caller& caller);
  Reply profile(const std::string& user);
  Reply similar(const httplib::Request& req, const std::string& item);
  Reply analyze(const httplib::Request& req);
  Reply chat(const httplib::Request& req, const Caller& caller);
  Reply segments();
  Reply segment_users(const httplib::Request& req, const std::string& segment);
  std::string segment_users_body(const std::string& segment, int limit, int offset, bool fresh = false);
  std::string rfm_body(bool fresh = false);
  Reply categories();
  Reply stats();
  Reply dp(const httplib::Request& req, const Caller& caller);
  Reply erase(const std::string& user, const Caller& caller);
  void retrain_after_erasures(const std::set<std::string>& ids);
  void swap_in_recommender();
  Reply erasure_status(const std::string& id);
  Reply models();
  Reply retrain(const Caller& caller);
  // The dashboard's data (dashboard.h).
  Reply timeline(const httplib::Request& req);
  std::string stats_body(bool fresh = false);
  std::string timeline_body(int days, bool fresh = false);
  std::string demand_body(int weeks, bool fresh = false);
  void warm_aggregates();
  Reply user_events(const httplib::Request& req, const std::string& user);
  Reply demand_page(const httplib::Request& req);
  Reply privacy_page();
  // The model in use, as a metric: its method and when its file was written (a version).
  void note_model_version();
  void refresh_unavailable(store::Store& s) {
    auto items = s.unavailable_items();
    // Titles for people reading a list (the dashboard's user page): English and Chinese.
    std::unordered_map<std::string, std::pair<std::string, std::string>> names;
    std::map<std::string, CategoryName> categories;
    for (const auto& item : s.items()) {
      names[item.id] = {item.title, text::han_alias(item.aliases)};
      if (!item.category.empty()) note_category(categories, item.category, text::han_alias(item.category_aliases));
    }
    std::lock_guard lock(unavailable_mutex);
    unavailable = std::move(items);
    titles = std::move(names);
    category_names = std::move(categories);
  }
  // A category path and each of its ancestors, with the Chinese name of each where the catalogue
  // gives a Chinese path of as many levels ("Beauty > Skincare" / "美妆 > 护肤").
  static void note_category(std::map<std::string, CategoryName>& out, const std::string& path, const std::string& zh_path) {
    const auto levels = split_category(path), zh_levels = split_category(zh_path);
    const bool aligned = levels.size() == zh_levels.size();
    std::string prefix, zh_prefix;
    for (size_t i = 0; i < levels.size(); ++i) {
      prefix += (i ? " > " : "") + levels[i];
      if (aligned) zh_prefix += (i ? " > " : "") + zh_levels[i];
      auto& c = out[prefix];
      ++c.items;
      if (aligned && c.zh.empty()) c.zh = zh_prefix;
    }
  }
  static std::vector<std::string> split_category(const std::string& path) {
    std::vector<std::string> out;
    for (size_t start = 0; start <= path.size();) {
      const size_t end = std::min(path.find(" > ", start), path.size());
      if (end > start) out.push_back(path.substr(start, end - start));
      start = end + 3;
    }
    return out;
  }
  // An answer's item with its titles ("title", and "title_zh" when the catalogue has one).
  nlohmann::json item_json(const std::string& id, nlohmann::json j) {
    std::lock_guard lock(unavailable_mutex);
    if (const auto it = titles.find(id); it != titles.end()) {
      if (!it->second.first.empty()) j["title"] = it->second.first;
      if (!it->second.second.empty()) j["title_zh"] = it->second.second;
    }
    return j;
  }
  std::vector<std::string> unavailable_items() {
    std::lock_guard lock(unavailable_mutex);
    return unavailable;
  }
  std::string recommend_model_path() const { return (fs::path(models_dir) / "recommend.model").string(); }
  void audit(const Caller& caller, const std::string& action, const nlohmann::json& details) {
    if (keys) store::open_audit_log(options.store_path, *keys).append("api:" + caller.id(), action, details);
  }
};

void Server::Impl::load() {
  if (!options.config_path.empty()) config = pipeline::load_config(options.config_path);
  models_dir = demand::models_dir_from(options.models_dir);
  keys = privacy::KeyRing::discover(options.key_file);
  if (keys) shared_keys = std::make_shared<privacy::KeyRing>(*keys);
  if (!store::store_exists(options.store_path))
    throw Error("no store here", {options.store_path}, "run `persona ingest` first, or give --store / --config");
  shared_store = store::is_postgres_location(options.store_path);
  if (options.require_keys) {
    // A file, or the database of a PostgreSQL store (every server of it reads the same keys).
    api_keys = store::open_api_keys(options.store_path, options.api_keys_path);
    const bool in_database = options.api_keys_path.empty() && store::api_keys_in_database(options.store_path);
    if (in_database ? api_keys->list().empty() : !fs::exists(api_keys->path()))
      throw Error("no API keys: every route but health needs one", {api_keys->path()},
                  fmt::format("make one with `persona keys create --name NAME --role service{}`, or serve --no-auth on a laptop",
                              in_database ? " --store " + store::printable_location(options.store_path) : ""));
  }
  stores = std::make_unique<StorePool>(options.store_path, store::StoreOptions{shared_keys});
  if (shared_store) {
    // Listening before the catalogue and the model are read: a change committed meanwhile is heard.
    feed = std::make_unique<store::ChangeFeed>(options.store_path);
    if (const auto first = feed->wait(std::chrono::milliseconds(0)); !first.error.empty())
      throw store::Unavailable(first.error, {store::printable_location(options.store_path)});
    leader = std::make_unique<store::LeaderLock>(options.store_path);
  }
  {
    auto s = stores->acquire();
    refresh_unavailable(*s);
  }
  const auto model_path = recommend_model_path();
  if (shared_store) {
    auto s = stores->acquire();
    take_published_model(*s);  // the one every server of the store serves, when it is not the file here
  }
  if (fs::exists(model_path)) {
    recommender = std::make_unique<recommend::RecommendService>(
        std::make_shared<const recommend::RecommendModel>(recommend::RecommendModel::load(model_path)));
  }
  analyzer = demand::TextAnalyzer::load(models_dir);
  if (fs::exists(demand::keyword_index_path(models_dir))) keyword_index = demand::load_keyword_index(demand::keyword_index_path(models_dir));
  assistant_store = store::open_store(options.store_path, store::StoreOptions{shared_keys});
  if (fs::exists(fs::path(models_dir) / "faq.index")) faq = assistant::FaqIndex::load((fs::path(models_dir) / "faq.index").string());
  graph.emplace(assistant_store->graph());
  if (graph->entity_count() > 0) answerer.emplace(*graph);
  assistant::Knowledge k;
  k.store = assistant_store.get();
  k.faq = faq ? &*faq : nullptr;
  k.graph = answerer ? &*answerer : nullptr;
  k.recommend_service = recommender.get();
  k.analyzer = &*analyzer;
  if (analyzer->model(demand::TextTask::Intent)) k.intents = &*analyzer->model(demand::TextTask::Intent);
  assistant::AssistantOptions assistant_options;
  if (!config.assistant.is_null()) assistant_options = assistant::apply_assistant_settings(config.assistant, std::move(assistant_options));
  assistant_options.responder =
      assistant::responder_from_environment(assistant_options.responder, assistant_options.responder_key_env);
  if (!options.redis_url.empty()) use_redis(assistant_options);
  knowledge = k;
  assistant_base = assistant_options;
  bot = std::make_unique<assistant::Assistant>(k, std::move(assistant_options));
  if (options.access_log == "-") log = stderr;
  else if (!options.access_log.empty() && !(log = std::fopen(options.access_log.c_str(), "a")))
    throw Error("cannot open the access log", {options.access_log});
  metrics.set_gauge("persona_recommend_model_loaded", "", recommender ? 1 : 0);
  note_model_version();
  refresher = std::make_unique<GatheringWorker>([this](const std::set<std::string>& users) { refresh_profiles(users); },
                                                std::chrono::milliseconds(100));
  // The overview's first visit is answered from memory: computed now, and again a few seconds
  // after the data changes (not after every batch of a live feed).
  warmer = std::make_unique<GatheringWorker>([this](const std::set<std::string>&) { warm_aggregates(); },
                                             std::chrono::seconds(5), std::chrono::milliseconds(0));
  warmer->request({});
  erasure_followups = std::make_unique<GatheringWorker>(
      [this](const std::set<std::string>& ids) { retrain_after_erasures(ids); }, std::chrono::milliseconds(100));
  cache.set_ttl(options.cache_ttl_s);
  ledger = store::open_budget_ledger(options.store_path);
  {
    auto s = stores->acquire();
    refresh_experiments(*s);
  }
  start_watching_experiments();
  if (shared_store) {
    following = true;
    follower = std::thread([this] { follow_changes(); });
  }
}

// On a PostgreSQL store: what every writer commits (other servers, `persona ingest`, erasures)
// reaches this server's caches within a notification's time; the leader (one server of the
// database at a time) refreshes the profiles of the users whose data changed, whoever wrote it.
void Server::Impl::follow_changes() {
  metrics.set_gauge("persona_leader", "", 0);  // said by every server, so that "no leader" shows
  while (following) {
    if (api_keys) api_keys->refresh();  // a revocation is seen within a second even without its notification
    const bool lead = leader->held();
    if (lead != leading.exchange(lead)) {
      metrics.set_gauge("persona_leader", "", lead ? 1 : 0);
      if (lead) warmer->request({});  // the dashboard's aggregates are the leader's to compute now
    }
    const auto update = feed->wait(std::chrono::milliseconds(250));
    if (!update.error.empty()) {
      metrics.add_counter("persona_change_feed_errors_total", "", 1);
      continue;
    }
    try {
      apply(update);
    } catch (const std::exception& e) {  // the store went away meanwhile: the next changes say more
      cache.clear();
      if (log) {
        std::lock_guard lock(log_mutex);
        fmt::print(log, "{}\n", dump_json({{"error", std::string(e.what()).substr(0, 1000)}, {"task", "change feed"}}));
      }
    }
  }
}

void Server::Impl::apply(const store::ChangeFeed::Update& update) {
  if (update.reconnected) metrics.add_counter("persona_change_feed_reconnects_total", "", 1);
  if (update.missed) cache.clear();
  std::set<std::string> refresh;
  bool catalogue = false, model = false, data = false;
  for (const auto& c : update.changes) {
    metrics.add_counter("persona_changes_applied_total", fmt::format("what=\"{}\"", c.what), 1);
    if (c.what == "data" || c.what == "profiles") {
      if (c.everyone) cache.clear();
      for (const auto& u : c.users) cache.forget(u);
      if (c.what == "data") {
        data = true;
        refresh.insert(c.users.begin(), c.users.end());
      }
    } else if (c.what == "catalogue") {
      catalogue = true;
    } else if (c.what == "model") {
      model = true;
    } else if (c.what == "keys") {
      if (api_keys) api_keys->refresh();
    } else {
      cache.clear();  // an erasure (whose id the log does not keep), or everything
    }
  }
  if (update.changes.empty()) return;
  if (catalogue) {
    auto s = stores->acquire();
    refresh_unavailable(*s);
    cache.clear();
  }
  // A model published by another server or the CLI: fetched when it is not the one in use.
  // (A server started before any model was trained takes its first one at its next start.)
  if (model && recommender) {
    auto s = stores->acquire();
    if (take_published_model(*s)) swap_in_recommender();
  }
  warmer->request({});
  // (update_profiles finds the users itself from the store's change mark: `refresh` names only
  // whose cached answers to drop once their profiles are written.)
  if (data && leading) {
    auto s = stores->acquire();
    if (s->get_meta("profile.build")) refresher->request(refresh);
  }
}

// Rate limits and conversations shared by every server using this Redis for this store (keys
// named "persona:<store>:..."). Redis away at start is not fatal: limits fall back to each
// server's share, conversations answer 503 until it is back.
void Server::Impl::use_redis(assistant::AssistantOptions& assistant_options) {
  const auto store_hash = XXH3_64bits(options.store_path.data(), options.store_path.size());
  const std::string prefix = fmt::format("persona:{:08x}:", static_cast<uint32_t>(store_hash >> 32));
  try {
    redis::Connection(options.redis_url).command({"PING"});
  } catch (const Error& e) {
    fmt::print(stderr, "warning: {} (rate limits fall back to each server's share until it answers)\n", e.what());
  }
  global_limiter = std::make_unique<GlobalRateLimiter>(options.redis_url, prefix, options.rate_per_s, options.burst);
  assistant_options.sessions = std::make_shared<RedisSessions>(options.redis_url, prefix);
}

// The recommender published for every server of a PostgreSQL store, written over the file here
// (whole, then renamed) when it is not the one this server has; true when it was.
bool Server::Impl::take_published_model(store::Store& s) {
  std::lock_guard lock(model_mutex);
  const auto path = recommend_model_path();
  const std::string have = fs::exists(path) ? file_checksum(path) : "";
  const auto bytes = s.published_model("recommend", have);
  if (!bytes) return false;
  fs::create_directories(models_dir);
  const std::string tmp = fmt::format("{}.{}.{}.tmp", path, ::getpid(), privacy::random_hex(4));  // servers may share the folder
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
    if (!out) throw Error("cannot write the published model", {tmp});
  }
  fs::rename(tmp, path);
  return true;
}

void Server::Impl::note_model_version() {
  if (!recommender) return;
  const auto m = recommender->model();
  const auto method = m->metrics().contains("method") ? m->metrics()["method"].value("method", "") : std::string();
  std::error_code ec;
  const auto written = fs::last_write_time(recommend_model_path(), ec);
  const double seconds = ec ? 0
                            : static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                                      written.time_since_epoch() - fs::file_time_type::clock::now().time_since_epoch() +
                                                      std::chrono::system_clock::now().time_since_epoch())
                                                      .count());
  metrics.set_gauge("persona_model_file_time_seconds", fmt::format("model=\"recommend\",method=\"{}\"", method), seconds);
}

Caller Server::Impl::authenticate(const httplib::Request& req) {
  Caller c;
  if (!options.require_keys) {
    c.key.role = privacy::Role::Admin;
    return c;
  }
  const std::string_view presented = presented_key(req);
  if (presented.empty())
    throw HttpError(401, "Unauthorized", "an API key is needed: Authorization: Bearer <key> (or X-API-Key)");
  if (auto known = api_keys->authenticate_cached(presented)) {
    c.key = *known;
    return c;
  }
  // Guessing is limited per client address and per key id, before any Argon2id is spent.
  const std::string key_id = privacy::api_key_id(presented);
  const std::string address = "addr:" + req.remote_addr, id = "key:" + key_id;
  if (const double wait = failed_auth_wait(req.remote_addr, presented); wait > 0) {
    HttpError e(429, "Too Many Requests", "too many failed authentications from this address or for this key; wait and retry");
    e.extra["retry_after_s"] = wait;
    e.retry_after = wait;
    throw e;
  }
  const auto key = api_keys->authenticate(presented);
  if (!key) {
    failed_by_address.take(address);
    if (!key_id.empty()) failed_by_key.take(id);
    metrics.add_counter("persona_failed_authentications_total", "", 1);
    throw HttpError(401, "Unauthorized", "the API key is not valid (unknown, revoked or mistyped)");
  }
  c.key = *key;
  return c;
}

void Server::Impl::access_log(const Route* route, const httplib::Request& req, int status, double seconds,
                              const std::string& caller, const char* unrouted) {
  if (!log) return;
  // The route, not the path: a path may hold a user id. The method is the client's: capped and
  // kept to token characters (a 10 KB "method" was once logged whole).
  std::string method = req.method.substr(0, 16);
  for (auto& c : method)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '?';
  if (req.method.size() > 16) method += "...";
  // Written with fmt into a buffer on the stack (a JSON object built and dumped was some thirty
  // allocations per request). Every value is plain: the method is token characters, the route
  // ours, the caller a key id; the keys in the order dump_json gave them.
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  thread_local int64_t second = -1;
  thread_local std::string time;
  if (now != second) {
    second = now;
    time = format_timestamp(now);
  }
  fmt::memory_buffer line;
  fmt::format_to(std::back_inserter(line), R"({{"caller":"{}","method":"{}","ms":{},"route":"{}","status":{},"time":"{}"}})"
                 "\n",
                 caller, method, std::round(seconds * 1e5) / 100, route ? route->path.c_str() : unrouted, status, time);
  std::lock_guard lock(log_mutex);
  std::fwrite(line.data(), 1, line.size(), log);
  std::fflush(log);
}

void Server::Impl::dispatch(const Route& route, const httplib::Request& req, httplib::Response& res, const std::string& id,
                            std::optional<privacy::ApiKey> known) {
  const auto t0 = std::chrono::steady_clock::now();
  Reply reply;
  std::string caller_id = "-";
  try {
    Caller caller;
    if (!route.scopes.empty()) {
      if (known) caller.key = std::move(*known);
      else caller = authenticate(req);
      caller_id = caller.id();
      std::string subject;
      if (route.subject_in_path) subject = id;
      if (route.subject_in_body) subject = field<std::string>(body_json(req), "user", "");
      bool allowed = false;
      for (const auto& scope : route.scopes) allowed = allowed || privacy::allows(caller.key, scope, subject);
      if (!allowed)
        throw HttpError(403, "Forbidden",
                        fmt::format("this key's role ({}) may not {} {}{}", privacy::role_name(caller.key.role), route.method,
                                    route.path, caller.key.role == privacy::Role::User ? " for another user" : ""));
      if (const double wait = global_limiter ? global_limiter->take(caller.id()) : limiter.take(caller.id()); wait > 0) {
        HttpError e(429, "Too Many Requests", fmt::format("this key's rate limit is {} requests per second", options.rate_per_s));
        e.extra["retry_after_s"] = wait;
        e.retry_after = wait;
        throw e;
      }
    }
    reply = route.handler(req, caller, id);
  } catch (const HttpError& e) {
    reply = {e.status, problem_body(e.status, e.title, e.what(), e.extra), "application/problem+json"};
    if (e.retry_after > 0) res.set_header("Retry-After", std::to_string(static_cast<int>(std::ceil(e.retry_after))));
  } catch (const assistant::SessionBusy& e) {
    reply = {409, problem_body(409, "Conflict", e.what()), "application/problem+json"};
  } catch (const redis::Unavailable& e) {
    reply = {503, problem_body(503, "Service Unavailable", e.what()), "application/problem+json"};
    res.set_header("Retry-After", "1");
  } catch (const privacy::BudgetExhausted& e) {
    reply = {403, problem_body(403, "Forbidden", e.what()), "application/problem+json"};
  } catch (const store::Unavailable& e) {
    // The database, not the request: try again shortly.
    reply = {503, problem_body(503, "Service Unavailable", e.what()), "application/problem+json"};
    res.set_header("Retry-After", "1");
  } catch (const store::KeyRequired& e) {
    // The server's configuration, not the request: 503 (and /readyz says not ready).
    reply = {503, problem_body(503, "Service Unavailable", fmt::format("{}; {}", e.reason(), e.hint())),
             "application/problem+json"};
  } catch (const Error& e) {
    reply = {400, problem_body(400, "Bad Request", e.what()), "application/problem+json"};  // what() has the hint
  } catch (const std::exception& e) {
    // Details stay in the log (they may name internals), not in the answer.
    reply = {500, problem_body(500, "Internal Server Error", "the request could not be completed; see the server log"),
             "application/problem+json"};
    if (log) {
      std::lock_guard lock(log_mutex);
      fmt::print(log, "{}\n", dump_json({{"error", std::string(e.what()).substr(0, 1000)}, {"route", route.path}}));
    }
  }
  res.status = reply.status;
  res.body = std::move(reply.body);
  res.set_header("Content-Type", reply.content_type);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  metrics.observe(route.metric, reply.status, seconds);
  access_log(&route, req, reply.status, seconds, caller_id);
}

Reply Server::Impl::ingest(Entity entity, const httplib::Request& req, const Caller& caller) {
  DecodedRecords decoded;
  try {
    decoded = decode_body(entity, req.body, kMaxRecordsPerRequest, config.time_window);
  } catch (const BodyRefused& e) {
    throw HttpError(e.status, status_title(e.status), fmt::format("{} ({})", e.reason(), e.hint()));
  }
  const std::string name = std::string("api:") + entity_name(entity) + "s";
  nlohmann::json answer = {{"records", decoded.records},
                           {"accepted", decoded.records - decoded.rejected()},
                           {"rejected", decoded.rejected()}};
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& e : decoded.errors(100)) errors.push_back(e.to_json());
  answer["errors"] = errors;
  if (decoded.rejected() == decoded.records) {
    HttpError e(422, "Unprocessable Content", fmt::format("none of the {} records could be used", decoded.records));
    e.extra["errors"] = errors;
    throw e;
  }
  {
    std::lock_guard lock(write_mutex);
    auto s = stores->acquire();
    // The body's hash makes the request idempotent: the same batch sent again is not ingested twice.
    const auto hash = XXH3_128bits(req.body.data(), req.body.size());
    const std::string content_hash = fmt::format("{:016x}{:016x}", hash.high64, hash.low64);
    const auto record = s->begin_ingest(name, "POST " + req.path, content_hash, "api-v1");
    answer["ingest"] = record.id;
    if (record.status == "complete") {
      answer["status"] = "already ingested";
      return json_reply(answer);
    }
    s->write_batch(record.id, decoded.batch, static_cast<int64_t>(decoded.records));
    s->finish_ingest(record.id, {{"records", decoded.records}, {"rejected", decoded.rejected()}, {"caller", caller.id()}});
    answer["status"] = "ingested";
    if (entity == Entity::Item) {
      refresh_unavailable(*s);
      cache.clear();
    }
    // Live: the touched users' profiles in a moment (when profiles are kept), their
    // recommendations on the next request.
    // (On a PostgreSQL store the leader does it, for every server's writes: see apply().)
    if (s->get_meta("profile.build") && (entity == Entity::Event || entity == Entity::Text || entity == Entity::User)) {
      if (!shared_store) refresher->request(decoded.users);
      answer["profiles"] = "updating";
    }
  }
  for (const auto& u : decoded.users) cache.forget(u);
  warmer->request({});
  metrics.add_counter("persona_ingested_records_total", fmt::format("entity=\"{}\"", entity_name(entity)),
                      static_cast<double>(decoded.records - decoded.rejected()));
  metrics.add_counter("persona_rejected_records_total", fmt::format("entity=\"{}\"", entity_name(entity)),
                      static_cast<double>(decoded.rejected()));
  return json_reply(answer);
}

void Server::Impl::refresh_profiles(const std::set<std::string>& users) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    // Computed beside ingest (a rebuild of 1M events takes seconds); on SQLite only the writes
    // take this server's writer lock. PostgreSQL orders writers itself, and ingests wait only for
    // the end of a profile write (Store::put_profiles), not for this server's lock.
    auto s = stores->acquire();
    auto guard = [&](const std::function<void()>& write) {
      if (shared_store) return write();
      std::lock_guard lock(write_mutex);
      write();
    };
    const auto report = pipeline::update_profiles(*s, config.profile, models_dir, guard);
    metrics.add_counter("persona_profile_refreshes_total", fmt::format("mode=\"{}\"", report.mode), 1);
    metrics.add_counter("persona_profiles_written_total", "", static_cast<double>(report.written));
  } catch (const std::exception& e) {
    metrics.add_counter("persona_profile_refresh_errors_total", "", 1);
    if (log) {
      std::lock_guard lock(log_mutex);
      fmt::print(log, "{}\n", dump_json({{"error", std::string(e.what()).substr(0, 1000)}, {"task", "profile refresh"}}));
    }
  }
  // Their segments may have moved: recommendations are reranked by segment.
  for (const auto& u : users) cache.forget(u);
  metrics.set_gauge("persona_profile_refresh_seconds", "", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

// A request id: 16 hex digits, fresh for every answer (a cached one too), which feedback sends back.
// 16 hex digits, new for every answer, written at `out`.
void write_request_id(char* out) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  for (uint64_t v = rng(), i = 0; i < 16; ++i, v >>= 4) out[15 - i] = kHex[v & 15];
}
std::string new_request_id() {
  std::string id(16, '0');
  write_request_id(id.data());
  return id;
}
// Every list begins {"request_id":"<16 hex digits>", so a cached answer gets its own id in place.
constexpr size_t kRequestIdAt = 15;

Reply Server::Impl::recommendations(const httplib::Request& req, const std::string& user) {
  if (!recommender) throw HttpError(503, "Service Unavailable", "no recommender is trained yet (persona train recommend)");
  recommend::RecommendRequest q;
  const auto k = number_param(req, "k").value_or(10);
  if (k < 0 || k > 1000 || k != std::floor(k)) throw HttpError(400, "Bad Request", "k is a whole number from 0 to 1000");
  q.k = static_cast<size_t>(k);
  q.exclude_seen = req.get_param_value("exclude_bought") == "true";
  q.category = req.get_param_value("category");
  q.min_price = number_param(req, "min_price");
  q.max_price = number_param(req, "max_price");
  q.diversity = number_param(req, "diversity").value_or(0);
  if (q.diversity < 0 || q.diversity > 1) throw HttpError(400, "Bad Request", "diversity is from 0 to 1");
  // In an experiment, the user's variant's model (the variant is part of the cached answer).
  const auto experiment = running_experiment();
  const experiment::Variant* variant = nullptr;
  std::shared_ptr<const recommend::RecommendModel> model;
  if (experiment) {
    const size_t v = experiment::assign(experiment->definition.salt, user, experiment->definition.variants);
    variant = &experiment->definition.variants[v];
    model = experiment->models[v];
  }
  // The cache's key: the parameters as sent (checked above), which determine the list; another
  // spelling of the same number is only another entry.
  std::string query = std::to_string(q.k);
  for (const char* name : {"exclude_bought", "category", "min_price", "max_price", "diversity"}) {
    query += '|';
    if (const auto it = req.params.find(name); it != req.params.end()) query += it->second;
  }
  query += '|';
  if (variant) query += variant->name;
  if (options.cache) {
    Reply hit{200, {}, "application/json"};
    if (cache.get(user, query, hit.body)) {
      write_request_id(hit.body.data() + kRequestIdAt);
      return hit;
    }
  }
  const uint64_t generation = cache.generation();
  if (!model) model = recommender->model();
  bool personal = true;
  recommend::Row history;
  {
    auto s = stores->acquire();
    personal = s->consent(user).personalisation;
    if (personal) {
      history = model->history(s->history(user));
      if (model->segments() > 0)
        if (const auto p = s->profile(user)) q.segment = nlohmann::json::parse(*p, nullptr, false).value("segment", -1);
    }
  }
  q.exclude_items = unavailable_items();
  nlohmann::json items = nlohmann::json::array();
  for (const auto& r : model->recommend(history, q))
    items.push_back(item_json(r.item, {{"item", r.item}, {"category", r.category}, {"score", r.score}, {"reason", r.reason},
                                       {"because", r.because}}));
  nlohmann::json answer = {{"user", user}, {"personalised", personal}, {"history_items", history.size()},
                           {"segment", q.segment}, {"model", model->version()}, {"recommendations", items}};
  if (variant) {
    answer["experiment"] = experiment->definition.name;
    answer["variant"] = variant->name;
  }
  std::string body = "{\"request_id\":\"" + new_request_id() + "\"," +
                     answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).substr(1);
  if (options.cache) cache.put(user, query, body, generation);
  return {200, std::move(body), "application/json"};
}

// The file a variant is served from: the experiment's copy, or on a PostgreSQL store (where the
// copy is on the machine that created the experiment) the bytes it published, kept here.
std::string Server::Impl::experiment_model_file(const experiment::Experiment& e, const experiment::Variant& v) {
  if (!shared_store && fs::exists(v.file)) return v.file;
  const auto local = fs::path(models_dir) / "experiments" / e.name / (v.name + ".model");
  if (shared_store) {
    std::lock_guard lock(model_mutex);
    const std::string have = fs::exists(local) ? file_checksum(local.string()) : "";
    auto s = stores->acquire();
    if (const auto bytes = s->published_model(fmt::format("experiment/{}/{}", e.name, v.name), have)) {
      fs::create_directories(local.parent_path());
      std::ofstream out(local.string() + ".partial", std::ios::binary | std::ios::trunc);
      out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
      out.close();
      fs::rename(local.string() + ".partial", local);
    }
  }
  return local.string();
}

// Reads the experiments from the store; when they changed, loads the running one's models and
// empties the answer cache (lists name their variant). A promotion elsewhere brings in the
// recommender it wrote.
void Server::Impl::refresh_experiments(store::Store& s) {
  std::lock_guard refreshing(refresh_mutex);
  const auto stored = s.get_meta("experiments");
  const std::string seen = stored ? stored->dump() : "";
  {
    std::lock_guard lock(experiment_mutex);
    if (seen == experiments_seen) return;
  }
  std::shared_ptr<RunningExperiment> next;
  bool promoted = false;
  std::set<std::string> promotions;
  const auto all = experiment::load_experiments(s);
  refresh_assistants(all);
  for (const auto& e : all) {
    if (!e.promoted.empty()) promotions.insert(e.name);
    if (e.surface != "recommend") continue;
    if (!e.promoted.empty() && !promotions_seen.count(e.name) && experiments_seen != "?") promoted = true;
    if (!e.running()) continue;
    try {
      auto r = std::make_shared<RunningExperiment>();
      r->definition = e;
      for (const auto& v : e.variants)
        r->models.push_back(std::make_shared<const recommend::RecommendModel>(recommend::RecommendModel::load(experiment_model_file(e, v))));
      next = std::move(r);
    } catch (const std::exception& error) {
      // Served without the experiment (everyone gets the recommender), and said in the log and metrics.
      metrics.add_counter("persona_experiment_load_errors_total", "", 1);
      if (log) {
        std::lock_guard lock(log_mutex);
        fmt::print(log, "{}\n", dump_json({{"error", std::string(error.what()).substr(0, 1000)}, {"experiment", e.name}}));
      }
    }
  }
  {
    std::lock_guard lock(experiment_mutex);
    running = std::move(next);
    experiments_seen = seen;
    promotions_seen = std::move(promotions);
  }
  metrics.set_gauge("persona_experiment_running", "", running_experiment() ? 1 : 0);
  cache.clear();
  if (promoted && !shared_store && recommender && fs::exists(recommend_model_path())) swap_in_recommender();
}

// An assistant with `settings` over the server's own (the config's [assistant]); the responder's
// key is read from the environment again, as at start.
std::unique_ptr<assistant::Assistant> Server::Impl::assistant_with(const nlohmann::json& settings) {
  auto o = settings.is_null() ? assistant_base : assistant::apply_assistant_settings(settings, assistant_base);
  o.responder = assistant::responder_from_environment(o.responder, o.responder_key_env);
  return std::make_unique<assistant::Assistant>(knowledge, std::move(o));
}

// The assistants the experiments call for: one per variant of a running assistant experiment, and
// the main one with the latest promoted settings.
void Server::Impl::refresh_assistants(const std::vector<experiment::Experiment>& all) {
  std::unique_ptr<ChatExperiment> next;
  for (const auto& e : all) {
    if (e.surface != "assistant" || !e.running()) continue;
    try {
      next = std::make_unique<ChatExperiment>();
      next->definition = e;
      for (const auto& v : e.variants) next->bots.push_back(assistant_with(v.settings));
    } catch (const std::exception& error) {
      next.reset();
      metrics.add_counter("persona_experiment_load_errors_total", "", 1);
      if (log) {
        std::lock_guard lock(log_mutex);
        fmt::print(log, "{}\n", dump_json({{"error", std::string(error.what()).substr(0, 1000)}, {"experiment", e.name}}));
      }
    }
  }
  const auto promoted = experiment::promoted_assistant_settings(all);
  std::lock_guard lock(chat_mutex);
  chat_experiment = std::move(next);
  if (promoted != assistant_promoted) {
    bot = assistant_with(promoted);
    assistant_promoted = promoted;
  }
}

void Server::Impl::start_watching_experiments() {
  watching = true;
  experiment_watch = std::thread([this] {
    std::unique_lock lock(watch_mutex);
    while (watching) {
      watch_wake.wait_for(lock, std::chrono::seconds(2));
      if (!watching) break;
      lock.unlock();
      try {
        auto s = stores->acquire();
        refresh_experiments(*s);
      } catch (const std::exception&) {
        // The store is away for a moment: the experiments are read again at the next turn.
      }
      lock.lock();
    }
  });
}

void Server::Impl::stop_watching_experiments() {
  {
    std::lock_guard lock(watch_mutex);
    watching = false;
  }
  watch_wake.notify_all();
  if (experiment_watch.joinable()) experiment_watch.join();
}

Reply Server::Impl::feedback(const httplib::Request& req, const Caller& caller) {
  DecodedFeedback decoded;
  try {
    decoded = decode_feedback(req.body, kMaxRecordsPerRequest, config.time_window, static_cast<int64_t>(std::time(nullptr)));
  } catch (const BodyRefused& e) {
    throw HttpError(e.status, status_title(e.status), fmt::format("{} ({})", e.reason(), e.hint()));
  }
  nlohmann::json errors = nlohmann::json::array();
  for (size_t i = 0; i < std::min<size_t>(decoded.errors.size(), 100); ++i) errors.push_back(decoded.errors[i].to_json());
  if (decoded.rows.empty()) {
    HttpError e(422, "Unprocessable Content", fmt::format("none of the {} feedback records could be used", decoded.records));
    e.extra["errors"] = errors;
    throw e;
  }
  // Stamped here, not taken from the client: the user's variant (assignment is a pure function of
  // the id) and its model's version unless the client names the version it was shown.
  const auto experiment = running_experiment();
  const std::string current_version = recommender ? recommender->model()->version() : "";
  std::vector<store::Feedback> rows = std::move(decoded.rows);
  int64_t stored = 0;
  size_t no_consent = 0;
  {
    auto s = stores->acquire();
    std::unordered_map<std::string, bool> analytics;  // consent, asked once per user
    const std::vector<experiment::Experiment> in_force =
        experiment ? std::vector<experiment::Experiment>{experiment->definition} : std::vector<experiment::Experiment>{};
    no_consent = experiment::stamp_feedback(rows, in_force, [&](const std::string& user) {
      auto [it, fresh] = analytics.try_emplace(user, true);
      if (fresh) it->second = s->consent(user).analytics;
      return it->second;
    });
    for (auto& f : rows)
      if (f.model.empty()) f.model = current_version;
    if (shared_store) {
      stored = s->put_feedback(rows);
    } else {
      std::lock_guard lock(write_mutex);
      stored = s->put_feedback(rows);
    }
  }
  metrics.add_counter("persona_feedback_records_total", "", static_cast<double>(stored));
  (void)caller;
  return json_reply({{"records", decoded.records},
                     {"stored", stored},
                     {"already_stored", static_cast<int64_t>(rows.size()) - stored},
                     {"not_recorded_without_consent", no_consent},
                     {"rejected", decoded.errors.size()},
                     {"errors", errors},
                     {"experiment", experiment ? nlohmann::json(experiment->definition.name) : nlohmann::json()}});
}

Reply Server::Impl::experiments() {
  auto s = stores->acquire();
  nlohmann::json list = nlohmann::json::array(), running_names = nlohmann::json::array();
  for (const auto& e : experiment::load_experiments(*s)) {
    list.push_back(e.to_json());
    if (e.running()) running_names.push_back(e.name);
  }
  return json_reply({{"experiments", list}, {"running", running_names}});
}

Reply Server::Impl::create_experiment(const httplib::Request& req, const Caller& caller) {
  const auto body = body_json(req);
  const auto name = field<std::string>(body, "name", "");
  if (name.empty()) throw HttpError(400, "Bad Request", "\"name\" is required");
  const auto surface = field<std::string>(body, "surface", "recommend");
  const auto given = body.find("variants");
  if (given == body.end() || !given->is_object() || given->size() < 2)
    throw HttpError(400, "Bad Request", "\"variants\" is an object of at least two variants: {\"a\": \"current\", \"b\": \"als.model\"}");
  // Over HTTP a model is "current" or a file of the server's model directory, by name: a caller
  // never points the server at a path of its choosing. Assistant variants are "current" or the
  // settings themselves (an [assistant] table as a JSON object).
  std::string spec;
  std::map<std::string, nlohmann::json> settings;
  for (const auto& [variant, model] : given->items()) {
    if (surface == "assistant" && model.is_object()) {
      settings[variant] = model;
      spec += fmt::format("{}{}=settings", spec.empty() ? "" : ",", variant);
      continue;
    }
    if (!model.is_string())
      throw HttpError(400, "Bad Request", fmt::format("variant {}: \"current\", a model file name, or (assistant) an object of settings", variant));
    const auto file = model.get<std::string>();
    if (file != "current" && (surface == "assistant" || file.empty() || file.find('/') != std::string::npos ||
                              file.find('\\') != std::string::npos || file.find("..") != std::string::npos ||
                              file.find(',') != std::string::npos))
      throw HttpError(400, "Bad Request",
                      fmt::format("variant {}: the model is \"current\" or a file name in the server's model directory, not \"{}\"",
                                  variant, file.substr(0, 200)));
    spec += fmt::format("{}{}={}", spec.empty() ? "" : ",", variant, file == "current" ? file : (fs::path(models_dir) / file).string());
  }
  const auto split = field<std::string>(body, "split", "");
  auto variants = experiment::parse_variants(spec, split);
  for (auto& v : variants)
    if (const auto it = settings.find(v.name); it != settings.end()) v.settings = it->second;
  experiment::Experiment created;
  {
    std::lock_guard lock(write_mutex);
    auto s = stores->acquire();
    created = experiment::create_experiment(*s, name, std::move(variants), models_dir, surface);
    refresh_experiments(*s);
  }
  audit(caller, "experiments.create", {{"experiment", name}, {"surface", surface}, {"variants", spec}, {"split", split}});
  return json_reply(created.to_json(), 201);
}

Reply Server::Impl::end_experiment(const httplib::Request& req, const std::string& name, bool promote, const Caller& caller) {
  experiment::Experiment ended;
  std::string variant;
  {
    std::lock_guard lock(write_mutex);
    auto s = stores->acquire();
    if (!experiment::find_experiment(*s, name)) throw HttpError(404, "Not Found", fmt::format("no experiment \"{}\"", name));
    if (promote) {
      variant = field<std::string>(body_json(req), "variant", "");
      if (variant.empty()) throw HttpError(400, "Bad Request", "\"variant\" is required: the one whose model becomes the recommender");
      ended = experiment::promote_variant(*s, name, variant, models_dir);
    } else {
      ended = experiment::stop_experiment(*s, name);
    }
    refresh_experiments(*s);  // a promoted model is swapped in there
  }
  audit(caller, promote ? "experiments.promote" : "experiments.stop", {{"experiment", name}, {"variant", variant}});
  return json_reply(ended.to_json());
}

Reply Server::Impl::experiment_report(const httplib::Request& req, const std::string& name, const Caller& caller) {
  experiment::ReportOptions o;
  o.alpha = number_param(req, "alpha").value_or(0.05);
  if (!(o.alpha > 0 && o.alpha < 0.5)) throw HttpError(400, "Bad Request", "alpha is between 0 and 0.5");
  auto s = stores->acquire();
  const auto e = experiment::find_experiment(*s, name);
  if (!e) throw HttpError(404, "Not Found", fmt::format("no experiment \"{}\"", name));
  const auto epsilon = number_param(req, "epsilon");
  if (!epsilon) return json_reply(experiment::experiment_report(*e, *s, o));
  // Through differential privacy, charged to the caller's budget like POST /v1/stats/dp.
  experiment::DpReportOptions dp;
  dp.epsilon = *epsilon;
  dp.max_impressions = number_param(req, "max_impressions").value_or(dp.max_impressions);
  dp.max_revenue = number_param(req, "max_revenue").value_or(dp.max_revenue);
  auto rng = privacy::secure_random();
  (void)experiment::experiment_report_dp(*e, {}, dp, *rng);  // bad parameters cost nothing
  std::vector<store::FeedbackTally> tallies;
  s->for_each_feedback_tally(e->name, [&](const store::FeedbackTally& t) { tallies.push_back(t); });
  const std::string dataset = store::store_identity(options.store_path);
  {
    std::lock_guard lock(ledger_mutex);
    ledger->spend(dataset, caller.id(), dp.epsilon, "experiment report " + e->name);
  }
  audit(caller, "dp.experiment_report", {{"dataset", dataset}, {"experiment", e->name}, {"epsilon", dp.epsilon}});
  return json_reply(experiment::experiment_report_dp(*e, tallies, dp, *rng));
}

Reply Server::Impl::profile(const std::string& user) {
  auto s = stores->acquire();
  const auto consent = s->consent(user);
  if (!consent.personalisation)
    throw HttpError(404, "Not Found", "no profile: the user has not consented to personalisation");
  const auto p = s->profile(user);
  if (!p) throw HttpError(404, "Not Found", "no profile for this user (unknown, or profiles not built yet)");
  nlohmann::json j = nlohmann::json::parse(*p, nullptr, false);
  j["consent"] = {{"personalisation", true}, {"analytics", consent.analytics}};
  return json_reply(j);
}

Reply Server::Impl::similar(const httplib::Request& req, const std::string& item) {
  if (!recommender) throw HttpError(503, "Service Unavailable", "no recommender is trained yet (persona train recommend)");
  const auto k = number_param(req, "k").value_or(10);
  if (k < 0 || k > 1000 || k != std::floor(k)) throw HttpError(400, "Bad Request", "k is a whole number from 0 to 1000");
  nlohmann::json items = nlohmann::json::array();
  for (const auto& r : recommender->model()->similar(item, static_cast<size_t>(k), unavailable_items()))
    items.push_back(item_json(r.item, {{"item", r.item}, {"category", r.category}, {"score", r.score}, {"reason", r.reason}}));
  return json_reply({{"item", item}, {"similar", items}});
}

Reply Server::Impl::analyze(const httplib::Request& req) {
  const auto body = body_json(req);
  const auto text = field<std::string>(body, "text", "");
  if (text.empty()) throw HttpError(400, "Bad Request", "\"text\" is required");
  if (text.size() > 100000) throw HttpError(413, "Payload Too Large", "a text of at most 100,000 bytes");
  std::lock_guard lock(analyze_mutex);
  return json_reply(analyzer->analyze(text).to_json());
}

Reply Server::Impl::chat(const httplib::Request& req, const Caller& caller) {
  const auto body = body_json(req);
  const auto message = field<std::string>(body, "message", "");
  const auto user = field<std::string>(body, "user", "");
  auto session = field<std::string>(body, "session", "");
  if (message.empty()) throw HttpError(400, "Bad Request", "\"message\" is required");
  if (message.size() > 4000) throw HttpError(413, "Payload Too Large", "a message of at most 4,000 bytes");
  if (caller.key.role == privacy::Role::User && user != caller.key.user)
    throw HttpError(403, "Forbidden", "a user key chats only as its own user");
  // A new conversation gets 128 random bits: a session id cannot be guessed to read another's.
  if (session.empty()) session = "s" + privacy::random_hex(16);
  if (session.size() > 100) throw HttpError(400, "Bad Request", "\"session\" is at most 100 characters");
  std::lock_guard lock(chat_mutex);
  // In an assistant experiment, the user's variant answers (sticky: their sessions stay with it).
  assistant::Assistant* answering = bot.get();
  const experiment::Variant* variant = nullptr;
  if (chat_experiment) {
    const size_t v = experiment::assign(chat_experiment->definition.salt, user, chat_experiment->definition.variants);
    answering = chat_experiment->bots[v].get();
    variant = &chat_experiment->definition.variants[v];
  }
  auto reply = answering->reply(session, user, message);
  nlohmann::json j = reply.to_json();
  j["session"] = session;
  j["request_id"] = new_request_id();
  if (variant) {
    j["experiment"] = chat_experiment->definition.name;
    j["variant"] = variant->name;
    j["settings_version"] = variant->version;
  }
  return json_reply(j);
}

Reply Server::Impl::segments() {
  auto s = stores->acquire();
  const auto seg = pipeline::load_segments(*s);
  if (!seg) throw HttpError(404, "Not Found", "no segments yet (persona profile build)");
  return json_reply(seg->to_json());
}

// A segment's members, most valuable first: a learned segment by number, or an RFM segment by
// name ("champions", "at risk"). Kept per store generation like the other whole-store answers.
Reply Server::Impl::segment_users(const httplib::Request& req, const std::string& segment) {
  const int limit = int_param(req, "limit", 50, 1, 1000), offset = int_param(req, "offset", 0, 0, 100000000);
  return {200, segment_users_body(segment, limit, offset), "application/json"};
}

std::string Server::Impl::segment_users_body(const std::string& segment, int limit, int offset, bool fresh) {
  const bool learned = !segment.empty() && segment.find_first_not_of("0123456789") == std::string::npos;
  if (learned && segment.size() > 6) throw HttpError(404, "Not Found", fmt::format("no segment {}", segment));
  auto s = stores->acquire();
  // Offset and limit first: the segment's name may hold any character but a slash.
  const std::string key = fmt::format("segment_users/{}/{}/{}", offset, limit, segment);
  return aggregates.get(*s, key, [&] {
            struct Member {
              double monetary;
              nlohmann::json row;
            };
            std::vector<Member> members;
            s->for_each_profile([&](const std::string&, const std::string& json) {
              const auto p = nlohmann::json::parse(json);
              const auto& rfm = p.at("rfm");
              const bool in = learned ? p.value("segment", -1) == std::stoi(segment)
                                      : rfm.value("segment", "") == segment;
              if (!in) return;
              const double monetary = rfm.value("monetary", 0.0);
              members.push_back({monetary, {{"user", p.at("user")}, {"segment", p.value("segment", -1)},
                                            {"rfm_segment", rfm.value("segment", "")},
                                            {"recency_days", rfm.at("recency_days")}, {"frequency", rfm.value("frequency", 0)},
                                            {"monetary", monetary}, {"events", p.at("activity").value("events", 0)},
                                            {"propensity", p.value("propensity", nlohmann::json())},
                                            {"tags", p.value("tags", nlohmann::json::array())}}});
            });
            if (members.empty()) throw HttpError(404, "Not Found", fmt::format("no users in segment \"{}\"", segment));
            std::stable_sort(members.begin(), members.end(), [](const Member& a, const Member& b) {
              return a.monetary > b.monetary || (a.monetary == b.monetary && a.row["user"] < b.row["user"]);
            });
            nlohmann::json users = nlohmann::json::array();
            for (size_t i = static_cast<size_t>(offset); i < members.size() && users.size() < static_cast<size_t>(limit); ++i)
              users.push_back(std::move(members[i].row));
            return nlohmann::json({{"segment", segment}, {"total", members.size()}, {"offset", offset},
                                   {"users", std::move(users)}})
                .dump();
          }, fresh);
}

std::string Server::Impl::rfm_body(bool fresh) {
  auto s = stores->acquire();
  return aggregates.get(*s, "rfm", [&] { return dump_json(rfm_grid(*s)); }, fresh);
}

// The catalogue's categories (every level of every path) with their Chinese names where known:
// the dashboard shows categories in the reader's language.
Reply Server::Impl::categories() {
  nlohmann::json list = nlohmann::json::array();
  {
    std::lock_guard lock(unavailable_mutex);
    for (const auto& [name, c] : category_names) {
      nlohmann::json j = {{"name", name}, {"items", c.items}};
      if (!c.zh.empty()) j["name_zh"] = c.zh;
      list.push_back(std::move(j));
    }
  }
  return json_reply({{"categories", std::move(list)}});
}

Reply Server::Impl::stats() { return {200, stats_body(), "application/json"}; }

std::string Server::Impl::stats_body(bool fresh) {
  auto s = stores->acquire();
  return aggregates.get(*s, "stats", [&] {
    const auto st = s->stats(10);
    auto rows = [](const std::vector<store::CountRow>& v) {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& r : v) a.push_back({{"name", r.name}, {"count", r.count}, {"detail", r.detail}});
      return a;
    };
    auto titled = [this](nlohmann::json items) {  // each item's titles, English and Chinese
      for (auto& r : items) {
        const std::string id = r["name"];
        r = item_json(id, std::move(r));
      }
      return items;
    };
    return dump_json({{"users", st.users},
                      {"items", st.items},
                      {"events", st.events},
                      {"texts", st.texts},
                      {"sessions", st.sessions},
                      {"rejects", st.rejects},
                      {"revenue", st.revenue},
                      {"first_event", st.first_event ? format_timestamp(*st.first_event) : ""},
                      {"last_event", st.last_event ? format_timestamp(*st.last_event) : ""},
                      {"event_types", rows(st.event_types)},
                      {"top_items", titled(rows(st.top_items))},
                      {"top_categories", rows(st.top_categories)},
                      {"text_languages", rows(st.text_languages)}});
  }, fresh);
}

std::string Server::Impl::timeline_body(int days, bool fresh) {
  auto s = stores->acquire();
  return aggregates.get(*s, fmt::format("timeline/{}", days), [&] { return dump_json(activity_timeline(s->events(), days)); }, fresh);
}

std::string Server::Impl::demand_body(int weeks, bool fresh) {
  auto s = stores->acquire();
  return aggregates.get(*s, fmt::format("demand/{}", weeks), [&] {
    const auto events = s->events();
    std::lock_guard analyzing(analyze_mutex);
    return dump_json(demand_overview(*s, events, *analyzer, keyword_index ? &*keyword_index : nullptr, weeks));
  }, fresh);
}

// What the dashboard's overview and demand pages ask for by default (web/src/pages), computed
// for the data as it is now.
void Server::Impl::warm_aggregates() {
  // Several servers of one PostgreSQL store: the leader computes them for all (the others take
  // them from the store), and every answer any server was asked for (the store lists their keys).
  if (shared_store && !leading) return;
  try {
    if (shared_store) {
      auto s = stores->acquire();
      for (const auto& key : s->shared_answer_keys()) aggregates.know(key);
    }
    stats_body(true);
    timeline_body(90, true);
    demand_body(12, true);
    rfm_body(true);
    // And every other answer kept (other days= and weeks=, segments' users), served stale
    // meanwhile: each key names its route and parameters.
    for (const auto& key : aggregates.keys()) {
      std::vector<std::string> part;
      for (size_t at = 0, slash; at <= key.size(); at = slash + 1) {
        slash = part.size() == 3 ? key.size() : std::min(key.find('/', at), key.size());
        part.push_back(key.substr(at, slash - at));
      }
      if (part[0] == "timeline" && part.size() == 2 && part[1] != "90") timeline_body(std::stoi(part[1]), true);
      if (part[0] == "demand" && part.size() == 2 && part[1] != "12") demand_body(std::stoi(part[1]), true);
      if (part[0] == "segment_users" && part.size() == 4) {
        try {
          segment_users_body(part[3], std::stoi(part[2]), std::stoi(part[1]), true);
        } catch (const HttpError&) {  // the segment is gone (no users now): asked again, it says so
          aggregates.forget(key);
        }
      }
    }
  } catch (const std::exception& e) {
    if (log) {
      std::lock_guard lock(log_mutex);
      fmt::print(log, "{}\n", dump_json({{"error", std::string(e.what()).substr(0, 1000)}, {"task", "dashboard aggregates"}}));
    }
  }
}

Reply Server::Impl::dp(const httplib::Request& req, const Caller& caller) {
  const auto body = body_json(req);
  pipeline::DpQuery q;
  q.statistic = field<std::string>(body, "statistic", "");
  q.analyst = caller.id();  // budgets are per key: an analyst cannot spend another's
  q.epsilon = field<double>(body, "epsilon", 0.1);
  q.event = field<std::string>(body, "event", "");
  q.upper = field<double>(body, "upper", 0);
  q.resolution = field<double>(body, "resolution", 0.01);
  q.q = field<double>(body, "q", 0.5);
  q.by = field<std::string>(body, "by", "region");
  // Whole numbers read as doubles first: a cast of 1e20 to int would be undefined.
  auto whole = [&](const char* name, double fallback, double lo, double hi) {
    const double v = field<double>(body, name, fallback);
    if (!(v >= lo && v <= hi) || v != std::floor(v))
      throw HttpError(400, "Bad Request", fmt::format("{} is a whole number from {} to {}", name, lo, hi));
    return static_cast<int>(v);
  };
  q.bins = whole("bins", 100, 2, 100000);
  q.max_per_user = whole("max_per_user", 1, 1, 1000);
  const std::string dataset = store::store_identity(options.store_path);
  auto s = stores->acquire();
  nlohmann::json j;
  {
    std::lock_guard lock(ledger_mutex);
    j = pipeline::run_dp_query(*s, dataset, *ledger, q);
  }
  audit(caller, "dp." + q.statistic, {{"dataset", dataset}, {"epsilon", q.epsilon}});
  return json_reply(j);
}

Reply Server::Impl::erase(const std::string& user, const Caller& caller) {
  pipeline::ErasureReport report;
  {
    std::lock_guard lock(write_mutex);
    auto s = stores->acquire();
    pipeline::ErasureOptions o;
    o.reject_log = options.config_path.empty() ? store::local_base(options.store_path) + ".rejects.jsonl" : config.reject_log_path();  // and the registered ones
    o.models_dir = models_dir;
    o.keys = keys ? &*keys : nullptr;
    o.api_keys = options.api_keys_path;  // "": the store's (its database's on PostgreSQL)
    o.store_location = options.store_path;
    o.actor = "api:" + caller.id();
    // The answer comes once the data is gone; the recommender (which learned item scores from the
    // person's events, tens of seconds to train again on a large store) follows in the background.
    o.defer_retrain = recommender != nullptr;
    report = pipeline::erase_user(*s, user, o);
  }
  cache.forget(user);
  try {
    std::lock_guard lock(chat_mutex);
    bot->forget_user(user);  // the person's conversations (in Redis: every server's)
    if (chat_experiment)
      for (auto& b : chat_experiment->bots) b->forget_user(user);
  } catch (const std::exception& e) {
    HttpError failed(503, "Service Unavailable",
                     fmt::format("the store's data of this user is erased, but not their conversations: {}; send the erasure "
                                 "again once Redis answers",
                                 e.what()));
    failed.retry_after = 1;
    throw failed;
  }
  warmer->request({});
  if (!report.complete()) {
    // The person may still be somewhere: say exactly where, as a server error (retry later).
    HttpError e(500, "Internal Server Error", "the erasure did not finish every step; see \"erasure\"");
    e.extra["erasure"] = report.to_json();
    throw e;
  }
  if (!report.found) throw HttpError(404, "Not Found", "the store does not know this user (files were still searched)");
  if (report.models_pending.empty()) {
    if (recommender && !report.models_retrained.empty() && fs::exists(recommend_model_path())) swap_in_recommender();
    return json_reply(report.to_json());
  }
  const nlohmann::json answer = erasures.start(report);
  erasure_followups->request({answer["id"].get<std::string>()});
  return json_reply(answer, 202);
}

// After erasures answered 202: the recommender trained again without the people erased, once for
// all the erasures gathered, and swapped in. A retrain started before them is swapped in first,
// never after (it may have learned from them).
void Server::Impl::retrain_after_erasures(const std::set<std::string>& ids) {
  std::string error;
  try {
    recommender->wait();
    std::lock_guard lock(write_mutex);
    auto s = stores->acquire();
    // Published too: the other servers of a shared store swap it in.
    if (!pipeline::retrain_recommender(*s, recommend_model_path(), {{"retrained_after_erasure", true}}))
      error = "the store has no events left to train on: the recommender file was removed";
  } catch (const std::exception& e) {
    // A model that learned from the people erased must not stay on disk, nor published.
    std::error_code ec;
    fs::remove(recommend_model_path(), ec);
    try {
      stores->acquire()->withdraw_model("recommend");
    } catch (const std::exception&) {
      // the store is away: its copy is withdrawn by the next erasure or retrain
    }
    error = fmt::format("retraining failed ({}): the recommender file was removed", e.what());
  }
  if (fs::exists(recommend_model_path())) swap_in_recommender();
  erasures.finish(ids, error);
}

void Server::Impl::swap_in_recommender() {
  recommender->wait();
  recommender->swap(std::make_shared<const recommend::RecommendModel>(recommend::RecommendModel::load(recommend_model_path())));
  cache.clear();
  note_model_version();
}

Reply Server::Impl::erasure_status(const std::string& id) {
  auto j = erasures.status(id);
  if (!j) throw HttpError(404, "Not Found", "no erasure with this id on this server (ids last until it restarts; the audit log keeps every erasure)");
  return json_reply(*j);
}

Reply Server::Impl::models() {
  nlohmann::json j = nlohmann::json::object();
  if (recommender) {
    const auto m = recommender->model();
    j["recommend"] = {{"file", recommend_model_path()}, {"items", m->items()}, {"metrics", m->metrics()},
                      {"retrain_error", recommender->last_error()}};
  }
  nlohmann::json text = nlohmann::json::object();
  for (const auto task : {demand::TextTask::Sentiment, demand::TextTask::Category, demand::TextTask::Intent})
    text[demand::text_task_name(task)] = analyzer->model(task).has_value();
  j["text"] = text;
  const auto overview = model_overview(models_dir);
  j["files"] = overview["files"];
  j["history"] = overview["history"];
  return json_reply(j);
}

Reply Server::Impl::timeline(const httplib::Request& req) {
  return {200, timeline_body(int_param(req, "days", 90, 1, 3660)), "application/json"};
}

Reply Server::Impl::user_events(const httplib::Request& req, const std::string& user) {
  const int limit = int_param(req, "limit", 200, 1, 10000);
  auto s = stores->acquire();
  const auto history = s->history(user);
  auto j = user_timeline(history, static_cast<size_t>(limit));
  for (auto& e : j["events"])
    if (e.contains("item") && e["item"].is_string()) e = item_json(e["item"].get<std::string>(), e);
  const auto consent = s->consent(user);
  j["user"] = user;
  j["consent"] = {{"personalisation", consent.personalisation}, {"analytics", consent.analytics}};
  return json_reply(j);
}

Reply Server::Impl::demand_page(const httplib::Request& req) {
  return {200, demand_body(int_param(req, "weeks", 12, 1, 520)), "application/json"};
}

Reply Server::Impl::privacy_page() {
  nlohmann::json j;
  const std::string dataset = store::store_identity(options.store_path);
  nlohmann::json budgets = nlohmann::json::array();
  std::vector<privacy::BudgetLedger::Account> accounts;
  {
    std::lock_guard lock(ledger_mutex);
    accounts = ledger->accounts(dataset);
  }
  for (const auto& a : accounts)
    budgets.push_back({{"analyst", a.analyst}, {"budget", a.budget}, {"spent", a.spent}, {"queries", a.queries},
                       {"last", a.last_time ? format_timestamp(a.last_time) : ""}});
  j["budgets"] = budgets;
  // The audit log: its verdict and newest entries (they hold actors, actions and receipt ids,
  // never user ids). Without a key the chain cannot be checked, and there is no log.
  nlohmann::json audit_json = {{"path", privacy::default_audit_log_path()}, {"entries", nlohmann::json::array()}};
  int64_t erasures = 0;
  if (keys) {
    const auto log = store::open_audit_log(options.store_path, *keys);  // the database's on PostgreSQL
    audit_json["path"] = log.path();
    const auto verdict = log.verify();
    audit_json["intact"] = verdict.intact;
    audit_json["total"] = verdict.entries;
    if (!verdict.intact) audit_json["problem"] = verdict.problem;
    std::vector<nlohmann::json> entries;
    log.for_each([&](const std::string& line) {
      auto e = parse_json(line).value_or(nlohmann::json());
      if (!e.is_object()) return;
      if (e.value("action", "").rfind("erase", 0) == 0) ++erasures;
      entries.push_back({{"seq", e.value("seq", int64_t{0})}, {"time", e.value("time", nlohmann::json())},
                         {"actor", e.value("actor", "")}, {"action", e.value("action", "")},
                         {"details", e.value("details", nlohmann::json::object())}});
    });
    for (size_t i = 0; i < entries.size() && i < 100; ++i) audit_json["entries"].push_back(entries[entries.size() - 1 - i]);
  }
  j["audit"] = audit_json;
  j["erasures"] = erasures;
  auto s = stores->acquire();
  j["sealed"] = s->sealed();
  j["consent_refused"] = {{"personalisation", s->users_refusing(store::Use::Personalisation).size()},
                          {"analytics", s->users_refusing(store::Use::Analytics).size()}};
  return json_reply(j);
}

Reply Server::Impl::retrain(const Caller& caller) {
  if (!recommender) throw HttpError(409, "Conflict", "no recommender to retrain: train one first (persona train recommend)");
  const auto path = recommend_model_path();
  const std::string store_path = options.store_path;
  const auto keys_for_store = shared_keys;
  const bool started = recommender->retrain_async([this, path, store_path, keys_for_store] {
    // As a writer: an erasure cannot run between reading the events and saving the model, so a
    // model never learns from someone erased meanwhile (erase() waits for this one to be swapped in).
    std::lock_guard lock(write_mutex);
    auto s = store::open_store(store_path, store::StoreOptions{keys_for_store});
    auto model = pipeline::retrain_recommender(*s, path);
    if (!model) throw std::runtime_error("the store has no events left to train on");  // (published: every server swaps it in)
    cache.clear();
    note_model_version();
    return std::move(*model);
  });
  if (!started) throw HttpError(409, "Conflict", "a retrain is already running");
  audit(caller, "models.retrain", {{"model", "recommend"}});
  return json_reply({{"status", "started"}, {"model", "recommend"}}, 202);
}

void Server::Impl::add_routes() {
  // A handler takes the request and the caller, and the path's parameter when its path has one.
  auto add = [this](std::string method, std::string path, std::vector<std::string> scopes, bool subject, auto handler) {
    Route r{std::move(method), std::move(path), std::move(scopes), subject, false, {}, 0};
    if constexpr (std::is_invocable_v<decltype(handler), const httplib::Request&, const Caller&, const std::string&>)
      r.handler = std::move(handler);
    else
      r.handler = [h = std::move(handler)](const httplib::Request& req, const Caller& c, const std::string&) { return h(req, c); };
    routes.push_back(std::move(r));
  };
  add("GET", "/healthz", {}, false, [](auto&, auto&) { return json_reply({{"status", "ok"}}); });
  add("GET", "/readyz", {}, false, [this](auto&, auto&) {
    nlohmann::json j = {{"recommender", recommender != nullptr}};
    bool ok = ready.load();
    if (ok && !shared_keys && stores->acquire()->sealed()) {
      // Every write, and every read of a text or attribute, would fail: not ready.
      ok = false;
      j["reason"] = "the store is sealed and this server has no key (start it with --key-file or PERSONA_KEY_FILE)";
    }
    j["ready"] = ok;
    return json_reply(j, ok ? 200 : 503);
  });
  add("GET", "/metrics", {"stats:read"}, false, [this](auto&, auto&) {
    metrics.set_gauge("persona_recommend_cache_entries", "", static_cast<double>(cache.size()));
    if (global_limiter) {
      metrics.set_gauge("persona_rate_limit_redis_up", "", global_limiter->redis_up() ? 1 : 0);
      metrics.set_gauge("persona_rate_limit_servers", "", global_limiter->servers());
      metrics.set_gauge("persona_rate_limit_local_decisions", "", static_cast<double>(global_limiter->local_decisions()));
    }
    return Reply{200, metrics.render(), "text/plain; version=0.0.4"};
  });
  add("GET", "/v1/openapi.json", {}, false, [](auto&, auto&) { return Reply{200, kOpenApiJson, "application/json"}; });
  for (const Entity e : {Entity::Event, Entity::User, Entity::Item, Entity::Text})
    add("POST", fmt::format("/v1/{}s", entity_name(e)), {fmt::format("{}s:write", entity_name(e))}, false,
        [this, e](const httplib::Request& req, const Caller& c) { return ingest(e, req, c); });
  add("GET", "/v1/users/{id}/profile", {"profiles:read", "profile"}, true,
      [this](const httplib::Request& req, auto&, const std::string& id) { return profile(id); });
  add("GET", "/v1/users/{id}/recommendations", {"recommend:read", "recommend"}, true,
      [this](const httplib::Request& req, auto&, const std::string& id) { return recommendations(req, id); });
  add("DELETE", "/v1/users/{id}", {"users:erase"}, true,
      [this](const httplib::Request& req, const Caller& c, const std::string& id) { return erase(id, c); });
  add("GET", "/v1/erasures/{id}", {"users:erase"}, false,
      [this](const httplib::Request& req, auto&, const std::string& id) { return erasure_status(id); });
  add("GET", "/v1/items/{id}/similar", {"recommend:read"}, false,
      [this](const httplib::Request& req, auto&, const std::string& id) { return similar(req, id); });
  add("POST", "/v1/analyze", {"analyze"}, false, [this](const httplib::Request& req, auto&) { return analyze(req); });
  add("POST", "/v1/chat", {"chat"}, false, [this](const httplib::Request& req, const Caller& c) { return chat(req, c); });
  routes.back().subject_in_body = true;
  add("GET", "/v1/segments", {"segments:read"}, false, [this](auto&, auto&) { return segments(); });
  add("GET", "/v1/segments/rfm", {"segments:read"}, false,
      [this](auto&, auto&) { return Reply{200, rfm_body(), "application/json"}; });
  add("GET", "/v1/segments/{id}/users", {"profiles:read"}, false,
      [this](const httplib::Request& req, auto&, const std::string& id) { return segment_users(req, id); });
  add("GET", "/v1/categories", {"stats:read"}, false, [this](auto&, auto&) { return categories(); });
  add("GET", "/v1/users/{id}/events", {"profiles:read", "profile"}, true,
      [this](const httplib::Request& req, auto&, const std::string& id) { return user_events(req, id); });
  add("GET", "/v1/stats/timeline", {"stats:read"}, false, [this](const httplib::Request& req, auto&) { return timeline(req); });
  add("GET", "/v1/demand", {"stats:read"}, false, [this](const httplib::Request& req, auto&) { return demand_page(req); });
  add("GET", "/v1/privacy", {"audit:read"}, false, [this](auto&, auto&) { return privacy_page(); });
  add("GET", "/v1/stats", {"stats:read"}, false, [this](auto&, auto&) { return stats(); });
  add("POST", "/v1/stats/dp", {"dp:query"}, false, [this](const httplib::Request& req, const Caller& c) { return dp(req, c); });
  add("GET", "/v1/models", {"models:read"}, false, [this](auto&, auto&) { return models(); });
  add("POST", "/v1/models/recommend/retrain", {"models:train"}, false,
      [this](auto&, const Caller& c) { return retrain(c); });
  add("POST", "/v1/feedback", {"feedback:write"}, false,
      [this](const httplib::Request& req, const Caller& c) { return feedback(req, c); });
  add("GET", "/v1/experiments", {"experiments:read"}, false, [this](auto&, auto&) { return experiments(); });
  add("POST", "/v1/experiments", {"experiments:write"}, false,
      [this](const httplib::Request& req, const Caller& c) { return create_experiment(req, c); });
  add("GET", "/v1/experiments/{name}/report", {"experiments:read"}, false,
      [this](const httplib::Request& req, const Caller& c, const std::string& id) { return experiment_report(req, id, c); });
  add("POST", "/v1/experiments/{name}/stop", {"experiments:write"}, false,
      [this](const httplib::Request& req, const Caller& c, const std::string& id) { return end_experiment(req, id, false, c); });
  add("POST", "/v1/experiments/{name}/promote", {"experiments:write"}, false,
      [this](const httplib::Request& req, const Caller& c, const std::string& id) { return end_experiment(req, id, true, c); });
  // On the event loop: answers from memory or one user's rows. The rest goes to the workers.
  const std::set<std::string> quick = {"/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/v1/users/{id}/profile",
                                       "/v1/users/{id}/recommendations", "/v1/items/{id}/similar", "/v1/users/{id}/events"};
  for (auto& r : routes) {
    r.metric = metrics.add_route(r.method, r.path);
    r.quick = r.method == "GET" && quick.count(r.path) > 0;
    for (size_t at = 1; at <= r.path.size();) {
      const size_t slash = std::min(r.path.find('/', at), r.path.size());
      const std::string segment = r.path.substr(at, slash - at);
      r.segments.push_back(segment.front() == '{' ? "{}" : segment);
      at = slash + 1;
    }
  }
}

void Server::Impl::install() {
  TransportOptions t;
  t.host = options.host;
  t.port = options.port;
  t.loops = options.io_threads;
  t.workers = options.threads;
  t.max_body_bytes = options.max_body_bytes;
  t.max_total_body_bytes = std::max(options.max_total_body_bytes, options.max_body_bytes);
  t.read_timeout = std::chrono::seconds(options.read_timeout_s);
  t.write_timeout = std::chrono::seconds(options.write_timeout_s);
  t.tls_cert = options.tls_cert;
  t.tls_key = options.tls_key;
  if (t.tls_cert.empty() != t.tls_key.empty()) throw Error("HTTPS needs both --tls-cert and --tls-key");
  // The dashboard runs only its own bundled script (no CDN, no inline code), and no other site
  // may frame it.
  t.default_headers = {{"X-Content-Type-Options", "nosniff"},
                       {"Cache-Control", "no-store"},
                       {"Referrer-Policy", "no-referrer"},
                       {"Content-Security-Policy",
                        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"}};
  if (!options.web_dir.empty()) {
    if (!fs::is_directory(options.web_dir)) throw Error("the dashboard's directory is missing", {options.web_dir});
    // Only the files the dashboard's build lists are served: a folder may hold more (the build
    // tree's cmake_install.cmake was served once, with its paths).
    const auto manifest = fs::path(options.web_dir) / "dashboard-files.txt";
    std::ifstream in(manifest);
    if (!in)
      throw Error("not a built dashboard: it has no dashboard-files.txt", {options.web_dir},
                  "give the folder the build made (build/<preset>/dashboard), or --web none");
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line.find("..") == std::string::npos) web_files.insert(line);
  }
  try {
    http = std::make_unique<HttpTransport>(std::move(t), [this](httplib::Request& req) { return plan(req); });
  } catch (const std::exception& e) {
    throw Error("cannot start HTTPS with this certificate and key", {options.tls_cert}, e.what());
  }
}

Plan Server::Impl::plan(httplib::Request& req) {
  bool path_known = false;
  std::string id;
  for (const auto& route : routes) {
    if (!route_matches(route.segments, req.path, id)) continue;
    path_known = true;
    if (route.method != req.method) continue;
    // A known key's request is answered on the loop; a key never seen is checked (Argon2id,
    // tens of milliseconds) on a worker.
    bool quick = route.quick;
    std::optional<privacy::ApiKey> known;
    if (options.require_keys && !route.scopes.empty()) {
      const std::string_view presented = presented_key(req);
      if (!presented.empty()) known = api_keys->authenticate_cached(presented);
      // A caller past its failed-authentication limit is refused on the loop: no worker, no Argon2id.
      if (const double wait = known || presented.empty() ? 0 : failed_auth_wait(req.remote_addr, presented); wait > 0)
        return {[this, wait](httplib::Request& rq, httplib::Response& rs) {
                  rs.set_header("Retry-After", std::to_string(static_cast<int>(std::ceil(wait))));
                  refuse(rq, rs, 429, "too many failed authentications from this address or for this key; wait and retry");
                },
                true};
      quick = quick && known;
    }
    return {[this, &route, id = std::move(id), known = std::move(known)](httplib::Request& rq, httplib::Response& rs) mutable {
              dispatch(route, rq, rs, id, std::move(known));  // (a plan is answered once)
            },
            quick};
  }
  if (!path_known && req.method == "GET" && !options.web_dir.empty())
    return {[this](httplib::Request& rq, httplib::Response& rs) { serve_file(rq, rs); }, true};
  const int status = path_known ? 405 : 404;
  const std::string detail = path_known ? fmt::format("{} is not allowed on {}", req.method.substr(0, 20), req.path.substr(0, 200))
                                        : fmt::format("no route for {} {}", req.method.substr(0, 20), req.path.substr(0, 200));
  return {[this, status, detail](httplib::Request& rq, httplib::Response& rs) { refuse(rq, rs, status, detail); }, true};
}

void Server::Impl::refuse(const httplib::Request& req, httplib::Response& res, int status, const std::string& detail) {
  res.status = status;
  res.set_content(problem_body(status, status_title(status), detail), "application/problem+json");
  access_log(nullptr, req, status, 0, "-");
}

// The dashboard's files, only from inside its folder: a path with a ".." segment (decoded
// already) or a NUL is refused, and the file found must resolve to a place inside the folder
// (no symlink out).
void Server::Impl::serve_file(const httplib::Request& req, httplib::Response& res) {
  const std::string& path = req.path;
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos || path.find('\\') != std::string::npos)
    return refuse(req, res, 400, "not a file path");
  for (size_t at = 0; at != std::string::npos;) {
    const size_t next = path.find('/', at + 1);
    const std::string_view segment = std::string_view(path).substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    if (segment == "..") return refuse(req, res, 400, "\"..\" is not allowed in a path");
    at = next;
  }
  const std::string name = path == "/" ? "index.html" : path.substr(1);
  if (!web_files.count(name)) return refuse(req, res, 404, fmt::format("no file {}", path.substr(0, 200)));
  std::error_code ec;
  const fs::path root = fs::canonical(options.web_dir, ec);
  const fs::path file = root / fs::path(name);
  const fs::path real = fs::weakly_canonical(file, ec);
  const auto [end, unused] = std::mismatch(root.begin(), root.end(), real.begin(), real.end());
  if (ec || end != root.end() || !fs::is_regular_file(real, ec))
    return refuse(req, res, 404, fmt::format("no file {}", path.substr(0, 200)));
  std::ifstream in(real, std::ios::binary);
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  static const std::map<std::string, std::string> types = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"}, {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"}, {".map", "application/json"}};
  const auto type = types.find(real.extension().string());
  res.status = 200;
  res.set_content(std::move(body), type == types.end() ? "application/octet-stream" : type->second);
  access_log(nullptr, req, 200, 0, "-", "(file)");
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->load();
  impl_->add_routes();
  impl_->install();
}

Server::~Server() {
  stop();
  impl_->stop_watching_experiments();
  impl_->stop_following();
  impl_->refresher->stop();
  impl_->warmer->stop(false);
  impl_->erasure_followups->stop();
}

int Server::bind() {
  try {
    return impl_->http->bind();
  } catch (const std::exception& e) {
    throw Error(fmt::format("cannot listen on {}:{}", impl_->options.host, impl_->options.port), {},
                fmt::format("{}; is another server on that port? choose another with --port", e.what()));
  }
}

void Server::run() {
  impl_->ready = true;
  impl_->http->run();  // returns once every request in flight is answered
  impl_->ready = false;
  impl_->stop_watching_experiments();
  impl_->stop_following();
  impl_->refresher->stop();  // profiles still due are refreshed first
  impl_->warmer->stop(false);
  impl_->erasure_followups->stop();  // the people erased leave the recommender before the server stops
}

void Server::warm_dashboard(const std::string& key) {
  if (!key.empty() && impl_->api_keys) impl_->api_keys->authenticate(key);
  impl_->warm_aggregates();
}

void Server::stop() {
  impl_->ready = false;
  if (impl_->http) impl_->http->stop();
  if (impl_->recommender) impl_->recommender->wait();
}

std::vector<std::pair<std::string, std::string>> Server::routes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : impl_->routes) out.emplace_back(r.method, r.path);
  return out;
}

const nlohmann::json& Server::openapi() {
  static const nlohmann::json doc = nlohmann::json::parse(kOpenApiJson);
  return doc;
}

}  // namespace persona::server
