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
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <nlohmann/json.hpp>

#include <httplib.h>  // the Request and Response structs only

namespace persona::server {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

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

// Beast's HTTP/1.1 parser, filling the handlers' request struct as it goes: no intermediate
// message with fields of its own to copy from (one allocation less per header, per request).
class RequestParser : public http::basic_parser<true> {
 public:
  explicit RequestParser(httplib::Request& req) : req_(req) {}
  bool expects_continue() const { return expect_continue_; }
  unsigned version() const { return version_; }

 private:
  void on_request_impl(http::verb, beast::string_view method, beast::string_view target, int version,
                       beast::error_code&) override {
    req_.method.assign(method.data(), method.size());
    req_.target.assign(target.data(), target.size());
    decode_target(req_.target, req_);
    version_ = static_cast<unsigned>(version);
    req_.version = version == 10 ? "HTTP/1.0" : "HTTP/1.1";
  }
  void on_response_impl(int, beast::string_view, int, beast::error_code& ec) override { ec = http::error::bad_version; }
  void on_field_impl(http::field name, beast::string_view name_string, beast::string_view value, beast::error_code&) override {
    if (name == http::field::expect && beast::iequals(value, "100-continue")) expect_continue_ = true;
    req_.headers.emplace(std::string(name_string.data(), name_string.size()), std::string(value.data(), value.size()));
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, beast::error_code&) override {
    if (length) req_.body.reserve(static_cast<size_t>(*length));  // at most the body limit: checked before
  }
  size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    req_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&) override {
    req_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  httplib::Request& req_;
  unsigned version_ = 11;
  bool expect_continue_ = false;
};

bool has_line_break(std::string_view s) {
  for (const char c : s)
    if (c == '\r' || c == '\n') return true;
  return false;
}

// The transport's default headers, rendered once: each as "Name: value\r\n", with its name.
struct DefaultHeaders {
  std::vector<std::pair<std::string, std::string>> lines;  // (name, rendered line)
  explicit DefaultHeaders(const std::vector<std::pair<std::string, std::string>>& headers) {
    for (const auto& [name, value] : headers)
      if (!name.empty() && !has_line_break(name) && !has_line_break(value)) lines.emplace_back(name, name + ": " + value + "\r\n");
  }
};

// The status line and headers of an answer, written by hand into `head` (its capacity is reused
// from one answer to the next): Beast's serializer cost more CPU than the rest of a cached
// answer together. Headers the handler set replace the transport's defaults of the same name; a
// header with a line break in it is dropped (it would split the answer).
void render_head(std::string& head, unsigned version, int status, bool keep_alive, const httplib::Response& res,
                 const DefaultHeaders& defaults) {
  head.clear();
  head += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  head += std::to_string(status);
  head += ' ';
  const auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
  head.append(reason.data(), reason.size());
  head += "\r\n";
  for (const auto& [name, line] : defaults.lines) {
    bool replaced = false;
    for (const auto& header : res.headers) replaced = replaced || beast::iequals(header.first, name);
    if (!replaced) head += line;
  }
  for (auto it = res.headers.begin(); it != res.headers.end(); ++it) {
    const auto next = std::next(it);
    if (next != res.headers.end() && !res.headers.key_comp()(it->first, next->first)) continue;  // the last of a name wins
    const auto& [name, value] = *it;
    if (name.empty() || has_line_break(name) || has_line_break(value)) continue;
    if (beast::iequals(name, "Content-Length") || beast::iequals(name, "Connection")) continue;
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  if (status >= 200 && status != 204 && status != 304) {
    head += "Content-Length: ";
    head += std::to_string(res.body.size());
    head += "\r\n";
  }
  if (version == 10 && keep_alive) head += "Connection: keep-alive\r\n";
  if (version != 10 && !keep_alive) head += "Connection: close\r\n";
  head += "\r\n";
}

// A connection, as its event loop sees it (the sweep for timeouts, and stop()).
class Connection {
 public:
  virtual ~Connection() = default;
  // On its loop, once: reads its first request (after a TLS handshake).
  virtual void start() = 0;
  // Closes it when its deadline has passed.
  virtual void sweep(Clock::time_point now) = 0;
  // Closes it unless a request is being answered (for stop()).
  virtual void close_unless_busy() = 0;
  virtual void close_socket() = 0;
};

constexpr auto kSweepEvery = std::chrono::milliseconds(500);
constexpr auto kSweepWhileStopping = std::chrono::milliseconds(20);

}  // namespace

void decode_target(std::string_view target, httplib::Request& req) {
  const size_t query = target.find('?');
  req.path = percent_decode(target.substr(0, query), false);
  if (query != std::string_view::npos) parse_query(target.substr(query + 1), req.params);
}

// One event loop: an io_context run by one thread, which alone reads and writes the connections
// it owns (as nginx's workers do): no strands, no locks between loops on the way of a request.
// Timeouts are a deadline per connection, checked by a sweep twice a second, instead of a timer
// set and cancelled around every read and write.
struct EventLoop {
  // In this order: the io_context's handlers, destroyed with it, may hold the last reference to
  // a connection, whose destructor leaves `live`.
  std::mutex mutex;  // guards `live` (a connection leaves it from its destructor, on any thread)
  std::unordered_map<const Connection*, std::weak_ptr<Connection>> live;
  net::io_context ioc{1};
  net::steady_timer sweep_timer{ioc};

