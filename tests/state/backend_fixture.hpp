// A redis-server, a client and a redis_backend on a test clock, for the backend's tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "state/redis_backend.hpp"
#include "state/redis_server.hpp"
#include "state/run_util.hpp"

namespace ob::test {

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
  limits::epoch_ms now = 1796007600000;  // 2026-11-30T03:00:00Z, a Monday
};

}  // namespace ob::test
