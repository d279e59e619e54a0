#pragma once
// The server's HTTP/1.1 transport on Asio and Beast's parser (Debian's libboost-dev): a few event
// loops (one per core) read and write every connection, with keep-alive, HTTPS (OpenSSL) when a
// certificate is given, body and header limits, read and write timeouts, and `Expect:
// 100-continue`. Quick answers (a cached recommendation) are computed on the loop; the others
// (ingest, chat, statistics) on a pool of worker threads, so a slow request never holds a loop.
//
// Why not cpp-httplib, which the server used first: it gives every keep-alive connection a thread
// of its own, so 64 busy connections were 64 runnable threads on 2 cores and a request's latency
// tail was the scheduler's (S1: p99 1.97x nginx's). Event loops are how nginx serves the same load.
//
// Why each loop has an io_context of its own, and answers are written by hand: the first version
// shared one io_context between the loops, with a strand per connection, a timer set and
// cancelled around every read and write, and Beast's message serializer. Profiled on S1, that
// machinery cost about 19 us of CPU per request, four times nginx's whole answer
// (docs/benchmarks.md, S1). A loop now owns its connections outright (as nginx's workers do), a
// sweep twice a second enforces the timeouts, and an answer's head is a few appends to a buffer
// the connection keeps.
//
// Requests and answers are cpp-httplib's plain structs (httplib::Request / Response), so the
// server's handlers do not depend on the transport.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace persona::server {

struct TransportOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0: any free port
  int loops = 0;                     // event-loop threads; 0 = one per core
  int workers = 16;                  // threads for the answers that are not quick
  size_t max_body_bytes = 16u << 20;
  size_t max_total_body_bytes = 64u << 20;  // all bodies held at once; past it, 503 and Retry-After
  size_t max_header_bytes = 16u << 10;
  std::chrono::seconds read_timeout{10}, write_timeout{10};
  std::string tls_cert, tls_key;     // both set: HTTPS
  std::vector<std::pair<std::string, std::string>> default_headers;  // on every answer
};

// How one request is answered: `answer` fills the response; it runs on the event loop when
// `quick`, else on a worker.
struct Plan {
  std::function<void(httplib::Request&, httplib::Response&)> answer;
  bool quick = false;
};
// Chooses the plan for a request (on the event loop: it must not block). The request's method,
// path (percent-decoded), params (the query, decoded), headers, body and remote address are set.
using Planner = std::function<Plan(httplib::Request&)>;

// A request target split into path and query, percent-decoded: req.path (a '+' stays a '+') and
// req.params ('+' is a space in a query); a malformed escape is kept as written. The transport's
// own parsing of what a client sends, so it is fuzzed (fuzz/fuzz_api_records.cc).
void decode_target(std::string_view target, httplib::Request& req);

class HttpTransport {
 public:
  HttpTransport(TransportOptions options, Planner planner);
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Binds and listens; returns the port. Throws std::runtime_error when it cannot.
  int bind();
  // Serves until stop(): then stops accepting, finishes every request in flight (its answer is
  // written), closes idle connections and returns.
  void run();
  // Any thread, any number of times.
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace persona::server
