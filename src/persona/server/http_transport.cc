#include "persona/server/http_transport.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include <httplib.h>  // the Request and Response structs only

namespace persona::server {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX escapes decoded (a malformed one is kept as it is); in a query, '+' is a space.
std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2])));
      i += 2;
    } else {
      out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

void parse_query(std::string_view query, httplib::Params& params) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      params.emplace(percent_decode(pair.substr(0, eq), true),
                     eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1), true));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
}

// What the transport itself refuses (before any route), as application/problem+json.
std::string problem(int status, const char* title, const std::string& detail) {
  return nlohmann::json{{"type", "about:blank"}, {"title", title}, {"status", status}, {"detail", detail}}.dump();
}

}  // namespace

void decode_target(std::string_view target, httplib::Request& req) {
  const size_t query = target.find('?');
  req.path = percent_decode(target.substr(0, query), false);
  if (query != std::string_view::npos) parse_query(target.substr(query + 1), req.params);
}

struct HttpTransport::Impl : std::enable_shared_from_this<Impl> {
  TransportOptions options;
  Planner planner;
  net::io_context ioc;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  std::optional<ssl::context> tls;
  net::thread_pool workers;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> bodies_in_flight{0};  // bytes of request bodies held now (max_total_body_bytes)
  std::mutex sessions_mutex;
  // By session: closes it (force: even with a request in flight, for the end of run()).
  std::unordered_map<const void*, std::function<void(bool force)>> close_if_idle;

  Impl(TransportOptions o, Planner p)
      : options(std::move(o)), planner(std::move(p)), ioc(std::max(1, options.loops)),
        workers(static_cast<size_t>(std::max(1, options.workers))) {}

  // A session joins the set stop() closes; false when stopping already (it closes itself).
  bool enrol(const void* session, std::function<void(bool)> closer) {
    std::lock_guard lock(sessions_mutex);
    if (stopping) return false;
    close_if_idle.emplace(session, std::move(closer));
    return true;
  }
  void leave(const void* session) {
    std::lock_guard lock(sessions_mutex);
    close_if_idle.erase(session);
  }

  void accept();
};

