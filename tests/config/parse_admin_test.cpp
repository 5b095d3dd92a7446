// Config: the admin listener and metrics extensions.
#include <gtest/gtest.h>

#include "config/parse_helpers.hpp"

namespace ob::config {
namespace {

using namespace ob::config::testing;

TEST(ConfigAdmin, DefaultsToLoopbackWithoutToken) {
  auto r = parse_text(doc());
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.cfg->admin.enabled);
  EXPECT_EQ(r.cfg->admin.listen, "127.0.0.1:9901");
  EXPECT_EQ(r.cfg->admin.token, "");
  EXPECT_EQ(r.cfg->metrics.max_clients, 1000u);
  EXPECT_TRUE(r.cfg->metrics.stream_usage);
}

TEST(ConfigAdmin, FalseTurnsItOff) {
  auto r = parse_text(doc(R"("admin": false)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_FALSE(r.cfg->admin.enabled);
  auto on = parse_text(doc(R"("admin": true)"));
  ASSERT_TRUE(on.ok());
  EXPECT_TRUE(on.cfg->admin.enabled);
}

TEST(ConfigAdmin, ListenAndTokenFromEnvironment) {
  auto r = parse_text(doc(R"("admin": {"listen": "0.0.0.0:9901", "token": "${ADMIN_TOKEN}"})"),
                      fake_env({{"ADMIN_TOKEN", "s3cret"}}));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->admin.listen, "0.0.0.0:9901");
  EXPECT_EQ(r.cfg->admin.token, "s3cret");
}

TEST(ConfigAdmin, NonLoopbackWithoutTokenIsRefused) {
  for (auto listen : {"0.0.0.0:9901", ":9901", "*:9901", "[::]:9901", "10.0.0.1:9901",
                      "admin.example.com:9901", "127.example.com:9901"}) {
    auto r = parse_text(doc(std::string(R"("admin": {"listen": ")") + listen + "\"}"));
    EXPECT_FALSE(r.ok()) << listen;
    EXPECT_TRUE(has_error(r, "admin.listen", "not a loopback address")) << listen << dump(r);
  }
  for (auto listen : {"127.0.0.1:9901", "127.1.2.3:1", "[::1]:9901", "localhost:9901"}) {
    auto r = parse_text(doc(std::string(R"("admin": {"listen": ")") + listen + "\"}"));
    EXPECT_TRUE(r.ok()) << listen << dump(r);
  }
}

TEST(ConfigAdmin, BadValuesNameTheirPath) {
  EXPECT_TRUE(has_error(parse_text(doc(R"("admin": "yes")")), "admin", "an object or false"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("admin": {"listen": "nope"})")), "admin.listen"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("admin": {"token": ""})")), "admin.token", "empty"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("admin": {"token": "a\nb"})")), "admin.token",
                        "control characters"));
  EXPECT_TRUE(
      has_error(parse_text(doc(R"("admin": {"token": "${UNSET_X}"})")), "admin.token", "not set"));
  EXPECT_TRUE(
      has_warning(parse_text(doc(R"("admin": {"lisen": "x"})")), "admin.lisen", "unknown key"));
}

TEST(ConfigMetrics, Keys) {
  auto r = parse_text(doc(R"("metrics": {"max_clients": 5, "stream_usage": false})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->metrics.max_clients, 5u);
  EXPECT_FALSE(r.cfg->metrics.stream_usage);
  EXPECT_TRUE(
      has_error(parse_text(doc(R"("metrics": {"max_clients": 0})")), "metrics.max_clients"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("metrics": {"stream_usage": "yes"})")),
                        "metrics.stream_usage", "a boolean"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("metrics": 3)")), "metrics", "an object"));
}

}  // namespace
}  // namespace ob::config
