#include "upstream/pool.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace ob::upstream {
namespace {

using namespace std::chrono_literals;

// A pooled connection and the provider's end of it, over loopback.
struct pair {
  std::unique_ptr<connection> client;
  tcp::socket server;
};

class pool_test : public ::testing::Test {
 protected:
  pair open() {
    auto c = std::make_unique<connection>(ioc.get_executor(), nullptr);
    c->lowest().connect(acceptor.local_endpoint());
    tcp::socket s(ioc);
    acceptor.accept(s);
    return {std::move(c), std::move(s)};
  }
  // Runs handlers until `done` or 2 s.
  template <class Pred>
  bool run_until(Pred done) {
    for (int i = 0; i < 200 && !done(); ++i) {
      ioc.restart();
      ioc.run_for(10ms);
    }
    return done();
  }

  asio::io_context ioc;
  tcp::acceptor acceptor{ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
};

TEST_F(pool_test, OriginWithItsHashFindsTheSameConnections) {
  pool p;
  auto a = open();
  auto* pa = a.client.get();
  const std::string key = "http|x|1";
  p.release(pool::origin{key, pool::hash_of(key)}, std::move(a.client));
  EXPECT_EQ(p.lease(pool::origin{"http|x|2", pool::hash_of("http|x|2")}), nullptr);
  EXPECT_EQ(p.lease("http|x|1").get(), pa);
  auto b = open();
  auto* pb = b.client.get();
  p.release("http|x|1", std::move(b.client));
  EXPECT_EQ(p.lease(pool::origin{key, pool::hash_of(key)}).get(), pb);
  ioc.restart();
  ioc.poll();
}

TEST_F(pool_test, ReleasedConnectionIsLeasedAgainLastInFirstOut) {
  pool p;
  auto a = open();
  auto b = open();
  auto* pa = a.client.get();
  auto* pb = b.client.get();
  p.release("http|x|1", std::move(a.client));
  p.release("http|x|1", std::move(b.client));
  EXPECT_EQ(p.idle_count(), 2u);
  EXPECT_EQ(p.lease("http|x|2"), nullptr);
  auto c = p.lease("http|x|1");
  EXPECT_EQ(c.get(), pb);
  EXPECT_EQ(p.lease("http|x|1").get(), pa);
  EXPECT_EQ(p.idle_count(), 0u);
  ioc.restart();
  ioc.poll();  // the cancelled watches complete without touching anything
  EXPECT_TRUE(c->lowest().is_open());
}

TEST_F(pool_test, IdleConnectionThatReceivesBytesIsClosedAndDropped) {
  pool p;
  auto a = open();
  p.release("o", std::move(a.client));
  asio::write(a.server, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\n")));
  EXPECT_TRUE(run_until([&] { return p.idle_count() == 0; }));
  EXPECT_EQ(p.lease("o"), nullptr);
  // The provider sees the gateway close its side (a reset: the gateway left bytes unread).
  char b;
  boost::system::error_code ec;
  a.server.read_some(asio::buffer(&b, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
}

TEST_F(pool_test, IdleConnectionClosedByTheProviderIsDropped) {
  pool p;
  auto a = open();
  auto b = open();
  p.release("o", std::move(a.client));
  p.release("o", std::move(b.client));
  a.server.close();
  EXPECT_TRUE(run_until([&] { return p.idle_count() == 1; }));
  ioc.restart();
  ioc.run_for(20ms);
  EXPECT_EQ(p.idle_count(), 1u);
  EXPECT_NE(p.lease("o"), nullptr);
}

TEST_F(pool_test, LeasedConnectionIsNoLongerWatched) {
  pool p;
  auto a = open();
  p.release("o", std::move(a.client));
  auto c = p.lease("o");
  ASSERT_NE(c, nullptr);
  asio::write(a.server, asio::buffer(std::string_view("answer")));
  ioc.restart();
  ioc.run_for(30ms);
  ASSERT_TRUE(c->lowest().is_open());
  char got[6];
  asio::read(c->lowest(), asio::buffer(got));
  EXPECT_EQ(std::string_view(got, 6), "answer");  // the next request's answer is intact
}

TEST_F(pool_test, ConnectionWithUnreadBytesIsNotKept) {
  pool p;
  auto a = open();
  auto* raw = a.client.get();
  auto buf = raw->buffer.prepare(5);
  std::memcpy(buf.data(), "HTTP/", 5);
  raw->buffer.commit(5);
  p.release("o", std::move(a.client));
  EXPECT_EQ(p.idle_count(), 0u);
  EXPECT_EQ(p.lease("o"), nullptr);
}

TEST_F(pool_test, RetainClosesOriginsThatLeftTheConfig) {
  pool p;
  auto a = open();
  auto b = open();
  p.release("gone", std::move(a.client));
  p.release("kept", std::move(b.client));
  p.retain([](std::string_view origin) { return origin == "kept"; });
  EXPECT_EQ(p.idle_count(), 1u);
  EXPECT_EQ(p.lease("gone"), nullptr);
  ioc.restart();
  ioc.poll();
  char x;
  boost::system::error_code ec;
  a.server.read_some(asio::buffer(&x, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_NE(p.lease("kept"), nullptr);
}

TEST_F(pool_test, SweepExpiresIdleConnectionsWithoutRequests) {
  pool p(pool::options{.max_idle = 50ms, .max_idle_per_origin = 4});
  auto a = open();
  p.release("o", std::move(a.client));
  p.sweep(std::chrono::steady_clock::now());
  EXPECT_EQ(p.idle_count(), 1u);
  p.sweep(std::chrono::steady_clock::now() + 1s);
  EXPECT_EQ(p.idle_count(), 0u);
  ioc.restart();
  ioc.poll();
}

TEST_F(pool_test, SurplusConnectionsAreClosedOldestFirst) {
  pool p(pool::options{.max_idle = 50s, .max_idle_per_origin = 1});
  auto a = open();
  auto b = open();
  auto* pb = b.client.get();
  p.release("o", std::move(a.client));
  p.release("o", std::move(b.client));  // destroys a while its watch is pending
  ioc.restart();
  ioc.poll();
  EXPECT_EQ(p.idle_count(), 1u);
  EXPECT_EQ(p.lease("o").get(), pb);
}

TEST(keep_alive_limit, TheProvidersTimeoutLessAMargin) {
  EXPECT_EQ(keep_alive_limit("timeout=5"), 4000ms);  // Node.js's default
  EXPECT_EQ(keep_alive_limit("timeout=5, max=100"), 4000ms);
  EXPECT_EQ(keep_alive_limit("max=100,timeout=10"), 9000ms);
  EXPECT_EQ(keep_alive_limit("Timeout=3"), 2000ms);
  EXPECT_EQ(keep_alive_limit("timeout=\"2\""), 1000ms);
  EXPECT_EQ(keep_alive_limit("timeout=2 "), 1000ms);
  EXPECT_EQ(keep_alive_limit("timeout=1"), 500ms);                   // under 2 s: half of it
  EXPECT_EQ(keep_alive_limit("timeout=0"), 0ms);                     // not kept at all
  EXPECT_GT(keep_alive_limit("timeout=99999999999999999999"), 24h);  // no overflow
}

TEST(keep_alive_limit, NoTimeoutGivenLeavesThePoolsOwn) {
  for (std::string_view v : {"", "max=100", "timeout=", "timeout=5s", "timeout=-1", "timeouts=5",
                             "xtimeout=5", "time=5", "timeout\x1d5"})
    EXPECT_EQ(keep_alive_limit(v), std::chrono::milliseconds::max()) << v;
}

TEST_F(pool_test, AConnectionIsDroppedWhenTheProvidersKeepAliveEnds) {
  pool p(pool::options{.max_idle = 50s, .max_idle_per_origin = 4});
  auto a = open();
  auto* pa = a.client.get();
  auto b = open();
  b.client->keep_limit = 20ms;  // released last: the one lease() would take first
  p.release("o", std::move(a.client));
  p.release("o", std::move(b.client));
  EXPECT_EQ(p.idle_count(), 2u);
  std::this_thread::sleep_for(100ms);  // well past 20 ms and the coarse clock's tick
  EXPECT_EQ(p.lease("o").get(), pa);   // b is closed, a is still within 50 s
  EXPECT_EQ(p.idle_count(), 0u);
  char x;
  boost::system::error_code ec;
  b.server.read_some(asio::buffer(&x, 1), ec);
  EXPECT_EQ(ec, asio::error::eof) << "the provider sees the expired connection closed";
  ioc.restart();
  ioc.poll();
}

TEST_F(pool_test, LeaseTakesNoConnectionIdleLongerThanItsCallerAccepts) {
  // Released under a long limit (another provider of the origin, or before a reload lowered
  // it): a caller that accepts 20 ms does not get it 100 ms later; one that accepts more would.
  pool p(pool::options{.max_idle = 50s, .max_idle_per_origin = 4});
  auto a = open();
  auto b = open();
  p.release("o", std::move(a.client));
  p.release("o", std::move(b.client));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(p.lease("o", 20ms), nullptr);  // both past 20 ms: closed
  EXPECT_EQ(p.idle_count(), 0u);
  auto c = open();
  auto* pc = c.client.get();
  p.release("o", std::move(c.client));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(p.lease("o", 10s).get(), pc);
  ioc.restart();
  ioc.poll();
}

TEST_F(pool_test, SweepExpiresByTheProvidersKeepAlive) {
  pool p(pool::options{.max_idle = 50s, .max_idle_per_origin = 4});
  auto a = open();
  auto b = open();
  auto* pb = b.client.get();
  a.client->keep_limit = 1s;
  p.release("o", std::move(a.client));
  p.release("o", std::move(b.client));
  p.sweep(std::chrono::steady_clock::now() + 2s);
  EXPECT_EQ(p.idle_count(), 1u);
  EXPECT_EQ(p.lease("o").get(), pb);
  ioc.restart();
  ioc.poll();
}

TEST_F(pool_test, TimeoutZeroIsNotKept) {
  pool p;
  auto a = open();
  a.client->keep_limit = 0ms;
  p.release("o", std::move(a.client));
  EXPECT_EQ(p.idle_count(), 0u);
  char x;
  boost::system::error_code ec;
  a.server.read_some(asio::buffer(&x, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
}

}  // namespace
}  // namespace ob::upstream
