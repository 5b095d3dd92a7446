// The whole process: workers, signals (SIGHUP reload, SIGTERM/SIGINT graceful stop), config
// file watching.
#pragma once

#include <string>

namespace ob::server {

struct options {
  std::string config_path;
  std::string listen_override;        // "" = from the config file
  int workers_override = -1;          // -1 = from the config file
  std::string admin_listen_override;  // "" = from the config file ("admin.listen")
  std::string log_level_override;     // "" = from the config file ("log.level")
};

// Runs until SIGTERM/SIGINT; returns the process exit code.
int run(const options& opts);

}  // namespace ob::server