  void join(const Connection* c, std::weak_ptr<Connection> weak) {
    std::lock_guard lock(mutex);
    live.emplace(c, std::move(weak));
  }
  void leave(const Connection* c) {
    std::lock_guard lock(mutex);
    live.erase(c);
  }
  std::vector<std::shared_ptr<Connection>> connections() {
    std::vector<std::shared_ptr<Connection>> out;
    std::lock_guard lock(mutex);
    out.reserve(live.size());
    for (auto& [key, weak] : live)
      if (auto c = weak.lock()) out.push_back(std::move(c));
    return out;
  }
  bool empty() {
    std::lock_guard lock(mutex);
    return live.empty();
  }
};

struct HttpTransport::Impl : std::enable_shared_from_this<Impl> {
  TransportOptions options;
  Planner planner;
  DefaultHeaders default_headers{options.default_headers};
  std::vector<std::unique_ptr<EventLoop>> loops;
  size_t next_loop = 0;  // round robin of new connections (the acceptor's loop only)
  std::optional<tcp::acceptor> acceptor;
  std::optional<ssl::context> tls;
  net::thread_pool workers;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> bodies_in_flight{0};  // bytes of request bodies held now (max_total_body_bytes)

  Impl(TransportOptions o, Planner p)
      : options(std::move(o)), planner(std::move(p)), workers(static_cast<size_t>(std::max(1, options.workers))) {
    for (int i = 0; i < std::max(1, options.loops); ++i) loops.push_back(std::make_unique<EventLoop>());
    acceptor.emplace(loops[0]->ioc);
  }

  void accept();
  void sweep(EventLoop& loop);
};

namespace {

using Impl = HttpTransport::Impl;

bool closing_error(const beast::error_code& ec) {
  return ec == net::error::eof || ec == net::error::operation_aborted || ec == net::error::connection_reset ||
         ec == net::error::bad_descriptor || ec == ssl::error::stream_truncated || ec == http::error::end_of_stream ||
         ec == http::error::partial_message;
}

// One connection on plain TCP (Stream = tcp::socket) or TLS (ssl::stream<tcp::socket>). Every
// member is touched on its event loop only, except the request and the answer while a worker
// computes it (the connection reads nothing meanwhile).
template <class Stream>
class Session : public Connection, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

 public:
  template <class... Args>
  Session(std::shared_ptr<Impl> impl, EventLoop& loop, tcp::socket&& socket, Args&&... tls)
      : impl_(std::move(impl)), loop_(loop), stream_(std::move(socket), std::forward<Args>(tls)...) {}
  ~Session() override {
    release_body();
    loop_.leave(this);
  }

