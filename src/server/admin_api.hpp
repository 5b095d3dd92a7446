// What the admin listener shows of this process: metrics merged from every worker, target
// states, the effective config, reloads, readiness and the live event stream. Binds
// admin::admin_server (HTTP, access rules) to the server's internals.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "admin/admin_server.hpp"
#include "proxy/snapshot.hpp"
#include "server/worker.hpp"
#include "state/ledger.hpp"

namespace ob::server {

// Reload outcomes since start, for openbridge_config_reloads_total and
// openbridge_config_last_reload_success_timestamp_seconds.
struct reload_counters {
  std::atomic<std::uint64_t> applied{0};
  std::atomic<std::uint64_t> refused{0};
  std::atomic<double> last_success{0};  // unix seconds
};

struct admin_context {
  proxy::snapshot_store& store;
  const std::vector<std::unique_ptr<worker>>& workers;
  reload_counters& reloads;
  // Reloads the config file (as SIGHUP does); returns the store's outcome.
  std::function<proxy::snapshot_store::reload_outcome()> reload;
  const std::atomic<bool>& shutting_down;
  // Whether the admin listener is bound to a loopback address. The listener is bound once; a
  // reload that drops the token cannot make a non-loopback one open to anyone.
  bool loopback = true;
  // The usage ledger ("state" config) behind /admin/v1/usage; nullptr = off.
  state::ledger* ledger = nullptr;
};

admin::admin_handlers make_admin_handlers(admin_context& c);

// The /metrics text: every gateway family, target states, reloads, build info, process_*.
boost::asio::awaitable<std::string> render_metrics(admin_context& c);

}  // namespace ob::server
