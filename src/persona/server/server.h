#pragma once
// `persona serve`: every stage behind an HTTP API (JSON, v1), on Boost.Beast event loops
// (http_transport.h; HTTPS through OpenSSL). docs/api.md describes it and
// docs/openapi.json (built into the binary, served at /v1/openapi.json) specifies it; a test
// checks that the two agree with the routes registered here.
//
// Every route but /healthz, /readyz and /v1/openapi.json needs an API key (`persona keys create`)
// whose role holds the route's scope; a user-role key reaches only its own user. Errors are
// application/problem+json with a reason. Access log lines name the route, never the path (which
// may hold a user id), and never a key's secret.
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace persona::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0: any free port (bind() says which)
  int io_threads = 0;                // event loops reading and writing every connection; 0 = one per core
  int threads = 16;                  // workers for the slower routes (ingest, chat, statistics, ...)
  std::string store_path = "persona.db";
  std::string config_path;           // optional: profile settings, the reject log
  std::string models_dir;            // "" = $PERSONA_MODELS or ./models
  std::string key_file;              // "" = the usual search (privacy::KeyRing::discover)
  std::string api_keys_path;         // "" = $PERSONA_API_KEYS or ./persona-api-keys.json
  bool require_keys = true;          // false (--no-auth): every caller is an admin; for a laptop
  std::string tls_cert, tls_key;     // both set: HTTPS
  size_t max_body_bytes = 16u << 20;
  size_t max_total_body_bytes = 64u << 20;  // request bodies held at once (then 503 and Retry-After)
  int read_timeout_s = 10, write_timeout_s = 10;
  double rate_per_s = 100, burst = 200;  // per API key (0: unlimited)
  std::string web_dir;               // the dashboard's files, served at / ("" = none)
  bool cache = true;                 // keep recommendation answers until the user's data changes
  double cache_ttl_s = 300;          // and at most this long (a safety net: changes empty them first)
  std::string access_log = "-";      // "-" stderr, "" none, or a file
  // Several servers (docs/operations.md): rate limits and assistant conversations shared through
  // Redis (redis://host:port/db); "" keeps both in this process.
  std::string redis_url;
};

class Server {
 public:
  // Opens the store and loads the models; throws persona::Error when it cannot.
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the address; returns the port (the chosen one for port 0). Throws when it cannot.
  int bind();
  // Serves until stop(); requests in flight finish first.
  void run();
  // Stops accepting and ends run() once the requests in flight are answered. Any thread.
  void stop();
  // Computes the dashboard's aggregates now (they are also computed in the background from the
  // start): the demo calls it before it prints the dashboard's address. `key`: the API key the
  // printed link carries, verified now (Argon2id: a noticeable part of a second) so that the
  // first page's requests find it verified.
  void warm_dashboard(const std::string& key = "");

  // (method, OpenAPI path) of every route, e.g. ("GET", "/v1/users/{id}/profile").
  std::vector<std::pair<std::string, std::string>> routes() const;
  // The OpenAPI document built into the binary.
  static const nlohmann::json& openapi();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace persona::server