  // On its loop (which it has joined): starts, with a TLS handshake first.
  void start() override {
    if (impl_->stopping) return close_socket();
    beast::error_code ec;
    socket().set_option(tcp::no_delay(true), ec);  // answers leave at once (no Nagle delay)
    socket().non_blocking(true, ec);               // for write(): a would-be block is reported, not waited for
    const auto remote = socket().remote_endpoint(ec);
    remote_addr_ = ec ? std::string() : remote.address().to_string(ec);
    if constexpr (kTls) {
      phase_ = Phase::reading;
      deadline_ = Clock::now() + impl_->options.read_timeout;
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code e) {
        if (e) return self->close_socket();
        self->read_request();
      });
    } else {
      read_request();
    }
  }

  void sweep(Clock::time_point now) override {
    if (phase_ != Phase::computing && phase_ != Phase::closed && now > deadline_) close_socket();
  }
  void close_unless_busy() override {
    if (phase_ == Phase::reading || phase_ == Phase::closing) close_socket();
  }

 private:
  enum class Phase { reading, computing, writing, closing, closed };

  tcp::socket& socket() {
    if constexpr (kTls) return stream_.next_layer();
    else return stream_;
  }

  // A new request: a fresh parser; bytes already here (a pipelined request) are parsed first.
  void read_request() {
    request_.emplace();
    response_.emplace();
    parser_.emplace(*request_);
    parser_->body_limit(impl_->options.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(impl_->options.max_header_bytes));
    header_handled_ = false;
    phase_ = Phase::reading;
    deadline_ = Clock::now() + impl_->options.read_timeout;
    if (in_.size() > 0) return parse();
    read_some();
  }

  void read_some() {
    // While a body arrives, bigger reads; a request line and headers fit in a few KiB.
    const size_t want = header_handled_ ? 65536 : 8192;
    stream_.async_read_some(in_.prepare(want), [self = this->shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) return self->on_read_error(ec);
      self->in_.commit(n);
      self->parse();
    });
  }

  void parse() {
    while (in_.size() > 0 && !parser_->is_done()) {
      beast::error_code ec;
      const size_t used = parser_->put(in_.data(), ec);
      in_.consume(used);
      if (ec == http::error::need_more) break;
      if (ec) return on_read_error(ec);
      if (parser_->is_header_done() && !header_handled_) {
        header_handled_ = true;
        if (!on_header()) return;  // refused, or waiting for `100 Continue` to be written
      } else if (used == 0) {
        break;  // no progress without more bytes
      }
    }
    if (parser_->is_done()) return on_request();
    read_some();
  }

  // Returns false when it took the connection over (a refusal, or `100 Continue` being written).
  bool on_header() {
    parser_->eager(true);  // the body, as far as it has come, in one go
    // The body's bytes are reserved from the transport's total before it is read: many large
    // bodies at once wait their turn (503, retry) instead of taking the machine's memory.
    const auto length = parser_->content_length();
    const size_t want = parser_->chunked() ? impl_->options.max_body_bytes
                                           : static_cast<size_t>(std::min<std::uint64_t>(length.value_or(0), impl_->options.max_body_bytes));
    if (want > 0 && !reserve_body(want)) {
      extra_header_ = {"Retry-After", "1"};
      refuse(503, "Service Unavailable",
             "the server holds as many request bodies as it may (" + std::to_string(impl_->options.max_total_body_bytes) +
                 " bytes); retry in a moment");
      return false;
    }
    // curl and others wait for this before sending a body of more than 1 KiB.
    if (parser_->expects_continue() && !parser_->is_done() && in_.size() == 0) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue), [self = this->shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->close_socket();
        self->parse();
      });
      return false;
    }
    return true;
  }

  void on_read_error(beast::error_code ec) {
    // The client left, went quiet past the read timeout (the sweep closed it), or the server is
    // stopping: nothing to answer.
    if (closing_error(ec)) return close();
    if (ec == http::error::body_limit)
      return refuse(413, "Payload Too Large", "the body is larger than " + std::to_string(impl_->options.max_body_bytes) + " bytes");
    if (ec == http::error::header_limit)
      return refuse(431, "Request Header Fields Too Large",
                    "the request line and headers exceed " + std::to_string(impl_->options.max_header_bytes) + " bytes");
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
    response_.emplace();
    auto& res = *response_;
    res.status = status;
    if (!extra_header_.first.empty()) res.set_header(extra_header_.first, extra_header_.second);
    extra_header_ = {};
    res.set_content(problem(status, title, detail), "application/problem+json");
    keep_alive_ = false;
    linger_ = true;
    version_ = 11;
    write();
  }

  void on_request() {
    phase_ = Phase::computing;  // from here on stop() lets this request finish
    keep_alive_ = parser_->keep_alive();
    version_ = parser_->version();
    auto& req = *request_;
    req.remote_addr = remote_addr_;
    Plan plan;
    try {
      plan = impl_->planner(req);
    } catch (const std::exception&) {
      plan = {};
    }
    if (!plan.answer) {
      response_->status = 500;
      response_->set_content(problem(500, "Internal Server Error", "the request could not be routed"), "application/problem+json");
      return write();
    }
    if (plan.quick) {
      answer(plan.answer, req, *response_);
      return write();
    }
    // A worker computes it; the event loop stays free. The guard keeps the loop running meanwhile.
    auto work = std::make_shared<net::executor_work_guard<net::io_context::executor_type>>(loop_.ioc.get_executor());
    net::post(impl_->workers, [self = this->shared_from_this(), answer_fn = std::move(plan.answer), work] {
      answer(answer_fn, *self->request_, *self->response_);
      net::post(self->loop_.ioc, [self, work] { self->write(); });
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

  void write() {
    // The request is answered: its body's room is given back before the answer goes out, so a
    // client that has the answer finds the room free (after the write, a loaded machine left a
    // window where the next large body was refused).
    release_body();
    auto& res = *response_;
    const bool keep_alive = keep_alive_ && !impl_->stopping;
    render_head(head_, version_, res.status > 0 ? res.status : 500, keep_alive, res, impl_->default_headers);
    body_ = std::move(res.body);
    phase_ = Phase::writing;
    deadline_ = Clock::now() + impl_->options.write_timeout;
    std::array<net::const_buffer, 2> answer{net::const_buffer(net::buffer(head_)), net::const_buffer(net::buffer(body_))};
    if constexpr (!kTls) {
      // Most answers fit the socket's send buffer: written at once (the socket is non-blocking),
      // without an asynchronous write's round trip through the loop's queue. What is left (a
      // slow reader, a large answer) goes on asynchronously.
      beast::error_code ec;
      const size_t n = socket().write_some(answer, ec);
      if (ec != net::error::would_block && ec != net::error::try_again) {
        if (ec || n == head_.size() + body_.size()) return written(ec, keep_alive, true);
        using Buffers = std::array<net::const_buffer, 2>;
        answer = n < head_.size() ? Buffers{net::const_buffer(net::buffer(head_)) + n, net::buffer(body_)}
                                  : Buffers{net::const_buffer(), net::const_buffer(net::buffer(body_)) + (n - head_.size())};
      }
    }
    net::async_write(stream_, answer, [self = this->shared_from_this(), keep_alive](beast::error_code ec, size_t) {
      self->written(ec, keep_alive, false);
    });
  }

  void written(beast::error_code ec, bool keep_alive, bool at_once) {
    release_body();
    if (ec) return close_socket();
    if (linger_) return linger();
    if (!keep_alive || impl_->stopping) return close();
    // A pipelined request already here would be answered within this call, and the one after it
    // within that one: through the loop's queue instead, so the stack stays flat.
    if (at_once) return net::post(loop_.ioc, [self = this->shared_from_this()] { self->read_request(); });
    read_request();
  }

  // The end of a connection: TLS says goodbye first (within 5 s); TCP sends its FIN.
  void close() {
    if (phase_ == Phase::closing || phase_ == Phase::closed) return;
    if constexpr (kTls) {
      phase_ = Phase::closing;
      deadline_ = Clock::now() + std::chrono::seconds(5);
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->close_socket(); });
    } else {
      close_socket();
    }
  }
  void close_socket() override {
    phase_ = Phase::closed;
    beast::error_code ignored;
    if (!socket().is_open()) return;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }

  // A lingering close (as nginx does): after refusing a request whose body is still arriving,
  // read and drop the rest for a while, so the client is not reset while sending and can read
  // the refusal.
  void linger() {
    if constexpr (kTls) {
      close();
    } else {
      beast::error_code ignored;
      socket().shutdown(tcp::socket::shutdown_send, ignored);
      phase_ = Phase::closing;
      deadline_ = Clock::now() + std::chrono::seconds(2);
      drain(0);
    }
  }
  void drain(size_t dropped) {
    in_.clear();
    stream_.async_read_some(in_.prepare(65536), [self = this->shared_from_this(), dropped](beast::error_code ec, size_t n) {
      if (ec || dropped + n > (64u << 20)) return self->close_socket();
      self->drain(dropped + n);
    });
  }

  std::shared_ptr<Impl> impl_;
  EventLoop& loop_;
  Stream stream_;
  beast::flat_buffer in_;
  std::optional<httplib::Request> request_;
  std::optional<httplib::Response> response_;
  std::optional<RequestParser> parser_;
  std::string head_, body_;  // the answer being written
  Phase phase_ = Phase::reading;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool header_handled_ = false, keep_alive_ = false;
  bool linger_ = false;  // refused before its body was read: drain it before closing
  unsigned version_ = 11;
  size_t reserved_ = 0;  // bytes of bodies_in_flight this request holds
  std::string remote_addr_;
  std::pair<std::string, std::string> extra_header_;  // for refuse()
};

