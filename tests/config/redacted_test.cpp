// The admin API's view of the config: complete, and never a secret.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "config/parse_helpers.hpp"
#include "config/redacted.hpp"

namespace ob::config {
namespace {

using namespace ob::config::testing;

TEST(RedactedConfig, ShowsSettingsButNoSecret) {
  auto r = parse_text(
      R"({"providers":[{"group":"fast","name":"m1","base":"https://a.example.com/openai",
          "key":"sk-provider-secret-1","timeouts":{"first_byte":2}},
          {"group":"fast","name":"m2","base":"http://127.0.0.1:9","key":""}],
          "security":["client-secret-1","${TOK}"],
          "admin":{"listen":"127.0.0.1:9999","token":"admin-secret-1"},
          "groups":{"fast":{"policy":"least_inflight"}},
          "log":{"format":"json","level":"warn","access":"errors"},
          "headers":{"server_timing":false,"request_id":false}})",
      fake_env({{"TOK", "client-secret-from-env"}}));
  ASSERT_TRUE(r.ok()) << dump(r);
  auto text = redacted_json(*r.cfg);
  for (auto secret : {"sk-provider-secret-1", "client-secret-1", "client-secret-from-env",
                      "admin-secret-1", "secret"})
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in " << text;
  auto v = boost::json::parse(text).as_object();
  auto& ps = v["providers"].as_array();
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].at("key"), "[redacted]");
  EXPECT_EQ(ps[1].at("key"), "");  // no key configured: visible as such
  EXPECT_EQ(ps[0].at("base"), "https://a.example.com/openai");
  EXPECT_EQ(ps[0].at("timeouts").at("first_byte"), 2.0);
  EXPECT_EQ(v["security"].as_array().size(), 2u);
  EXPECT_EQ(v["security"].as_array()[1], "[redacted]");
  EXPECT_EQ(v["admin"].at("token"), "[redacted]");
  EXPECT_EQ(v["admin"].at("listen"), "127.0.0.1:9999");
  EXPECT_EQ(v["groups"].at("fast").at("policy"), "least_inflight");
  EXPECT_EQ(v["timeouts"].at("keepalive"), 75.0);  // defaults are shown too
  EXPECT_EQ(v["log"].at("format"), "json");
  EXPECT_EQ(v["log"].at("level"), "warn");
  EXPECT_EQ(v["log"].at("access"), "errors");
  EXPECT_FALSE(v["log"].as_object().contains("file"));  // stderr
  EXPECT_EQ(v["headers"].at("expose_routing"), true);
  EXPECT_EQ(v["headers"].at("server_timing"), false);
  EXPECT_EQ(v["headers"].at("request_id"), false);
}

}  // namespace
}  // namespace ob::config

namespace ob::config {
namespace {

TEST(RedactedConfig, KeysShowNamesAndLimitsButNoTokenNorDigest) {
  const std::string digest(64, 'c');
  auto r = testing::parse_text(
      R"({"providers":[{"group":"g","name":"m","base":"http://h","price":{"input":2,"output":8}}],
          "keys":[{"name":"team-a","token":"${TOK}","limits":{"rpm":5},"budget":{"usd":1.5},
                   "labels":{"owner":"x"}},
                  {"name":"team-b","token_sha256":")" +
          digest + R"("}]})",
      testing::fake_env({{"TOK", "client-key-secret-9"}}));
  ASSERT_TRUE(r.ok()) << testing::dump(r);
  auto text = redacted_json(*r.cfg);
  EXPECT_EQ(text.find("client-key-secret-9"), std::string::npos) << text;
  EXPECT_EQ(text.find("cccccccc"), std::string::npos) << text;
  auto v = boost::json::parse(text).as_object();
  auto& ks = v["keys"].as_array();
  ASSERT_EQ(ks.size(), 2u);
  EXPECT_EQ(ks[0].at("name"), "team-a");
  EXPECT_EQ(ks[0].at("token"), "[redacted]");
  EXPECT_EQ(ks[0].at("limits").at("rpm"), 5u);
  EXPECT_EQ(ks[0].at("budget").at("usd"), 1.5);
  EXPECT_EQ(ks[1].at("token"), "[redacted]");
  EXPECT_EQ(v["providers"].as_array()[0].at("price").at("output"), 8.0);
}

}  // namespace
}  // namespace ob::config
