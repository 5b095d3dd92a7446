// Per-worker-thread state of the data plane. Nothing here is shared between threads except
// the snapshot store (atomic swap) and the groups' balancing state inside snapshots.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "observe/gateway_metrics.hpp"
#include "observe/log.hpp"
#include "proxy/json/model.hpp"
#include "proxy/snapshot.hpp"
#include "upstream/connector.hpp"
#include "upstream/pool.hpp"

namespace ob::proxy {

// Shared state of a worker ("state" config: docs/SCALING.md): where admission takes its limits
// backend (Redis when state.redis is set, else the snapshot's in-memory one) and where settled
// usage goes (the SQLite ledger). Unset: in memory, no ledger.
class state_hooks {
 public:
  virtual ~state_hooks() = default;
  // The backend for requests on `snap`; `hold` keeps it alive until the request settles.
  virtual limits::backend* backend_for(const snapshot& snap, std::shared_ptr<void>& hold) = 0;
  // A request ended: its usage (and, for a key with a budget that settled, `key_res`).
  virtual void settled(const snapshot& snap, const observe::request_record& rec,
                       const limits::reservation* key_res) = 0;
};

struct worker_context {
  worker_context(boost::asio::any_io_executor ex, snapshot_store& s,
                 std::shared_ptr<boost::asio::ssl::context> tls)
      : executor(ex), store(s), connector(ex, std::move(tls)) {}

  // The current snapshot; refreshed only when the store's generation moved.
  const std::shared_ptr<const snapshot>& current() {
    auto gen = store.generation();
    if (gen != cached_gen_) {
      cached_ = store.load();
      cached_gen_ = cached_ ? cached_->generation : 0;
    }
    return cached_;
  }

  boost::asio::any_io_executor executor;
  snapshot_store& store;
  // Each connection carries its own limit (timeouts.pool_idle, the provider's Keep-Alive: set
  // when released); the pool's own is the longest a configured one can be (7 days).
  upstream::pool pool{upstream::pool::options{.max_idle = std::chrono::hours(24 * 7)}};
  upstream::connector connector;
  json::model_finder finder;
  // A stream's de-chunked bytes of one upstream read, gathered for the SSE framer when the read
  // held more than one chunk (exchange::hold_stream_bytes). Used and emptied within one parse:
  // one per worker, not one per connection.
  std::string stream_gather;
  // Stream payload buffers (exchange::payload_) between uses, the last one given back on top. A
  // stream takes the top one when it starts writing events, and gives it back when its client
  // write completes, so the next stream of this thread writes into memory still in cache; with
  // a buffer kept per connection, each of 64 streams wrote its 7 KiB into memory that the other
  // 63 had pushed out of the cache since (scenario v under callgrind's model of a 2 MiB cache:
  // 129 misses on writes per request before, 50 after). At most spare_payload_count buffers of
  // at most spare_payload_max bytes each are kept.
  std::vector<std::string> spare_payloads;
  static constexpr std::size_t spare_payload_count = 16;
  static constexpr std::size_t spare_payload_max = 64 * 1024;
  // This worker's metrics: written by this thread only, copied on it when /metrics is scraped.
  observe::metrics::shard metrics;
  state_hooks* state = nullptr;  // set before the worker starts; null: no "state" config
  bool draining = false;         // shutting down: finish the current request, then close
  bool stopping = false;         // shutdown grace over: end requests in flight with an error

  // Called on each tick of the worker's sweep loop (20 ms, or 1 s when idle). Once a second,
  // and at the next tick after a reload: closes idle pooled connections past max_idle and
  // those to origins no current target uses (a request still running on an older snapshot
  // may return one after the reload: the next pass closes it).
  void sweep_pool(std::chrono::steady_clock::time_point now) {
    const auto& snap = current();
    bool reloaded = snap && snap->generation != pooled_gen_;
    if (!reloaded && now < next_pool_sweep_) return;
    next_pool_sweep_ = now + std::chrono::seconds(1);
    if (snap) {
      pooled_gen_ = snap->generation;
      pool.retain([&](std::string_view origin) {
        for (const auto* g : snap->routes.groups())
          for (const auto& t : g->targets)
            if (t.pool_key == origin) return true;
        return false;
      });
    }
    pool.sweep(now);
  }

 private:
  std::shared_ptr<const snapshot> cached_;
  std::uint64_t cached_gen_ = ~std::uint64_t{0};
  std::uint64_t pooled_gen_ = ~std::uint64_t{0};  // snapshot the pool was last pruned for
  std::chrono::steady_clock::time_point next_pool_sweep_{};
};

}  // namespace ob::proxy