using PlainSession = Session<tcp::socket>;
using TlsSession = Session<ssl::stream<tcp::socket>>;

}  // namespace

void HttpTransport::Impl::accept() {
  EventLoop& loop = *loops[next_loop];
  next_loop = (next_loop + 1) % loops.size();
  // The new socket belongs to `loop`: its reads and writes run there.
  acceptor->async_accept(loop.ioc, [self = shared_from_this(), &loop](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !self->acceptor->is_open()) return;  // stopping
    if (!ec) {
      std::shared_ptr<Connection> session;
      if (self->tls) session = std::make_shared<TlsSession>(self, loop, std::move(socket), *self->tls);
      else session = std::make_shared<PlainSession>(self, loop, std::move(socket));
      // It joins its loop here, so that a stopping loop waits for it; if stop() came meanwhile,
      // that loop may have ended already: it is closed here instead.
      loop.join(session.get(), session);
      if (self->stopping) {
        session->close_socket();
        return loop.leave(session.get());
      }
      net::post(loop.ioc, [session] { session->start(); });
      return self->accept();
    }
    // Out of file descriptors or the like: try again shortly instead of spinning.
    auto timer = std::make_shared<net::steady_timer>(self->acceptor->get_executor(), std::chrono::milliseconds(50));
    timer->async_wait([self, timer](beast::error_code) { self->accept(); });
  });
}

