// connector's lookups through a loop's net::loop_resolver, with a lookup the test controls: a
// name whose DNS does not answer bounds only the attempts that need it, by their connect
// timeout, and one lookup serves every attempt to that name meanwhile.
#include "upstream/connector.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "config/schema.hpp"
#include "net/loop_resolver.hpp"

namespace ob::upstream {
namespace {

using namespace std::chrono_literals;

class connector_test : public ::testing::Test {
 protected:
  void SetUp() override {
    asio::make_service<net::loop_resolver>(
        ioc, [this](net::loop_resolver::task t) { asio::post(ioc, std::move(t)); },
        [this](const std::string& host, const std::string& port) { return lookup(host, port); });
  }
  void TearDown() override {
    {
      std::lock_guard lock(mu);
      released = true;
    }
    cv.notify_all();
    asio::use_service<net::loop_resolver>(ioc).stop();
  }

  // "slow.test" answers once released (127.0.0.1), any other name at once (127.0.0.1).
  net::resolve_results lookup(const std::string& host, const std::string& port) {
    ++lookups;
    if (host == "slow.test") {
      std::unique_lock lock(mu);
      cv.wait(lock, [this] { return released; });
    }
    net::resolve_results r;
    r.second.emplace_back(asio::ip::make_address("127.0.0.1"),
                          static_cast<unsigned short>(std::stoi(port)));
    return r;
  }
  void release() {
    {
      std::lock_guard lock(mu);
      released = true;
    }
    cv.notify_all();
  }

  config::base_url url(const std::string& host) {
    config::base_url u;
    u.host = host;
    u.port = acceptor.local_endpoint().port();
    u.host_header = host + ":" + std::to_string(u.port);
    return u;
  }
  // Starts a connect; its result lands in `out`.
  void start(connector& c, const config::base_url& u, std::chrono::milliseconds timeout,
             std::optional<connect_result>& out) {
    asio::co_spawn(
        ioc,
        [&c, u, timeout, &out]() -> asio::awaitable<void> { out = co_await c.connect(u, timeout); },
        asio::detached);
  }
  // Runs handlers until `done` or about 3 s.
  template <class Pred>
  bool run_until(Pred done) {
    for (int i = 0; i < 300 && !done(); ++i) {
      ioc.restart();
      ioc.run_for(10ms);
    }
    return done();
  }

  asio::io_context ioc;
  tcp::acceptor acceptor{ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  std::atomic<int> lookups{0};
};

TEST_F(connector_test, ALookupThatDoesNotAnswerIsBoundedByTheConnectTimeout) {
  connector c(ioc.get_executor(), nullptr);
  std::optional<connect_result> r;
  start(c, url("slow.test"), 100ms, r);
  ASSERT_TRUE(run_until([&] { return r.has_value(); })) << "the attempt waited for the lookup";
  EXPECT_EQ(r->error, connect_error::timeout);
  EXPECT_NE(r->detail.find("slow.test"), std::string::npos) << r->detail;
  EXPECT_NE(r->detail.find("DNS"), std::string::npos) << r->detail;
}

TEST_F(connector_test, ALookupThatDoesNotAnswerDoesNotHoldUpOtherNames) {
  connector c(ioc.get_executor(), nullptr);
  std::optional<connect_result> slow, fast;
  start(c, url("slow.test"), 10s, slow);
  ASSERT_TRUE(run_until([&] { return lookups.load() == 1; }));
  start(c, url("fast.test"), 10s, fast);
  ASSERT_TRUE(run_until([&] { return fast.has_value(); })) << "queued behind the slow lookup";
  EXPECT_EQ(fast->error, connect_error::none) << fast->detail;
  EXPECT_FALSE(slow.has_value());
  release();
  ASSERT_TRUE(run_until([&] { return slow.has_value(); }));
  EXPECT_EQ(slow->error, connect_error::none) << slow->detail;
}

TEST_F(connector_test, OneLookupServesEveryAttemptToItsNameMeanwhile) {
  connector c(ioc.get_executor(), nullptr);
  std::optional<connect_result> a, b, d, late;
  start(c, url("slow.test"), 10s, a);
  start(c, url("slow.test"), 10s, b);
  start(c, url("slow.test"), 50ms, late);  // gives up first; the others keep waiting
  ASSERT_TRUE(run_until([&] { return late.has_value(); }));
  EXPECT_EQ(late->error, connect_error::timeout);
  start(c, url("slow.test"), 10s, d);
  release();
  ASSERT_TRUE(run_until([&] { return a && b && d; }));
  EXPECT_EQ(a->error, connect_error::none) << a->detail;
  EXPECT_EQ(b->error, connect_error::none) << b->detail;
  EXPECT_EQ(d->error, connect_error::none) << d->detail;
  EXPECT_EQ(lookups.load(), 1);
  // Cached now: no lookup for the next one.
  std::optional<connect_result> next;
  start(c, url("slow.test"), 10s, next);
  ASSERT_TRUE(run_until([&] { return next.has_value(); }));
  EXPECT_EQ(next->error, connect_error::none);
  EXPECT_EQ(lookups.load(), 1);
}

}  // namespace
}  // namespace ob::upstream
