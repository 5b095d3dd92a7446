// A worker's Redis backends across a reload (server/worker_state.cpp): calls Redis refuses go
// to the backend in use on the worker's connection, the newest, never to one made for a
// request still on an older snapshot (retired at once).
#include "server/worker_state.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "proxy/snapshot.hpp"

namespace ob::server {
namespace {

state::redis_backend* redis_of(limits::backend* b) {
  return dynamic_cast<state::redis_backend*>(b);
}

TEST(WorkerState, ABackendForAnOlderSnapshotDoesNotTakeTheRefusedCalls) {
  boost::asio::io_context io;
  config::state_config cfg;
  cfg.redis = *config::parse_redis_url("redis://127.0.0.1:1/0", nullptr);  // never connected
  worker_state ws(io.get_executor(), cfg, nullptr);
  routing::state_registry routes;
  proxy::snapshot older(config::config{}, routes, 1);
  proxy::snapshot newer(config::config{}, routes, 2);

  std::shared_ptr<void> hold_new;
  auto* current = redis_of(ws.backend_for(newer, hold_new));
  ASSERT_NE(current, nullptr);
  EXPECT_EQ(current->batch().refused_taker().get(), current);

  std::shared_ptr<void> hold_old;  // a request still on the older snapshot
  auto* old = redis_of(ws.backend_for(older, hold_old));
  ASSERT_NE(old, nullptr);
  ASSERT_NE(old, current);
  EXPECT_EQ(current->batch().refused_taker().get(), current);  // still the newest

  std::shared_ptr<void> hold_newest;  // a reload: the newer backend becomes the current one
  proxy::snapshot newest(config::config{}, routes, 3);
  auto* next = redis_of(ws.backend_for(newest, hold_newest));
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(next->batch().refused_taker().get(), next);
  ws.stop();
}

}  // namespace
}  // namespace ob::server
