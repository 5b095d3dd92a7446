#include "server/server.hpp"

#include <pthread.h>

#include <csignal>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/watcher.hpp"
#include "observe/log.hpp"
#include "server/health_checker.hpp"
#include "server/listen_address.hpp"
#include "server/worker.hpp"
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

void reload_or_throw(proxy::snapshot_store& store, const std::string& path, bool force,
                     const config::config& started_with) {
  auto out = store.reload(path, force);
  if (out.unchanged) return;
  log_diagnostics(out.diagnostics);
  if (!out.applied) {
    log(level::error, "config reload refused (" + path + "): keeping the running config");
    return;
  }
  auto snap = store.load();
  log(level::info, "config reloaded: " + describe(*snap));
  if (snap->cfg.listen != started_with.listen || snap->cfg.workers != started_with.workers)
    log(level::warn, "config: 'listen' and 'workers' changes take effect after a restart");
}

// Reloads run from a signal handler and the file watcher's thread: whatever goes wrong (out of
// memory, an unreadable file the checks missed) keeps the running config, logged, never a
// dead process or watcher.
void reload(proxy::snapshot_store& store, const std::string& path, bool force,
            const config::config& started_with) noexcept {
  try {
    reload_or_throw(store, path, force, started_with);
  } catch (const std::exception& e) {
    log(level::error,
        "config reload failed (" + path + "): " + e.what() + ": keeping the running config");
  } catch (...) {
    log(level::error, "config reload failed (" + path + "): keeping the running config");
  }
}

void unblock_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace

int run(const options& opts) {
  std::signal(SIGPIPE, SIG_IGN);
  proxy::snapshot_store store;
  {
    auto first = store.reload(opts.config_path, true);
    log_diagnostics(first.diagnostics);
    if (!first.applied) {
      log(level::error, "cannot start: invalid config " + opts.config_path);
      return 1;
    }
  }
  const auto initial = store.load();
  const auto& cfg = initial->cfg;
  std::string listen = opts.listen_override.empty() ? cfg.listen : opts.listen_override;
  unsigned n =
      opts.workers_override >= 0 ? static_cast<unsigned>(opts.workers_override) : cfg.workers;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());

  std::string err;
  auto ep = parse_listen_address(listen, &err);
  if (!ep) {
    log(level::error, "cannot start: listen address '" + listen + "': " + err);
    return 1;
  }

  if (auto held = check_address_free(*ep)) {
    log(level::error, "cannot start: " + listen + " is already in use (" + *held +
                          "), maybe by another openbridge; stop it or choose another address "
                          "with --listen or the config's \"listen\"");
    return 1;
  }

  auto tls = upstream::make_client_tls_context();
  std::vector<std::unique_ptr<worker>> workers;
  auto bind_to = *ep;
  try {
    for (unsigned i = 0; i < n; ++i) {
      workers.push_back(std::make_unique<worker>(store, tls));
      auto bound = workers.back()->listen(bind_to);
      // Port 0: the system picks a port for the first worker; the others must join that one,
      // not each get a port of their own.
      if (i == 0) bind_to = bound;
    }
  } catch (const boost::system::system_error& e) {
    log(level::error, "cannot listen on " + listen + ": " + e.code().message());
    return 1;
  }
  for (auto& w : workers) w->start();
  log(level::info, "openbridge listening on " + format_listen_address(bind_to) + " (" +
                       std::to_string(n) + " workers, " + describe(*initial) + ")");

  config::file_watcher watcher(opts.config_path,
                               [&] { reload(store, opts.config_path, false, cfg); });
  watcher.start();

  asio::io_context main_ioc(1);
  health_checker checker(main_ioc, store, tls);
  checker.start();
  asio::signal_set signals(main_ioc, SIGHUP, SIGTERM, SIGINT);
  bool stopping = false;
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      log(level::info, "SIGHUP: reloading " + opts.config_path);
      reload(store, opts.config_path, true, cfg);
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

  log(level::info, "shutting down: finishing requests in flight");
  checker.stop();
  watcher.stop();
  for (auto& w : workers) w->begin_drain();
  auto live_connections = [&] {
    std::size_t live = 0;
    for (auto& w : workers) live += w->live_connections();
    return live;
  };
  auto wait_until = [&](std::chrono::steady_clock::time_point until) {
    for (std::size_t live = live_connections(); live > 0; live = live_connections()) {
      if (std::chrono::steady_clock::now() >= until) return live;
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
  for (auto& w : workers) w->stop();
  for (auto& w : workers) w->join();
  workers.clear();
  log(level::info, "stopped");
  return 0;
}

}  // namespace ob::server
