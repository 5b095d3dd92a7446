// systemd's service notification protocol (sd_notify(3)) without libsystemd: a state change is
// one datagram ("READY=1", "RELOADING=1", "STOPPING=1", "WATCHDOG=1", "STATUS=...") sent to the
// unix socket named by $NOTIFY_SOCKET. Outside systemd (no NOTIFY_SOCKET) every call is a no-op,
// so the gateway behaves the same under any supervisor. Used only at start, reload and stop.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace ob::server {

struct notify_address {
  sockaddr_un addr{};
  socklen_t len = 0;  // of the used part of addr (an abstract name is not NUL-terminated)
};

// "/run/systemd/notify" (a path) or "@name" (Linux abstract namespace) -> socket address;
// nothing for an empty, relative or too long value.
std::optional<notify_address> parse_notify_socket(std::string_view value);

// The "RELOADING=1" message, with the MONOTONIC_USEC systemd's notify-reload services need.
std::string reloading_message();

class systemd_notifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID once.
  static systemd_notifier from_environment();

  bool enabled() const { return address_.has_value(); }
  // Best effort: false when not under systemd or the datagram could not be sent (the service
  // keeps running; systemd then reports the missing notification itself).
  bool send(std::string_view message) const;
  // Half of WATCHDOG_USEC when systemd asks this process for keep-alives (WatchdogSec=), else 0.
  std::chrono::microseconds watchdog_interval() const { return watchdog_; }

 private:
  std::optional<notify_address> address_;
  std::chrono::microseconds watchdog_{0};
};

}  // namespace ob::server
