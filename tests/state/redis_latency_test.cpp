// Admission latency through admit.lua on a loopback redis-server: printed, not asserted (a
// shared machine's timings are no pass/fail signal). Run alone:
//   build/test_state --gtest_filter='RedisLatency.*'
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "state/backend_fixture.hpp"

namespace ob::state {
namespace {

class RedisLatency : public test::BackendFixture {};

TEST_F(RedisLatency, AdmissionRoundTrip) {
  redis_backend_options o;
  static const limits::epoch_ms use_time = 0;  // Redis TIME, as in production
  o.test_clock = &use_time;
  connect(o);
  // A key with every limit and a target with two: the script's longest path.
  limits::key_demand k{
      0,
      "lat",
      {.rpm = 1'000'000,
       .rpd = 100'000'000,
       .tpm = 1'000'000'000,
       .tpd = 1'000'000'000,
       .concurrency = 100'000},
      {limits::budget_unit::tokens, limits::budget_period::month, 1'000'000'000'000}};
  limits::target_demand t[] = {{0, "g/a@h", {.rpm = 1'000'000, .concurrency = 100'000}, {}}};
  limits::demand d;
  d.key = &k;
  d.targets = t;
  d.input_tokens = 100;
  d.output_tokens = 100;

  // One at a time: the round trip a request waits for.
  constexpr int n = 2000;
  std::vector<double> us;
  us.reserve(n);
  for (int i = 0; i < n; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto v = admit(d);
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_TRUE(v.ok());
    backend->settle(v.res, limits::usage{50, 50});
  }
  std::sort(us.begin(), us.end());
  std::printf(
      "sequential admissions (admit + pipelined settle): p50 %.0f us, p90 %.0f us, p99 %.0f us, "
      "max %.0f us\n",
      us[n / 2], us[n * 9 / 10], us[n * 99 / 100], us.back());

  // Baseline: PING on the same connection.
  std::vector<double> ping;
  std::vector<std::string_view> argv{"PING"};
  for (int i = 0; i < n; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = test::await(io, client->call(argv));
    ping.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_TRUE(r && r->ok());
  }
  std::sort(ping.begin(), ping.end());
  std::printf("PING on the same connection: p50 %.0f us, p99 %.0f us\n", ping[n / 2],
              ping[n * 99 / 100]);

  // 64 in flight on the one connection (pipelined), 64 x 50 admissions.
  constexpr int conc = 64, each = 50;
  int done = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int c = 0; c < conc; ++c)
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          for (int i = 0; i < each; ++i) {
            auto v = co_await backend->admit(d);
            if (v.ok()) backend->settle(v.res, limits::usage{50, 50});
          }
          ++done;
        },
        boost::asio::detached);
  ASSERT_TRUE(test::run_until(
      io, [&] { return done == conc; }, std::chrono::milliseconds(60'000)));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("pipelined (%d in flight): %.0f admissions/s on one connection\n", conc,
              conc * each / secs);
  EXPECT_EQ(backend->stats().local_admissions, 0u);
}

}  // namespace
}  // namespace ob::state
