// openbridge: command line -> server::run, or a config check like `nginx -t`.
#include <CLI/CLI.hpp>

#include <pthread.h>

#include <csignal>
#include <iostream>

#include "config/parse.hpp"
#include "server/server.hpp"

namespace {

int check_config(const std::string& path) {
  auto result = ob::config::load_file(path);
  for (const auto& d : result.diagnostics) std::cerr << d.to_string() << '\n';
  if (!result.ok()) {
    std::cerr << path << ": invalid\n";
    return 1;
  }
  std::cout << path << ": ok (" << result.cfg->providers.size() << " providers)\n";
  return 0;
}

// First of all, before any other static initialiser and main: until server::run has its
// handlers in place, SIGHUP/SIGTERM/SIGINT stay pending instead of killing the process with
// their default action. Every thread started later inherits the mask; run() unblocks them on
// the main thread only. (Only the dynamic loader runs earlier; a signal then still kills.)
sigset_t previous_mask;
__attribute__((constructor(101))) void block_stop_signals() {
  sigset_t stop_and_reload;
  sigemptyset(&stop_and_reload);
  sigaddset(&stop_and_reload, SIGHUP);
  sigaddset(&stop_and_reload, SIGTERM);
  sigaddset(&stop_and_reload, SIGINT);
  sigaddset(&stop_and_reload, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &stop_and_reload, &previous_mask);
}

}  // namespace

int main(int argc, char** argv) {
  // Commands that do not serve keep the default dispositions.
  auto unblock = [] { pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr); };

  CLI::App app{"OpenBridge: one OpenAI-compatible endpoint in front of many providers"};
  app.set_version_flag("-V,--version", "openbridge " OPENBRIDGE_VERSION);
  ob::server::options opts;
  std::string check_path;
  app.add_option("-c,--config", opts.config_path, "Config file (JSON) to serve")
      ->check(CLI::ExistingFile);
  app.add_option("--check-config", check_path,
                 "Validate a config file, print every problem, exit 0 (valid) or 1");
  app.add_option("-l,--listen", opts.listen_override,
                 "Listen address HOST:PORT (overrides the config's \"listen\")");
  app.add_option("-w,--workers", opts.workers_override,
                 "Worker threads (overrides the config's \"workers\"; 0 = one per core)")
      ->check(CLI::Range(0, 256));
  app.add_option("--admin-listen", opts.admin_listen_override,
                 "Admin listener HOST:PORT (overrides the config's \"admin.listen\"; metrics, "
                 "health, targets, reload)");
  app.add_option("--log-level", opts.log_level_override,
                 "Process log level: debug, info, warn or error (overrides \"log.level\")")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    unblock();
    return app.exit(e);
  }
  if (!check_path.empty()) {
    unblock();
    return check_config(check_path);
  }
  if (opts.config_path.empty()) {
    std::cerr << "openbridge: --config PATH is required (see --help)\n";
    return 2;
  }
  return ob::server::run(opts);
}
