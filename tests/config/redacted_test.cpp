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
          "groups":{"fast":{"policy":"least_inflight"}}})",
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
}

}  // namespace
}  // namespace ob::config
