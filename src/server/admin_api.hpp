// What the admin listener shows of this process: metrics merged from every worker, target
// states, the effective config, reloads, readiness and the live event stream. Binds
// admin::admin_server (HTTP, access rules) to the server's internals.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "admin/admin_server.hpp"
#include "observe/timeseries.hpp"
#include "proxy/snapshot.hpp"
#include "server/worker.hpp"
#include "state/ledger.hpp"
#include "state/redis/client.hpp"

namespace ob::server {

// Reload outcomes since start, for openbridge_config_reloads_total and
// openbridge_config_last_reload_success_timestamp_seconds.
struct reload_counters {
  std::atomic<std::uint64_t> applied{0};
  std::atomic<std::uint64_t> refused{0};
  std::atomic<double> last_success{0};  // unix seconds
};

// The latest reloads (start included) with every diagnostic, for /admin/v1/reloads. Reloads
// come from the file watcher's thread, signals and the admin API: guarded by a mutex.
class reload_history {
 public:
  static constexpr std::size_t kept = 20;
  void record(std::string_view trigger, const proxy::snapshot_store::reload_outcome& o,
              std::uint64_t generation);
  // {"reloads":[{"time","trigger","applied","generation","diagnostics":[{level,path,message}]}]}
  // newest first. Diagnostics name config paths and values but never a secret (the parser
  // never quotes a key or token).
  std::string json() const;

 private:
  struct entry {
    double time = 0;  // unix seconds
    std::string trigger;
    bool applied = false;
    std::uint64_t generation = 0;
    std::vector<config::diagnostic> diagnostics;
  };
  mutable std::mutex m_;
  std::deque<entry> entries_;  // newest first
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
  reload_history* reload_log = nullptr;
  // The per-second traffic ring (main thread only: filled by traffic_sampler, read by the
  // admin API, both on the admin listener's event loop).
  observe::metrics::timeseries series{900};
  // The workers' totals of the latest sample (main thread only); /admin/v1/targets reads the
  // rate-limit headers from here instead of copying every shard on each call.
  observe::metrics::traffic_totals latest{};
  bool have_latest = false;
  state::ledger* ledger = nullptr;
  // With state.redis: the admin listener's own Redis connection, on this event loop (the
  // workers' connections live on their threads), through which /admin/v1/keys reads the
  // shared counters (state/keys_state.hpp). Null without Redis.
  std::shared_ptr<state::redis::client> redis{};
  std::string redis_head{};  // key names: state::key_head(state.prefix, state.cluster)
  bool redis_one_slot = false;
  std::chrono::milliseconds redis_timeout{50};
  std::string redis_last_error{};  // of the previous read: logged when it changes, not per call
};

// Once a second, on the admin listener's event loop: every worker folds its metrics shard on
// its own thread (observe::metrics::fold), the totals are added up here and become one point
// of c.series. Nothing is added to the request path.
class traffic_sampler {
 public:
  traffic_sampler(boost::asio::io_context& ioc, admin_context& c);
  void start();
  void stop();

 private:
  struct state {
    explicit state(boost::asio::io_context& ioc) : timer(ioc) {}
    boost::asio::steady_timer timer;
    bool stopped = false;
  };
  static boost::asio::awaitable<void> loop(std::shared_ptr<state> s, admin_context& c);
  boost::asio::io_context& ioc_;
  admin_context& c_;
  std::shared_ptr<state> state_;
};

admin::admin_handlers make_admin_handlers(admin_context& c);

// Where /admin/v1/keys took its usage and budget figures ("source"): "memory" (no Redis: this
// process holds the exact state), "redis" (the shared counters; `usage[i]` is snapshot key i's,
// default for keys without limits) or "local" (Redis failed: this instance's in-memory
// fallback state, with `redis_error` saying why).
struct keys_source {
  std::string_view name = "memory";
  std::string_view redis_error{};
  const std::vector<limits::key_usage>* usage = nullptr;
};

// What read_shared reads: every key with a limit or budget (/admin/v1/keys), or those with a
// budget (/metrics' openbridge_budget_remaining).
enum class shared_keys { limited, budgeted };
struct shared_read {
  std::vector<limits::key_usage> usage;  // usage[i] of snapshot key i (default if not read)
  limits::epoch_ms now = 0;              // Redis TIME; 0 when no key was read
  std::string error;                     // "" when read; else read_keys_state's reason
};

// With state.redis (c.redis set): the keys' shared counters from Redis, on the admin loop,
// never later than about twice state.timeout; all or nothing.
boost::asio::awaitable<shared_read> read_shared(admin_context& c, const proxy::snapshot& snap,
                                                shared_keys which);

// GET /admin/v1/keys: per key its name, labels, limits, current usage per window, budget
// used/reserved/remaining/period, expiry and whether it is disabled; never a token or digest.
// `rate_limited`: the merged shards' 429 counts (client, limit); `ledger`: usage_today and
// usage_month per key (both may be null).
std::string keys_json(const proxy::snapshot& snap, limits::epoch_ms now,
                      const observe::metrics::series_map<std::uint64_t>* rate_limited = nullptr,
                      state::ledger* ledger = nullptr, const keys_source& source = {});

// The whole answer of GET /admin/v1/keys: with Redis, the shared counters read on the admin
// loop (never blocking it), else or when Redis fails within its timeout, the local ones.
boost::asio::awaitable<std::string> keys_answer(admin_context& c);

// The /metrics text: every gateway family, target states, reloads, build info, process_*.
boost::asio::awaitable<std::string> render_metrics(admin_context& c);

}  // namespace ob::server
