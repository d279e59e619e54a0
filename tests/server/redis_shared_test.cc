// What several servers share through Redis, against a real redis-server: the client, the rate
// limit per key across servers (and its fallback when Redis is away), assistant conversations.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "persona/assistant/sessions.h"
#include "persona/server/global_rate_limiter.h"
#include "persona/io/redis_client.h"
#include "persona/server/redis_sessions.h"
#include "support/redis_server.h"

namespace persona::server {
namespace {

using Clock = std::chrono::steady_clock;

TEST(Redis, ClientCommandsPipelinesErrorsAndALostServer) {
  PERSONA_NEED_REDIS(server);
  redis::Connection c(server->url());
  EXPECT_EQ(c.command({"SET", "k", std::string("a\0b", 3)}).text, "OK");
  EXPECT_EQ(c.command({"GET", "k"}).text, std::string("a\0b", 3)) << "binary-safe";
  EXPECT_TRUE(c.command({"GET", "none"}).nil());
  const auto replies = c.pipeline({{"INCR", "n"}, {"INCR", "n"}, {"LPUSH", "k", "x"}});
  EXPECT_EQ(replies[1].integer, 2);
  EXPECT_EQ(replies[2].type, redis::Reply::Type::Error) << "a pipeline returns error replies";
  EXPECT_THROW(c.command({"LPUSH", "k", "x"}), Error);
  EXPECT_THROW(redis::Connection("http://localhost"), Error);
  EXPECT_EQ(redis::printable_url("redis://:secret@host:1/2"), "redis://:***@host:1/2");
  server->stop();
  EXPECT_THROW(c.command({"GET", "k"}), redis::Unavailable);
  EXPECT_THROW(redis::Connection(server->url(), std::chrono::milliseconds(200)), redis::Unavailable);
}

// Three limiters (three servers) spend one key's budget: together they admit what one bucket
// gives (rate x time + burst, plus each server's first credit), never N times it.
TEST(Redis, ARateLimitHoldsAcrossServersAndFallsBackToAShareWhenRedisIsAway) {
  PERSONA_NEED_REDIS(server);
  const double rate = 100, burst = 20, seconds = 2;
  std::vector<std::unique_ptr<GlobalRateLimiter>> servers;
  for (int i = 0; i < 3; ++i) servers.push_back(std::make_unique<GlobalRateLimiter>(server->url(), "t:", rate, burst));
  for (int i = 0; i < 100 && servers[2]->servers() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(servers[2]->servers(), 3);
  std::atomic<int64_t> admitted{0}, offered{0};
  auto hammer = [&](double for_s) {
    std::vector<std::thread> threads;
    for (auto& s : servers)
      threads.emplace_back([&, limiter = s.get()] {
        const auto end = Clock::now() + std::chrono::duration<double>(for_s);
        while (Clock::now() < end) {
          ++offered;
          if (limiter->take("key") == 0) ++admitted;
          std::this_thread::sleep_for(std::chrono::microseconds(500));  // about 2,000 a second per server
        }
      });
    for (auto& t : threads) t.join();
  };
  hammer(seconds);
  const double most = rate * seconds + burst + 3 * std::floor(burst / 3);  // the bucket, and each server's first credit
  EXPECT_GT(offered.load(), 3 * most) << "the limit was tested";
  EXPECT_LE(admitted.load(), most);
  EXPECT_GE(admitted.load(), 0.85 * rate * seconds) << "tokens left unused at servers are bounded";
  EXPECT_EQ(servers[0]->local_decisions(), 0);

  // Redis away: each server its share of the rate, decided locally and counted.
  server->stop();
  for (int i = 0; i < 100 && servers[0]->redis_up(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(servers[0]->redis_up());
  admitted = 0;
  hammer(seconds);
  EXPECT_GT(servers[0]->local_decisions(), 0);
  EXPECT_LE(admitted.load(), rate * seconds * 1.1 + burst + 3 * std::floor(burst / 3));
  EXPECT_GE(admitted.load(), 0.7 * rate * seconds);
  // Back: synced again.
  ASSERT_TRUE(server->restart());
  for (int i = 0; i < 200 && !servers[0]->redis_up(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(servers[0]->redis_up());
}

// Turns of one conversation through two stores (two servers): each sees the other's turns; a
// turn that lost its lock is refused rather than overwriting; a user's sessions go on erasure.
TEST(Redis, ConversationsMoveBetweenServersAndAreErasedWithTheirUser) {
  PERSONA_NEED_REDIS(server);
  RedisSessions a(server->url(), "t:"), b(server->url(), "t:");
  const int64_t now = 1764590400;
  auto say = [&](assistant::SessionStore& store, const std::string& text, int64_t at) {
    bool was_fresh = false;
    store.with_session("s1", at, 1800, [&](assistant::Session& s, bool fresh) {
      was_fresh = fresh;
      if (fresh) s.id = "s1", s.user = "alice";
      s.last_active = at;
      s.history.push_back({"user", text, ""});
      s.slots["n"] = s.history.size();
    });
    return was_fresh;
  };
  EXPECT_TRUE(say(a, "hello", now));
  EXPECT_FALSE(say(b, "我想退货", now + 1));
  EXPECT_FALSE(say(a, "S00001234", now + 2));
  const auto s = b.find("s1");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->history.size(), 3u);
  EXPECT_EQ(s->history[1].text, "我想退货");
  EXPECT_EQ(s->slots["n"], 3);
  EXPECT_TRUE(say(a, "back after a long pause", now + 5000)) << "idle past its ttl: a new conversation";

  // Two turns at once: one after the other, never interleaved.
  std::atomic<int> done{0};
  std::thread t1([&] { a.with_session("s2", now, 1800, [&](assistant::Session& s, bool) {
                       s.history.push_back({"user", "1", ""});
                       std::this_thread::sleep_for(std::chrono::milliseconds(200));
                       s.history.push_back({"assistant", "1", ""});
                     });
                     ++done; });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  b.with_session("s2", now, 1800, [&](assistant::Session& s, bool) {
    EXPECT_EQ(s.history.size(), 2u) << "waited for the other turn to finish";
    s.history.push_back({"user", "2", ""});
  });
  t1.join();
  EXPECT_EQ(b.find("s2")->history.size(), 3u);

  // A turn that held its lock past the expiry, while another took the session: refused.
  redis::Connection admin(server->url());
  EXPECT_THROW(a.with_session("s3", now, 1800,
                              [&](assistant::Session& s, bool) {
                                s.history.push_back({"user", "slow", ""});
                                admin.command({"DEL", "t:session:s3:lock"});  // as if it expired
                                admin.command({"SET", "t:session:s3:lock", "someone else"});
                              }),
               assistant::SessionBusy);

  EXPECT_EQ(a.forget_user("alice"), 1u);
  EXPECT_FALSE(b.find("s1"));
  EXPECT_EQ(admin.command({"KEYS", "t:user-sessions:*"}).elements.size(), 0u);
}

}  // namespace
}  // namespace persona::server