namespace {

using Impl = HttpTransport::Impl;

// One connection; Derived supplies stream(), start() and close() for plain TCP or TLS.
template <class Derived>
class Session {
 public:
  explicit Session(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  ~Session() {
    release_body();
    impl_->leave(this);
  }

 protected:
  Derived& derived() { return static_cast<Derived&>(*this); }

  // Joins the transport's sessions and starts reading (on the connection's strand).
  void begin() {
    std::weak_ptr<Derived> weak = derived().shared_from_this();
    const bool enrolled = impl_->enrol(this, [weak](bool force) {
      if (auto self = weak.lock()) net::post(self->stream().get_executor(), [self, force] { self->close_unless_busy(force); });
    });
    if (!enrolled) return derived().close();
    derived().start();
  }

  void read_request() {
    parser_.emplace();
    parser_->body_limit(impl_->options.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(impl_->options.max_header_bytes));
    beast::get_lowest_layer(derived().stream()).expires_after(impl_->options.read_timeout);
    http::async_read_header(derived().stream(), buffer_, *parser_,
                            [self = derived().shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

 public:
  void close_unless_busy(bool force = false) {
    if (!busy_ || force) beast::get_lowest_layer(derived().stream()).close();
  }

 private:
  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    // The body's bytes are reserved from the transport's total before it is read: many large
    // bodies at once wait their turn (503, retry) instead of taking the machine's memory.
    const auto length = parser_->content_length();
    const size_t want = parser_->chunked() ? impl_->options.max_body_bytes
                                           : static_cast<size_t>(std::min<std::uint64_t>(length.value_or(0), impl_->options.max_body_bytes));
    if (want > 0 && !reserve_body(want)) {
      extra_header_ = {"Retry-After", "1"};
      return refuse(503, "Service Unavailable",
                    "the server holds as many request bodies as it may (" + std::to_string(impl_->options.max_total_body_bytes) +
                        " bytes); retry in a moment");
    }
    // curl and others wait for this before sending a body of more than 1 KiB.
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      auto go_on = std::make_shared<http::response<http::empty_body>>(http::status::continue_, parser_->get().version());
      http::async_write(derived().stream(), *go_on, [self = derived().shared_from_this(), go_on](beast::error_code ec, std::size_t) {
        if (ec) return;
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(derived().stream(), buffer_, *parser_,
                     [self = derived().shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read_error(beast::error_code ec) {
    // The client left, went quiet past the read timeout (the stream is closed already), or the
    // server is stopping: nothing to answer.
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == net::error::eof)
      return derived().close();
    if (ec == http::error::body_limit)
      return refuse(413, "Payload Too Large", "the body is larger than " + std::to_string(impl_->options.max_body_bytes) + " bytes");
    if (ec == http::error::header_limit)
      return refuse(431, "Request Header Fields Too Large", "the request line and headers exceed " +
                                                                std::to_string(impl_->options.max_header_bytes) + " bytes");
    refuse(400, "Bad Request", "malformed HTTP request: " + ec.message());
  }

  bool reserve_body(size_t bytes) {
    size_t held = impl_->bodies_in_flight.load();
    do {
      if (held + bytes > impl_->options.max_total_body_bytes) return false;
    } while (!impl_->bodies_in_flight.compare_exchange_weak(held, held + bytes));
    reserved_ = bytes;
    return true;
  }
  void release_body() {
    if (reserved_ > 0) impl_->bodies_in_flight -= reserved_;
    reserved_ = 0;
  }

  // Answers an unreadable request and closes: the rest of the stream cannot be trusted.
  void refuse(int status, const char* title, const std::string& detail) {
    httplib::Response res;
    res.status = status;
    if (!extra_header_.first.empty()) res.set_header(extra_header_.first, extra_header_.second);
    extra_header_ = {};
    res.set_content(problem(status, title, detail), "application/problem+json");
    keep_alive_ = false;
    linger_ = true;
    version_ = 11;
    write(res);
  }

  void on_read(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    auto message = parser_->release();
    busy_ = true;  // from here on stop() lets this request finish
    keep_alive_ = message.keep_alive();
    version_ = message.version();
    auto req = std::make_shared<httplib::Request>();
    req->method = std::string(message.method_string());
    const std::string_view target(message.target().data(), message.target().size());
    req->target = std::string(target);
    decode_target(target, *req);
    for (const auto& field : message) req->headers.emplace(std::string(field.name_string()), std::string(field.value()));
    req->body = std::move(message.body());
    req->version = version_ == 10 ? "HTTP/1.0" : "HTTP/1.1";
    beast::error_code ignored;
    const auto remote = beast::get_lowest_layer(derived().stream()).socket().remote_endpoint(ignored);
    req->remote_addr = remote.address().to_string(ignored);
    auto res = std::make_shared<httplib::Response>();
    Plan plan;
    try {
      plan = impl_->planner(*req);
    } catch (const std::exception&) {
      plan = {};
    }
    if (!plan.answer) {
      res->status = 500;
      res->set_content(problem(500, "Internal Server Error", "the request could not be routed"), "application/problem+json");
      return write(*res);
    }
    if (plan.quick) {
      answer(plan.answer, *req, *res);
      return write(*res);
    }
    // A worker computes it; the event loop stays free. The guard keeps run() going meanwhile.
    auto work = std::make_shared<net::executor_work_guard<net::io_context::executor_type>>(impl_->ioc.get_executor());
    net::post(impl_->workers, [self = derived().shared_from_this(), answer_fn = std::move(plan.answer), req, res, work] {
      answer(answer_fn, *req, *res);
      net::post(self->stream().get_executor(), [self, res, work] { self->write(*res); });
    });
  }

  static void answer(const std::function<void(httplib::Request&, httplib::Response&)>& fn, httplib::Request& req,
                     httplib::Response& res) {
    try {
      fn(req, res);
    } catch (const std::exception&) {  // the server's handlers catch their own; this is the last net
      res.status = 500;
      res.set_content(problem(500, "Internal Server Error", "the request could not be completed"), "application/problem+json");
    }
  }

  void write(httplib::Response& res) {
    // The request is answered: its body's room is given back before the answer goes out, so a
    // client that has the answer finds the room free (after the write, a loaded machine left a
    // window where the next large body was refused).
    release_body();
    auto message = std::make_shared<http::response<http::string_body>>();
    message->version(version_);
    message->result(static_cast<unsigned>(res.status > 0 ? res.status : 500));
    for (const auto& [name, value] : impl_->options.default_headers) message->set(name, value);
    for (const auto& [name, value] : res.headers) message->set(name, value);
    message->keep_alive(keep_alive_ && !impl_->stopping);
    message->body() = std::move(res.body);
    message->prepare_payload();
    beast::get_lowest_layer(derived().stream()).expires_after(impl_->options.write_timeout);
    http::async_write(derived().stream(), *message, [self = derived().shared_from_this(), message](beast::error_code ec, std::size_t) {
      self->busy_ = false;
      self->release_body();
      if (ec) return;
      if (self->linger_) return self->derived().linger();
      if (!message->keep_alive() || self->impl_->stopping) return self->derived().close();
      self->read_request();
    });
  }

 protected:
  std::shared_ptr<Impl> impl_;

 private:
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool busy_ = false, keep_alive_ = false;
  bool linger_ = false;  // refused before its body was read: drain it before closing
  unsigned version_ = 11;
  size_t reserved_ = 0;  // bytes of bodies_in_flight this request holds
  std::pair<std::string, std::string> extra_header_;  // for refuse()
};

class PlainSession : public Session<PlainSession>, public std::enable_shared_from_this<PlainSession> {
 public:
  PlainSession(tcp::socket&& socket, std::shared_ptr<Impl> impl) : Session(std::move(impl)), stream_(std::move(socket)) {}
  beast::tcp_stream& stream() { return stream_; }
  void run() { net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->begin(); }); }
  void start() { read_request(); }
  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }
  // A lingering close (as nginx does): after refusing a request whose body is still arriving,
  // read and drop the rest for a while, so the client is not reset while sending and can read
  // the refusal.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    drain(std::make_shared<std::array<char, 65536>>(), 0);
  }

 private:
  void drain(std::shared_ptr<std::array<char, 65536>> buffer, size_t dropped) {
    stream_.async_read_some(net::buffer(*buffer), [self = shared_from_this(), buffer, dropped](beast::error_code ec, std::size_t n) {
      if (ec || dropped + n > (64u << 20)) return self->stream_.close();
      self->drain(buffer, dropped + n);
    });
  }
  friend class Session<PlainSession>;
  beast::tcp_stream stream_;
};

class TlsSession : public Session<TlsSession>, public std::enable_shared_from_this<TlsSession> {
 public:
  TlsSession(tcp::socket&& socket, std::shared_ptr<Impl> impl)
      : Session(impl), stream_(std::move(socket), *impl->tls) {}
  beast::ssl_stream<beast::tcp_stream>& stream() { return stream_; }
  void run() { net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->begin(); }); }
  void start() {
    beast::get_lowest_layer(stream_).expires_after(impl_->options.read_timeout);
    stream_.async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return beast::get_lowest_layer(self->stream_).close();
      self->read_request();
    });
  }
  void close() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) { beast::get_lowest_layer(self->stream_).close(); });
  }
  void linger() { close(); }

 private:
  friend class Session<TlsSession>;
  beast::ssl_stream<beast::tcp_stream> stream_;
};

}  // namespace

