#include "server/server.hpp"

#include <pthread.h>

#include <csignal>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "admin/admin_server.hpp"
#include "config/parse_detail.hpp"
#include "config/watcher.hpp"
#include "limits/algorithms.hpp"
#include "observe/events.hpp"
#include "observe/health.hpp"
#include "observe/log.hpp"
#include "server/admin_api.hpp"
#include "server/health_checker.hpp"
#include "server/listen_address.hpp"
#include "server/systemd_notify.hpp"
#include "server/tls_context.hpp"
#include "server/worker.hpp"
#include "state/keys_state.hpp"
#include "state/redis_backend.hpp"
#include "upstream/connector.hpp"

namespace ob::server {

namespace asio = boost::asio;
using observe::level;
using observe::log;

namespace {

// After the grace period: how long cut requests may take to write their error and log line.
constexpr auto shutdown_cut_wait = std::chrono::milliseconds(1000);

void log_diagnostics(const std::vector<config::diagnostic>& diags) {
  for (const auto& d : diags)
    log(d.severity == config::diagnostic::level::error ? level::error : level::warn,
        "config: " + d.to_string());
}

std::string describe(const proxy::snapshot& s) {
  return std::to_string(s.cfg.providers.size()) + " providers in " +
         std::to_string(s.routes.groups().size()) + " groups";
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

static_assert(static_cast<int>(config::log_config::access_kind::errors) ==
              static_cast<int>(observe::access_mode::errors));
static_assert(static_cast<int>(config::log_config::access_kind::off) ==
              static_cast<int>(observe::access_mode::off));

// Logging as the config (and the command line) says: process log level, access log format
// and file. Returns false with *error when the file cannot be opened.
bool apply_logging(const config::config& cfg, const options& opts, std::string* error) {
  auto lvl = observe::parse_level(opts.log_level_override);
  observe::set_level(lvl ? *lvl : static_cast<observe::level>(cfg.log.level));
  return observe::configure_access_log(
      {cfg.log.format == config::log_config::format_kind::json ? observe::access_format::json
                                                               : observe::access_format::text,
       cfg.log.file, static_cast<observe::access_mode>(cfg.log.access)},
      error);
}

// Seeds the in-memory budgets of `snap`'s keys with the ledger's usage of their current period
// (a key's state keeps the larger of what it holds and the ledger's: seeding twice is harmless).
void seed_budgets(const state::ledger& ledger, const proxy::snapshot& snap) {
  auto now = limits::wall_now();
  for (const auto& k : snap.keys.keys) {
    const auto& b = k.demand.budget;
    if (b.unit == limits::budget_unit::none) continue;
    auto used = ledger.budget_used(k.demand.name, limits::period_start(b.period, now));
    if (used) snap.keys.memory->seed_budget(k.demand, used, now);
  }
}

struct reload_target {
  proxy::snapshot_store& store;
  const options& opts;
  const config::config& started_with;
  reload_counters& counters;
  reload_history& history;
  const systemd_notifier& notify;
  std::string status;  // systemd's STATUS= line while serving
};

proxy::snapshot_store::reload_outcome reload_or_throw(reload_target& t, bool force,
                                                      std::string_view trigger) {
  const auto& path = t.opts.config_path;
  auto out = t.store.reload(path, force);
  if (out.unchanged) return out;
  log_diagnostics(out.diagnostics);
  std::uint64_t errors = 0, warnings = 0;
  std::string first;
  for (const auto& d : out.diagnostics) {
    (d.severity == config::diagnostic::level::error ? errors : warnings)++;
    if (first.empty() && d.severity == config::diagnostic::level::error) first = d.to_string();
  }
  observe::reload_event({out.applied, t.store.generation(), trigger, errors, warnings, first});
  t.history.record(trigger, out, t.store.generation());
  if (!out.applied) {
    t.counters.refused.fetch_add(1, std::memory_order_relaxed);
    log(level::error, "config reload refused (" + path + "): keeping the running config");
    return out;
  }
  t.counters.applied.fetch_add(1, std::memory_order_relaxed);
  t.counters.last_success.store(unix_now(), std::memory_order_relaxed);
  auto snap = t.store.load();
  log(level::info, "config reloaded: " + describe(*snap));
  std::string err;
  if (!apply_logging(snap->cfg, t.opts, &err))
    log(level::error,
        "log: " + err + ": keeping the previous access log (file, format and access)");
  const auto& was = t.started_with;
  if (snap->cfg.tls.enabled != was.tls.enabled || snap->cfg.tls.listen != was.tls.listen ||
      snap->cfg.tls.cert != was.tls.cert || snap->cfg.tls.key != was.tls.key ||
      snap->cfg.tls.client_ca != was.tls.client_ca)
    log(level::warn,
        "config: 'tls' changes take effect after a restart (the files it names are reloaded "
        "on SIGHUP and when they change)");
  if (snap->cfg.listen != was.listen || snap->cfg.workers != was.workers ||
      snap->cfg.admin.enabled != was.admin.enabled || snap->cfg.admin.listen != was.admin.listen)
    log(level::warn,
        "config: 'listen', 'workers' and 'admin.listen' changes take effect after a restart");
  return out;
}

// Reloads run from a signal handler, the file watcher's thread and the admin API: whatever
// goes wrong (out of memory, an unreadable file the checks missed) keeps the running config,
// logged, never a dead process or watcher.
proxy::snapshot_store::reload_outcome reload_guarded(reload_target& t, bool force,
                                                     std::string_view trigger) noexcept {
  const auto& path = t.opts.config_path;
  try {
    return reload_or_throw(t, force, trigger);
  } catch (const std::exception& e) {
    log(level::error,
        "config reload failed (" + path + "): " + e.what() + ": keeping the running config");
  } catch (...) {
    log(level::error, "config reload failed (" + path + "): keeping the running config");
  }
  proxy::snapshot_store::reload_outcome failed;
  failed.diagnostics.push_back({config::diagnostic::level::error, "", "internal error"});
  return failed;
}

// Re-reads the TLS certificate, key and client CA: new handshakes use them; a pair that cannot
// be used is refused and the one in force keeps serving.
void reload_tls(tls_context& tls, std::string_view trigger) noexcept {
  try {
    std::string err;
    if (tls.load(&err))
      log(level::info,
          "TLS certificate reloaded (" + std::string(trigger) + "): " + tls.describe());
    else
      log(level::error, "TLS certificate reload refused (" + std::string(trigger) + "): " + err +
                            ": keeping the certificate in use (" + tls.describe() + ")");
  } catch (const std::exception& e) {
    log(level::error, std::string("TLS certificate reload failed: ") + e.what() +
                          ": keeping the certificate in use");
  }
}

// Under systemd the service shows "reloading" until the new config is applied or refused.
proxy::snapshot_store::reload_outcome reload(reload_target& t, bool force,
                                             std::string_view trigger) noexcept {
  t.notify.send(reloading_message() + "\nSTATUS=reloading " + t.opts.config_path);
  auto out = reload_guarded(t, force, trigger);
  t.notify.send("READY=1\nSTATUS=" + t.status);
  return out;
}

// WATCHDOG=1 every half of systemd's WatchdogSec= while the main thread turns.
void keep_watchdog_fed(asio::steady_timer& timer, const systemd_notifier& notify) {
  notify.send("WATCHDOG=1");
  timer.expires_after(notify.watchdog_interval());
  timer.async_wait([&timer, &notify](boost::system::error_code ec) {
    if (!ec) keep_watchdog_fed(timer, notify);
  });
}

void unblock_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace

int run(const options& opts) {
  std::signal(SIGPIPE, SIG_IGN);
  proxy::snapshot_store store;
  reload_history history;
  {
    auto first = store.reload(opts.config_path, true);
    log_diagnostics(first.diagnostics);
    history.record("start", first, store.generation());
    if (!first.applied) {
      log(level::error, "cannot start: invalid config " + opts.config_path);
      return 1;
    }
  }
  const auto initial = store.load();
  const auto& cfg = initial->cfg;
  reload_counters counters;
  counters.last_success.store(unix_now(), std::memory_order_relaxed);
  {
    std::string log_err;
    if (!apply_logging(cfg, opts, &log_err)) {
      log(level::error, "cannot start: log: " + log_err);
      return 1;
    }
  }
  std::string listen = opts.listen_override.empty() ? cfg.listen : opts.listen_override;
  unsigned n =
      opts.workers_override >= 0 ? static_cast<unsigned>(opts.workers_override) : cfg.workers;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());

  // With "tls" and no "listen" (in the config or on the command line), only HTTPS is served.
  bool plain = !cfg.tls.enabled || cfg.listen_set || !opts.listen_override.empty();
  std::string err;
  auto ep = parse_listen_address(listen, &err);
  if (!ep) {
    log(level::error, "cannot start: listen address '" + listen + "': " + err);
    return 1;
  }

  if (auto held = plain ? check_address_free(*ep) : std::nullopt) {
    log(level::error, "cannot start: " + listen + " is already in use (" + *held +
                          "), maybe by another openbridge; stop it or choose another address "
                          "with --listen or the config's \"listen\"");
    return 1;
  }

  std::shared_ptr<tls_context> tls_server;
  std::optional<asio::ip::tcp::endpoint> tls_ep;
  if (cfg.tls.enabled) {
    tls_ep = parse_listen_address(cfg.tls.listen, &err);
    if (!tls_ep) {
      log(level::error, "cannot start: tls.listen '" + cfg.tls.listen + "': " + err);
      return 1;
    }
    // SO_REUSEPORT would let both listeners share one port, each taking some connections.
    if (plain && tls_ep->port() != 0 && *tls_ep == *ep) {
      log(level::error, "cannot start: tls.listen " + cfg.tls.listen +
                            " is the plain listener's address too; give HTTPS a port of its own");
      return 1;
    }
    if (auto held = check_address_free(*tls_ep)) {
      log(level::error,
          "cannot start: tls.listen " + cfg.tls.listen + " is already in use (" + *held + ")");
      return 1;
    }
    tls_server = std::make_shared<tls_context>(cfg.tls);
    if (!tls_server->load(&err)) {
      log(level::error, "cannot start: " + err);
      return 1;
    }
  }

  auto tls = upstream::make_client_tls_context();
  std::vector<std::unique_ptr<worker>> workers;
  auto bind_to = *ep;
  auto tls_bind_to = tls_ep.value_or(asio::ip::tcp::endpoint{});
  try {
    for (unsigned i = 0; i < n; ++i) {
      workers.push_back(std::make_unique<worker>(store, tls));
      // Port 0: the system picks a port for the first worker; the others must join that one,
      // not each get a port of their own.
      if (plain) {
        auto bound = workers.back()->listen(bind_to);
        if (i == 0) bind_to = bound;
      }
      if (tls_server) {
        auto bound = workers.back()->listen_tls(tls_bind_to, tls_server);
        if (i == 0) tls_bind_to = bound;
      }
    }
  } catch (const boost::system::system_error& e) {
    log(level::error,
        "cannot listen on " + (plain ? listen : cfg.tls.listen) + ": " + e.code().message());
    return 1;
  }
  // The admin listener: bound before any worker starts, so a taken port stops the start-up
  // cleanly (two instances on one host each need their own --admin-listen).
  asio::io_context main_ioc(1);
  std::atomic<bool> shutting_down{false};
  const auto notify = systemd_notifier::from_environment();
  reload_target reloads{store, opts, cfg, counters, history, notify, {}};
  std::unique_ptr<state::ledger> ledger;  // outlives the admin listener that reads it
  admin_context admin_ctx{store, workers, counters, [&] { return reload(reloads, true, "admin"); },
                          shutting_down};
  admin_ctx.reload_log = &history;
  traffic_sampler sampler(main_ioc, admin_ctx);
  std::unique_ptr<admin::admin_server> admin_srv;
  std::string admin_listen =
      opts.admin_listen_override.empty() ? cfg.admin.listen : opts.admin_listen_override;
  admin_ctx.loopback = config::detail::is_loopback_listen(admin_listen);
  // The usage ledger ("state": {"path"}); opened once, a reload does not move it.
  if (cfg.state.enabled && !cfg.state.path.empty()) {
    ledger = state::ledger::open(cfg.state.path, &err);
    if (!ledger) {
      log(level::error, "cannot start: state.path: " + err);
      return 1;
    }
    ledger->start();
    admin_ctx.ledger = ledger.get();
  }
  if (cfg.admin.enabled || !opts.admin_listen_override.empty()) {
    auto admin_ep = parse_listen_address(admin_listen, &err);
    if (!admin_ep) {
      log(level::error, "cannot start: admin listen address '" + admin_listen + "': " + err);
      return 1;
    }
    if (cfg.admin.token.empty() && !config::detail::is_loopback_listen(admin_listen)) {
      log(level::error, "cannot start: admin listener " + admin_listen +
                            " is not a loopback address and admin.token is not set");
      return 1;
    }
    try {
      admin_srv = std::make_unique<admin::admin_server>(main_ioc, *admin_ep,
                                                        make_admin_handlers(admin_ctx));
    } catch (const boost::system::system_error& e) {
      log(level::error, "cannot start: admin listener " + admin_listen + ": " + e.code().message() +
                            "; choose another address with --admin-listen (or the config's "
                            "\"admin\": {\"listen\": ...}), or turn it off with \"admin\": false");
      return 1;
    }
    observe::events().set_enabled(true);
    // /admin/v1/keys reads the shared counters through a connection of its own, on this loop.
    if (cfg.state.enabled && cfg.state.redis) {
      admin_ctx.redis = std::make_shared<state::redis::client>(
          main_ioc.get_executor(), state::redis::client_options{.address = *cfg.state.redis,
                                                                .timeout = cfg.state.timeout,
                                                                .cluster = cfg.state.cluster});
      admin_ctx.redis->add_script(&state::keys_state_script());
      admin_ctx.redis_head = state::key_head(cfg.state.prefix, cfg.state.cluster);
      admin_ctx.redis_one_slot = cfg.state.cluster;
      admin_ctx.redis_timeout = cfg.state.timeout;
    }
  }

  // Embedded mode (no Redis): the budgets' usage of the current periods comes back from the
  // ledger, so a restart does not hand out a spent budget again; nor does a reload that adds
  // (or adds back) a key: each new snapshot is seeded before it serves.
  if (ledger && !cfg.state.redis) {
    auto seed = [l = ledger.get()](const proxy::snapshot& s) { seed_budgets(*l, s); };
    seed(*initial);
    store.on_prepare(seed);
  }
  for (auto& w : workers) w->attach_state(cfg.state, ledger.get());
  for (auto& w : workers) w->start();
  if (plain)
    log(level::info, "openbridge listening on " + format_listen_address(bind_to) + " (" +
                         std::to_string(n) + " workers, " + describe(*initial) + ")");
  if (tls_server)
    log(level::info, "openbridge listening with TLS on " + format_listen_address(tls_bind_to) +
                         " (" + std::to_string(n) + " workers, " + describe(*initial) +
                         "; certificate " + tls_server->describe() + ")");

  if (admin_srv) {
    admin_srv->start();
    sampler.start();
    if (admin_ctx.redis) admin_ctx.redis->start();
    // The bound address: with port 0 the system chose it.
    admin_listen = format_listen_address(admin_srv->local_endpoint());
    log(level::info, "admin listening on " + admin_listen +
                         (cfg.admin.token.empty() ? " (no token: loopback only)" : ""));
  }

  // Set before the watcher's thread starts: its reloads read it.
  reloads.status = "serving on " + format_listen_address(bind_to) +
                   (admin_srv ? ", admin on " + admin_listen : std::string());
  config::file_watcher watcher(opts.config_path, [&] { reload(reloads, false, "file"); });
  watcher.start();
  // The certificate, key and client CA files: a change reloads all three.
  std::vector<std::unique_ptr<config::file_watcher>> tls_watchers;
  if (tls_server)
    for (const auto* path : {&cfg.tls.cert, &cfg.tls.key, &cfg.tls.client_ca}) {
      if (path->empty()) continue;
      tls_watchers.push_back(std::make_unique<config::file_watcher>(
          *path, [&tls = *tls_server] { reload_tls(tls, "file"); }));
      tls_watchers.back()->start();
    }

  health_checker checker(main_ioc, store, tls);
  checker.start();
  // Listeners are open and accepting: systemd may now start the units ordered after this one.
  notify.send("READY=1\nSTATUS=" + reloads.status);
  asio::steady_timer watchdog(main_ioc);
  if (notify.watchdog_interval().count() > 0) keep_watchdog_fed(watchdog, notify);
  asio::signal_set signals(main_ioc, SIGHUP, SIGTERM, SIGINT);
  signals.add(SIGUSR1);
  bool stopping = false;
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      log(level::info, "SIGHUP: reloading " + opts.config_path);
      reload(reloads, true, "signal");
      if (tls_server) reload_tls(*tls_server, "SIGHUP");
      signals.async_wait(on_signal);
      return;
    }
    if (sig == SIGUSR1) {  // logrotate: reopen the access log file by name
      std::string e;
      if (!observe::reopen_access_log(&e)) log(level::error, "log: " + e);
      signals.async_wait(on_signal);
      return;
    }
    stopping = true;
  };
  signals.async_wait(on_signal);
  // main() blocked these signals before anything else; those that came during start-up were
  // kept pending and are handled now (a SIGTERM drains and exits 0, a SIGHUP reloads once).
  unblock_stop_signals();
  while (!stopping) main_ioc.run_one();

