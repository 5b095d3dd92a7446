// Config: the "tls" listener extension.
#include <gtest/gtest.h>

#include "config/parse_helpers.hpp"

namespace ob::config {
namespace {

using namespace ob::config::testing;

TEST(ConfigTls, OffByDefault) {
  auto r = parse_text(doc());
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_FALSE(r.cfg->tls.enabled);
  EXPECT_FALSE(r.cfg->listen_set);
}

TEST(ConfigTls, AllKeys) {
  auto r = parse_text(doc(R"("tls": {"listen": "127.0.0.1:9443", "cert": "/c.pem",
                              "key": "/k.pem", "client_ca": "/ca.pem"})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.cfg->tls.enabled);
  EXPECT_EQ(r.cfg->tls.listen, "127.0.0.1:9443");
  EXPECT_EQ(r.cfg->tls.cert, "/c.pem");
  EXPECT_EQ(r.cfg->tls.key, "/k.pem");
  EXPECT_EQ(r.cfg->tls.client_ca, "/ca.pem");
}

TEST(ConfigTls, DefaultsAndListenSet) {
  auto r = parse_text(doc(R"("tls": {"cert": "c.pem", "key": "k.pem"})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->tls.listen, "0.0.0.0:8443");
  EXPECT_EQ(r.cfg->tls.client_ca, "");
  EXPECT_FALSE(r.cfg->listen_set);  // only the TLS listener opens
  auto both = parse_text(doc(R"("listen": ":8080", "tls": {"cert": "c.pem", "key": "k.pem"})"));
  ASSERT_TRUE(both.ok()) << dump(both);
  EXPECT_TRUE(both.cfg->listen_set);
}

TEST(ConfigTls, BadValuesNameTheirKey) {
  EXPECT_TRUE(has_error(parse_text(doc(R"("tls": true)")), "tls", "an object"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("tls": {"key": "k.pem"})")), "tls.cert", "required"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("tls": {"cert": "c.pem"})")), "tls.key", "required"));
  EXPECT_TRUE(
      has_error(parse_text(doc(R"("tls": {"cert": "", "key": "k"})")), "tls.cert", "not empty"));
  EXPECT_TRUE(
      has_error(parse_text(doc(R"("tls": {"cert": "c", "key": 3})")), "tls.key", "a string"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("tls": {"cert": "c", "key": "k", "client_ca": ""})")),
                        "tls.client_ca", "not empty"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("tls": {"cert": "c\nx", "key": "k"})")), "tls.cert",
                        "control characters"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("tls": {"cert": "c", "key": "k", "listen": "nope"})")),
                        "tls.listen"));
  EXPECT_TRUE(has_warning(parse_text(doc(R"("tls": {"cert": "c", "key": "k", "ciphers": "x"})")),
                          "tls.ciphers", "unknown key"));
}

TEST(ConfigTls, Http2OnByDefaultAndItsLimits) {
  auto r = parse_text(doc(R"("tls": {"cert": "c.pem", "key": "k.pem"})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.cfg->tls.http2);
  EXPECT_EQ(r.cfg->tls.http2_max_concurrent_streams, 100u);
  auto off = parse_text(doc(
      R"("tls": {"cert": "c.pem", "key": "k.pem", "http2": false, "http2_max_concurrent_streams": 8})"));
  ASSERT_TRUE(off.ok()) << dump(off);
  EXPECT_FALSE(off.cfg->tls.http2);
  EXPECT_EQ(off.cfg->tls.http2_max_concurrent_streams, 8u);
  EXPECT_TRUE(has_error(parse_text(doc(R"("tls": {"cert": "c", "key": "k", "http2": "yes"})")),
                        "tls.http2", "a boolean"));
  EXPECT_TRUE(has_error(
      parse_text(doc(R"("tls": {"cert": "c", "key": "k", "http2_max_concurrent_streams": 0})")),
      "tls.http2_max_concurrent_streams"));
}

TEST(ConfigTls, Http2ConnectionBodyBudget) {
  auto r = parse_text(doc(R"("tls": {"cert": "c.pem", "key": "k.pem"})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->tls.http2_connection_body_bytes, 64u * 1024 * 1024);
  auto set = parse_text(
      doc(R"("tls": {"cert": "c.pem", "key": "k.pem", "http2_connection_body_bytes": 1048576})"));
  ASSERT_TRUE(set.ok()) << dump(set);
  EXPECT_EQ(set.cfg->tls.http2_connection_body_bytes, 1048576u);
  EXPECT_TRUE(has_error(
      parse_text(doc(R"("tls": {"cert": "c", "key": "k", "http2_connection_body_bytes": 10})")),
      "tls.http2_connection_body_bytes"));
}

}  // namespace
}  // namespace ob::config