void HttpTransport::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;  // stopping
    if (!ec) {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);  // answers leave at once (no Nagle delay)
      if (self->tls) std::make_shared<TlsSession>(std::move(socket), self)->run();
      else std::make_shared<PlainSession>(std::move(socket), self)->run();
      return self->accept();
    }
    // Out of file descriptors or the like: try again shortly instead of spinning.
    auto timer = std::make_shared<net::steady_timer>(self->acceptor.get_executor(), std::chrono::milliseconds(50));
    timer->async_wait([self, timer](beast::error_code) { self->accept(); });
  });
}

HttpTransport::HttpTransport(TransportOptions options, Planner planner) {
  if (options.loops <= 0) options.loops = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  impl_ = std::make_shared<Impl>(std::move(options), std::move(planner));
  const auto& o = impl_->options;
  if (!o.tls_cert.empty() || !o.tls_key.empty()) {
    impl_->tls.emplace(ssl::context::tls_server);
    impl_->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                            ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    impl_->tls->use_certificate_chain_file(o.tls_cert);  // throws boost::system::system_error
    impl_->tls->use_private_key_file(o.tls_key, ssl::context::pem);
  }
}

HttpTransport::~HttpTransport() { stop(); }

int HttpTransport::bind() {
  auto& a = impl_->acceptor;
  beast::error_code ec;
  const auto address = net::ip::make_address(impl_->options.host, ec);
  if (ec) throw std::runtime_error("not an IP address: " + impl_->options.host);
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(impl_->options.port));
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(ec.message());
  return a.local_endpoint().port();
}

void HttpTransport::run() {
  impl_->accept();
  std::vector<std::thread> loops;
  for (int i = 1; i < impl_->options.loops; ++i) loops.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();  // returns once the acceptor is closed and every connection has ended
  for (auto& t : loops) t.join();
  impl_->workers.join();
  // Belt and braces: a connection still enrolled here (one that raced the stop; seen once under
  // ASan in CI, never reproduced) would keep the transport alive through its handlers, a leak.
  // Close what is left and run its handlers to the end.
  for (int round = 0; round < 50; ++round) {
    std::vector<std::function<void(bool)>> left;
    {
      std::lock_guard lock(impl_->sessions_mutex);
      for (auto& [session, closer] : impl_->close_if_idle) left.push_back(closer);
    }
    if (left.empty()) break;
    for (auto& close : left) close(true);
    impl_->ioc.restart();
    impl_->ioc.run_for(std::chrono::milliseconds(100));
  }
}

void HttpTransport::stop() {
  std::vector<std::function<void(bool)>> closers;
  {
    std::lock_guard lock(impl_->sessions_mutex);
    if (impl_->stopping.exchange(true)) return;
    for (auto& [session, closer] : impl_->close_if_idle) closers.push_back(closer);
  }
  // A weak reference: a queued handler must not keep the transport alive if run() never comes.
  net::post(impl_->acceptor.get_executor(), [weak = std::weak_ptr<Impl>(impl_)] {
    if (auto impl = weak.lock()) {
      beast::error_code ignored;
      impl->acceptor.close(ignored);
    }
  });
  // Idle connections close now; busy ones after their answer is written.
  for (auto& close : closers) close(false);
}

}  // namespace persona::server
