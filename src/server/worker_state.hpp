// A worker's shared state ("state" config, docs/SCALING.md): its Redis client and limits
// backend when state.redis is set, and its staging buffer of the usage ledger when state.path
// is. Lives on the worker's thread; no locks (the ledger stage has its own, uncontended).
//
// A Redis backend decides with the limits of the snapshot the request runs on (by key name,
// so a reload applies new limits at once) and falls back to that snapshot's in-memory backend
// when Redis fails: so there is one backend per snapshot, made when a request first sees the
// snapshot; the previous one is kept until its last request has settled and its leases are
// gone, then stopped.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "config/schema.hpp"
#include "proxy/context.hpp"
#include "state/ledger.hpp"
#include "state/redis_backend.hpp"

namespace ob::server {

class worker_state final : public proxy::state_hooks {
 public:
  // `ledger` may be null (no ledger); without state.redis admission stays in memory.
  worker_state(boost::asio::any_io_executor ex, const config::state_config& cfg,
               state::ledger* ledger);
  void start();  // on the worker's thread: connects to Redis
  // Completes once the first Redis connection is made or its attempt failed (at most the
  // client's connect timeout after start()); at once without Redis.
  boost::asio::awaitable<void> first_attempt();
  // On the worker's thread: stops every backend and the client; `done` runs once the Redis
  // connection has sent what was queued and closed (at most state.timeout later).
  void stop(std::function<void()> done = {});
  void sweep();  // drops retired backends nobody uses any more

  limits::backend* backend_for(const proxy::snapshot& snap, std::shared_ptr<void>& hold) override;
  void settled(const proxy::snapshot& snap, const observe::request_record& rec,
               const limits::reservation* key_res) override;

  bool redis() const { return client_ != nullptr; }

 private:
  state::redis_backend_options options_;
  std::shared_ptr<state::redis::client> client_;
  std::shared_ptr<state::redis_backend> current_;
  std::uint64_t current_gen_ = ~std::uint64_t{0};
  std::vector<std::shared_ptr<state::redis_backend>> retired_;
  state::ledger::stage* stage_ = nullptr;
};

}  // namespace ob::server