  // Readiness turns 503 first, so a load balancer stops sending before the listeners close.
  shutting_down.store(true, std::memory_order_relaxed);
  notify.send("STOPPING=1\nSTATUS=draining: finishing requests in flight");
  watchdog.cancel();
  for (auto& w : workers) w->begin_drain();  // stop accepting, close idle connections
  log(level::info, "shutting down: finishing requests in flight");
  checker.stop();
  watcher.stop();
  for (auto& w : tls_watchers) w->stop();
  auto live_connections = [&] {
    std::size_t live = 0;
    for (auto& w : workers) live += w->live_connections();
    return live;
  };
  auto wait_until = [&](std::chrono::steady_clock::time_point until) {
    for (std::size_t live = live_connections(); live > 0; live = live_connections()) {
      if (std::chrono::steady_clock::now() >= until) return live;
      if (admin_srv)
        main_ioc.run_for(std::chrono::milliseconds(20));  // the admin API answers meanwhile
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::size_t{0};
  };
  if (auto live = wait_until(std::chrono::steady_clock::now() + cfg.timeouts.shutdown_grace)) {
    // Requests still running are ended with an error answer and an access line, not dropped:
    // they get a moment to write them before everything closes.
    log(level::warn, "shutdown grace period over: ending " + std::to_string(live) + " connections");
    for (auto& w : workers) w->cut();
    wait_until(std::chrono::steady_clock::now() + shutdown_cut_wait);
  }
  sampler.stop();
  if (admin_srv) admin_srv->stop();
  if (admin_ctx.redis) admin_ctx.redis->stop();
  main_ioc.poll();  // let the admin connections see their sockets closed
  for (auto& w : workers) w->stop();
  for (auto& w : workers) w->join();
  workers.clear();
  store.on_prepare(nullptr);  // it points at the ledger, which goes first
  log(level::info, "stopped");
  return 0;
}

}  // namespace ob::server
