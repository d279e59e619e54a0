// The Beast transport on its own, with a toy planner: many connections on two event loops,
// decoding, Expect: 100-continue, limits, and a stop that finishes what is in flight.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "persona/server/http_transport.h"

#include <httplib.h>

namespace persona::server {
namespace {

using namespace std::chrono_literals;

// Echoes what the transport decoded; /slow answers on a worker after 300 ms.
Plan echo_planner(httplib::Request& req) {
  const bool slow = req.path == "/slow";
  return {[slow](httplib::Request& rq, httplib::Response& rs) {
            if (slow) std::this_thread::sleep_for(300ms);
            std::string params;
            for (const auto& [k, v] : rq.params) params += k + "=" + v + ";";
            rs.status = 200;
            rs.set_content(rq.method + " " + rq.path + " " + params + " " + std::to_string(rq.body.size()), "text/plain");
          },
          !slow};
}

class Serving {
 public:
  explicit Serving(TransportOptions o = {}) {
    o.port = 0;
    o.loops = 2;
    o.workers = 2;
    transport_ = std::make_unique<HttpTransport>(o, echo_planner);
    port_ = transport_->bind();
    thread_ = std::thread([this] {
      transport_->run();
      ended_ = true;
    });
  }
  ~Serving() { stop(); }
  void stop() {
    transport_->stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  bool ended() const { return ended_; }
  HttpTransport& transport() { return *transport_; }

 private:
  std::unique_ptr<HttpTransport> transport_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> ended_{false};
};

int connect_to(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  timeval wait{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  return fd;
}

std::string receive(int fd) {
  char buffer[4096];
  const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

void send_all(int fd, const std::string& s) { ASSERT_EQ(send(fd, s.data(), s.size(), 0), static_cast<ssize_t>(s.size())); }

TEST(HttpTransport, ManyKeepAliveConnectionsOnTwoLoops) {
  Serving s;
  constexpr int kClients = 200;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c)
    clients.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", s.port());
      client.set_keep_alive(true);
      for (int r = 0; r < 3; ++r) {
        const auto res = client.Get("/u/" + std::to_string(c) + "?r=" + std::to_string(r));
        if (res && res->status == 200 && res->body == "GET /u/" + std::to_string(c) + " r=" + std::to_string(r) + "; 0") ++ok;
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * 3);
}

TEST(HttpTransport, DecodesPathAndQuery) {
  Serving s;
  const int fd = connect_to(s.port());  // a raw request: a client library would re-encode it
  send_all(fd, "GET /a%20b/%E4%B8%AD?x=1+2&y=%E6%96%87&flag&bad=%zz HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto answer = receive(fd);
  EXPECT_NE(answer.find("GET /a b/中 bad=%zz;flag=;x=1 2;y=文; 0"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Content-Type: text/plain"), std::string::npos) << answer;
  close(fd);
}

TEST(HttpTransport, AnswersExpectContinueThenReadsTheBody) {
  Serving s;
  const int fd = connect_to(s.port());
  send_all(fd, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(receive(fd).rfind("HTTP/1.1 100 Continue", 0), 0u);
  send_all(fd, "hello");
  const auto answer = receive(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  EXPECT_NE(answer.find("POST /upload  5"), std::string::npos) << answer;
  close(fd);
}

TEST(HttpTransport, RefusesOversizedBodiesAndHeadersAndGarbage) {
  TransportOptions o;
  o.max_body_bytes = 1024;
  o.max_header_bytes = 2048;
  Serving s(o);
  httplib::Client client("127.0.0.1", s.port());
  const auto big = client.Post("/x", std::string(5000, 'a'), "text/plain");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(big->get_header_value("Content-Type"), "application/problem+json");
  const int fd = connect_to(s.port());
  send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'b') + "\r\n\r\n");
  EXPECT_EQ(receive(fd).rfind("HTTP/1.1 431", 0), 0u);
  close(fd);
  const int garbage = connect_to(s.port());
  send_all(garbage, "HELLO\x01\x02 nonsense\r\n\r\n");
  EXPECT_EQ(receive(garbage).rfind("HTTP/1.1 400", 0), 0u);
  close(garbage);
  EXPECT_EQ(client.Get("/still/up")->status, 200);
}

TEST(HttpTransport, StopFinishesRequestsInFlightAndClosesIdleConnections) {
  Serving s;
  const int idle = connect_to(s.port());  // connected, never asks
  std::thread slow([&] {
    httplib::Client client("127.0.0.1", s.port());
    const auto res = client.Get("/slow");
    EXPECT_TRUE(res && res->status == 200) << "the request in flight was answered";
  });
  std::this_thread::sleep_for(100ms);
  const auto t0 = std::chrono::steady_clock::now();
  s.stop();
  slow.join();
  EXPECT_TRUE(s.ended());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s) << "idle connections do not hold the stop";
  EXPECT_EQ(receive(idle), "") << "the idle connection was closed";
  close(idle);
  httplib::Client late("127.0.0.1", s.port());
  EXPECT_FALSE(late.Get("/x")) << "no longer accepting";
}

}  // namespace
}  // namespace persona::server
