#include "server/systemd_notify.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace ob::server {

std::optional<notify_address> parse_notify_socket(std::string_view value) {
  notify_address a;
  a.addr.sun_family = AF_UNIX;
  const bool abstract = !value.empty() && value.front() == '@';
  if (value.size() < 2 || (!abstract && value.front() != '/')) return std::nullopt;
  if (value.size() >= sizeof(a.addr.sun_path)) return std::nullopt;  // path needs its NUL
  std::memcpy(a.addr.sun_path, value.data(), value.size());
  if (abstract) a.addr.sun_path[0] = '\0';
  a.len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + value.size() + (abstract ? 0 : 1));
  return a;
}

std::string reloading_message() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ull +
                    static_cast<unsigned long long>(ts.tv_nsec) / 1000ull;
  return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
}

namespace {

// A positive integer environment variable, or nothing.
std::optional<unsigned long long> env_number(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  unsigned long long n = 0;
  const char* end = v + std::strlen(v);
  auto [p, ec] = std::from_chars(v, end, n);
  if (ec != std::errc() || p != end || n == 0) return std::nullopt;
  return n;
}

}  // namespace

systemd_notifier systemd_notifier::from_environment() {
  systemd_notifier n;
  if (const char* s = std::getenv("NOTIFY_SOCKET")) n.address_ = parse_notify_socket(s);
  // WATCHDOG_PID, when set, names the process the keep-alives are expected from.
  auto pid = env_number("WATCHDOG_PID");
  auto usec = env_number("WATCHDOG_USEC");
  if (n.address_ && usec && (!pid || *pid == static_cast<unsigned long long>(getpid())))
    n.watchdog_ = std::chrono::microseconds(*usec / 2);
  return n;
}

bool systemd_notifier::send(std::string_view message) const {
  if (!address_) return false;
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ssize_t sent;
  do {
    sent = ::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&address_->addr), address_->len);
  } while (sent < 0 && errno == EINTR);
  ::close(fd);
  return sent == static_cast<ssize_t>(message.size());
}

}  // namespace ob::server
