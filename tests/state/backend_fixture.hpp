// A redis-server, a client and a redis_backend on a test clock, for the backend's tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "state/redis_backend.hpp"
#include "state/redis_server.hpp"
#include "state/run_util.hpp"

namespace ob::test {

// The tests' clock starts on a Monday, 03:00 UTC, 2037-11-30: the last day of a month, the
// first of a week. Far ahead of the real clock on purpose: the scripts expire a budget's hash
// at an absolute time a day after its period ends (by this clock), and Redis removes a key
// whose time has passed by its own clock, so a test clock in the past would see its budgets
// vanish (tests set at 2026-11-30 began failing once the real date passed 2026-12-01).
inline constexpr limits::epoch_ms test_monday = 2'143'162'800'000;         // 2037-11-30T03:00Z
inline constexpr limits::epoch_ms test_day = test_monday - 3 * 3'600'000;  // its 00:00Z
inline constexpr limits::epoch_ms test_next_day = test_day + 86'400'000;   // 2037-12-01T00:00Z

class BackendFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!redis_server::available()) GTEST_SKIP() << "redis-server not installed";
    ASSERT_TRUE(server.start());
  }
  void TearDown() override {
    if (backend) backend->stop();
    if (client) client->stop();
  }
  void connect(state::redis_backend_options o = {}, limits::backend* local = nullptr,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(200)) {
    state::redis::client_options co;
    co.address = *config::parse_redis_url(server.url(), nullptr);
    co.timeout = timeout;
    client = std::make_shared<state::redis::client>(io.get_executor(), co);
    state::register_scripts(*client);
    client->start();
    ASSERT_TRUE(run_until(io, [&] { return client->connected(); }));
    sync();  // AUTH/SELECT/SCRIPT LOAD done
    if (!o.test_clock) o.test_clock = &now;
    backend = std::make_shared<state::redis_backend>(client, local, o);
    backend->start();
  }
  limits::verdict admit(const limits::demand& d) {
    auto v = await(io, backend->admit(d));
    EXPECT_TRUE(v.has_value());
    return v ? *v : limits::verdict{};
  }
  // Everything sent before is processed once a PING sent after it answers (one connection,
  // in order): settlements are fire-and-forget. Queued settlements go first (within the
  // batch delay, or at once when the worker is idle).
  void sync() {
    if (backend) {
      ASSERT_TRUE(run_until(io, [&] { return backend->batch().size() == 0; }));
    }
    std::vector<std::string_view> ping{"PING"};
    auto r = await(io, client->call(ping));
    ASSERT_TRUE(r && r->ok());
  }
  std::string get(const std::string& key) { return server.command({"GET", key}); }

  boost::asio::io_context io;
  redis_server server;
  std::shared_ptr<state::redis::client> client;
  std::shared_ptr<state::redis_backend> backend;
  limits::epoch_ms now = test_monday;
};

}  // namespace ob::test
