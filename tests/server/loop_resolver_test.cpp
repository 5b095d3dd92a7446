#include "net/loop_resolver.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>

#include "server/worker_mailbox.hpp"

namespace ob::server {
namespace {

namespace asio = boost::asio;

// A worker's arrangement: a loop without the scheduler's lock, its mailbox, and the lookup
// service handing answers back through the mailbox.
TEST(LoopResolver, ALookupOnAnUnsafeLoopAnswersOnTheLoopsThread) {
  asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE};
  worker_mailbox mailbox{ioc};
  asio::make_service<net::loop_resolver>(
      ioc, [&mailbox](worker_mailbox::task t) { mailbox.post(std::move(t)); });
  mailbox.start();
  std::optional<net::resolve_results> got;
  std::thread::id answered_on;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        got = co_await net::resolve(co_await asio::this_coro::executor, "localhost", "80");
        answered_on = std::this_thread::get_id();
        ioc.stop();
      },
      asio::detached);
  asio::steady_timer deadline(ioc, std::chrono::seconds(20));
  deadline.async_wait([&](boost::system::error_code ec) {
    if (!ec) ioc.stop();
  });
  auto guard = asio::make_work_guard(ioc);
  ioc.run();  // on this thread
  ASSERT_TRUE(got.has_value()) << "no answer within 20 s";
  EXPECT_FALSE(got->first) << got->first.message();
  EXPECT_FALSE(got->second.empty());
  for (const auto& ep : got->second) EXPECT_TRUE(ep.address().is_loopback()) << ep;
  EXPECT_EQ(answered_on, std::this_thread::get_id());
  asio::use_service<net::loop_resolver>(ioc).stop();
  mailbox.discard();
}

// Without the service (the main loop: health checks, the admin API's Redis client) the lookup is
// asio's own.
TEST(LoopResolver, AnOrdinaryLoopUsesAsiosResolver) {
  asio::io_context ioc;
  std::optional<net::resolve_results> got;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        got = co_await net::resolve(co_await asio::this_coro::executor, "localhost", "80");
      },
      asio::detached);
  ioc.run_for(std::chrono::seconds(20));
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(got->first) << got->first.message();
  EXPECT_FALSE(got->second.empty());
  EXPECT_FALSE(asio::has_service<net::loop_resolver>(ioc));
}

// The worker's end: the lookups still queued when the loop is gone are dropped (their coroutine
// frames destroyed on the stopping thread, never resumed); stop() may be called again.
TEST(LoopResolver, StopDropsTheQueuedLookupsAndIsIdempotent) {
  asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE};
  worker_mailbox mailbox{ioc};
  asio::make_service<net::loop_resolver>(
      ioc, [&mailbox](worker_mailbox::task t) { mailbox.post(std::move(t)); });
  int resumed = 0;
  for (int i = 0; i < 20; ++i)
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          co_await net::resolve(co_await asio::this_coro::executor, "localhost", "80");
          ++resumed;
        },
        asio::detached);
  ioc.poll();  // every coroutine reaches its lookup; the loop then ends without answers
  auto& service = asio::use_service<net::loop_resolver>(ioc);
  service.stop();
  service.stop();
  mailbox.discard();
  EXPECT_EQ(resumed, 0);
}

}  // namespace
}  // namespace ob::server
