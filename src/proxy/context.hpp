// Per-worker-thread state of the data plane. Nothing here is shared between threads except
// the snapshot store (atomic swap) and the groups' balancing state inside snapshots.
#pragma once

#include <memory>

#include <boost/asio/any_io_executor.hpp>

#include "proxy/json/model.hpp"
#include "proxy/snapshot.hpp"
#include "upstream/connector.hpp"
#include "upstream/pool.hpp"

namespace ob::proxy {

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
  upstream::pool pool;
  upstream::connector connector;
  json::model_finder finder;
  bool draining = false;  // shutting down: finish the current request, then close
  bool stopping = false;  // shutdown grace over: end requests in flight with an error

 private:
  std::shared_ptr<const snapshot> cached_;
  std::uint64_t cached_gen_ = ~std::uint64_t{0};
};

}  // namespace ob::proxy
