// One immutable, fully validated configuration as the data plane uses it, and the store that
// swaps snapshots atomically. Requests hold a shared_ptr to the snapshot they started with,
// so a reload never changes anything under a request in flight.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/token_check.hpp"
#include "config/parse.hpp"
#include "config/schema.hpp"
#include "limits/table.hpp"
#include "routing/table.hpp"

namespace ob::proxy {

struct snapshot {
  // `limit_states`: where keys' and targets' limit state lives across reloads (nullptr: a
  // process-wide registry).
  snapshot(config::config c, routing::state_registry& states, std::uint64_t gen,
           limits::state_registry* limit_states = nullptr);
  snapshot(const snapshot&) = delete;  // the route table points into cfg

  const config::config cfg;
  const routing::table routes;
  const auth::token_set tokens;   // entry i is cfg.keys[i]
  const limits::key_table keys;   // entry i is cfg.keys[i]
  const std::string models_body;  // GET /v1/models answer, built once
  // Per key (index as `keys`): the GET /v1/models answer of a key with a `groups` list (only
  // those groups, in the same order); "" for a key that may use every group (models_body).
  const std::vector<std::string> key_models;
  // Metric label id of each key's name; past metrics.max_clients names, "other": label values
  // stay bounded however many clients are configured.
  const std::vector<std::uint32_t> client_labels;
  const std::vector<std::string> client_names;  // cfg.keys[i].name, for the access log
  const std::uint64_t generation;
};

class snapshot_store {
 public:
  std::shared_ptr<const snapshot> load() const { return current_.load(std::memory_order_acquire); }
  // Bumped after every swap: workers compare it to refresh their cached snapshot cheaply.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // Builds and swaps in a snapshot of `cfg`. Cannot fail once cfg is validated.
  void install(config::config cfg);
  // Runs on each new snapshot before it is swapped in (start and every reload): a key's state
  // is ready before its first request (budgets seeded from the ledger). Must not throw.
  void on_prepare(std::function<void(const snapshot&)> fn) {
    std::lock_guard lock(reload_mu_);
    prepare_ = std::move(fn);
  }

  struct reload_outcome {
    bool applied = false;
    bool unchanged = false;  // same bytes as the running config: nothing to do
    std::vector<config::diagnostic> diagnostics;
  };
  // Reads, parses and validates `path`; swaps only when everything is valid. Serialized.
  // Without `force`, a file whose bytes equal the running config's is not applied again.
  reload_outcome reload(const std::string& path, bool force = false);

 private:
  std::mutex reload_mu_;
  std::function<void(const snapshot&)> prepare_;  // under reload_mu_
  std::string last_text_;
  routing::state_registry states_;
  limits::state_registry limit_states_;
  std::atomic<std::shared_ptr<const snapshot>> current_;
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace ob::proxy