// Closes the connections of `loop` past their deadline; while stopping, ends once none is left
// (then the loop's run() returns).
void HttpTransport::Impl::sweep(EventLoop& loop) {
  const auto now = Clock::now();
  for (auto& c : loop.connections()) {
    c->sweep(now);
    if (stopping) c->close_unless_busy();
  }
  if (stopping && loop.empty()) return;
  loop.sweep_timer.expires_after(stopping ? kSweepWhileStopping : kSweepEvery);
  loop.sweep_timer.async_wait([this, &loop](beast::error_code) { sweep(loop); });
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
  auto& a = *impl_->acceptor;
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
  Impl& impl = *impl_;
  impl.accept();
  for (auto& loop : impl.loops) impl.sweep(*loop);
  std::vector<std::thread> threads;
  for (size_t i = 1; i < impl.loops.size(); ++i) threads.emplace_back([&impl, i] { impl.loops[i]->ioc.run(); });
  // Each returns once stop() has closed the acceptor and every connection of its loop has ended.
  impl.loops[0]->ioc.run();
  for (auto& t : threads) t.join();
  impl.workers.join();
}

void HttpTransport::stop() {
  if (impl_->stopping.exchange(true)) return;
  // A weak reference: a queued handler must not keep the transport alive if run() never comes.
  net::post(impl_->loops[0]->ioc, [weak = std::weak_ptr<Impl>(impl_)] {
    if (auto impl = weak.lock()) {
      beast::error_code ignored;
      impl->acceptor->close(ignored);
    }
  });
  // Idle connections close now; busy ones after their answer is written. The sweep, now every
  // 20 ms, ends each loop once its last connection has gone.
  for (auto& loop : impl_->loops)
    net::post(loop->ioc, [l = loop.get()] {
      for (auto& c : l->connections()) c->close_unless_busy();
      l->sweep_timer.cancel();  // the next sweep now
    });
}

}  // namespace persona::server
