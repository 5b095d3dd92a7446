#include "server/systemd_notify.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace ob::server {
namespace {

TEST(SystemdNotify, ParsesPathAndAbstractNames) {
  auto p = parse_notify_socket("/run/systemd/notify");
  ASSERT_TRUE(p);
  EXPECT_STREQ(p->addr.sun_path, "/run/systemd/notify");
  EXPECT_EQ(p->len, offsetof(sockaddr_un, sun_path) + 20);  // with the NUL

  auto a = parse_notify_socket("@ob-notify");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->addr.sun_path[0], '\0');
  EXPECT_EQ(std::string(a->addr.sun_path + 1, 9), "ob-notify");
  EXPECT_EQ(a->len, offsetof(sockaddr_un, sun_path) + 10);  // no NUL after an abstract name
}

TEST(SystemdNotify, RefusesUnusableNames) {
  EXPECT_FALSE(parse_notify_socket(""));
  EXPECT_FALSE(parse_notify_socket("@"));
  EXPECT_FALSE(parse_notify_socket("relative/notify"));
  EXPECT_FALSE(parse_notify_socket("/" + std::string(200, 'x')));
}

TEST(SystemdNotify, ReloadingCarriesTheMonotonicClock) {
  auto m = reloading_message();
  EXPECT_EQ(m.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << m;
  EXPECT_GT(std::stoull(m.substr(m.find('=', 12) + 1)), 0ull);
}

// The datagram reaches a socket bound where NOTIFY_SOCKET points, as systemd's would.
TEST(SystemdNotify, SendsOneDatagramPerMessage) {
  std::string name = "@ob-notify-test-" + std::to_string(getpid());
  auto addr = parse_notify_socket(name);
  ASSERT_TRUE(addr);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr->addr), addr->len), 0);

  ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "4000000", 1);
  ::unsetenv("WATCHDOG_PID");
  auto n = systemd_notifier::from_environment();
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(n.enabled());
  EXPECT_EQ(n.watchdog_interval().count(), 2000000);
  ASSERT_TRUE(n.send("READY=1\nSTATUS=serving"));
  char buf[256];
  auto got = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  ::close(fd);
  ASSERT_GT(got, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(got)), "READY=1\nSTATUS=serving");
}

TEST(SystemdNotify, NoSocketNoMessagesNoWatchdog) {
  ::unsetenv("NOTIFY_SOCKET");
  ::setenv("WATCHDOG_USEC", "4000000", 1);
  auto n = systemd_notifier::from_environment();
  ::unsetenv("WATCHDOG_USEC");
  EXPECT_FALSE(n.enabled());
  EXPECT_FALSE(n.send("READY=1"));
  EXPECT_EQ(n.watchdog_interval().count(), 0);
}

}  // namespace
}  // namespace ob::server
