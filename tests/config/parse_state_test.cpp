// The "state" extension: ledger path, Redis URL, timeout, on_failure, instances, prefix.
#include <gtest/gtest.h>

#include "config/parse_helpers.hpp"
#include "config/redacted.hpp"

namespace ob::config {
namespace {

using namespace ob::config::testing;

TEST(ConfigState, AbsentMeansInMemoryAndNoLedger) {
  auto r = parse_text(doc());
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_FALSE(r.cfg->state.enabled);
  EXPECT_FALSE(r.cfg->state.redis);
}

TEST(ConfigState, DefaultsWhenPresent) {
  auto r = parse_text(doc(R"("state":{})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  const auto& s = r.cfg->state;
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.path, "openbridge-state.db");
  EXPECT_FALSE(s.redis);
  EXPECT_EQ(s.timeout, millis(50));
  EXPECT_EQ(s.on_failure, state_config::failure::local);
  EXPECT_EQ(s.instances, 1u);
  EXPECT_EQ(s.prefix, "ob:");
}

TEST(ConfigState, EveryKey) {
  auto r = parse_text(
      doc(R"("state":{"path":"/var/lib/ob/state.db","redis":"${REDIS_URL}","timeout":"20ms",)"
          R"("on_failure":"deny","instances":3,"prefix":"gw1:"})"),
      fake_env({{"REDIS_URL", "redis://:pw@10.0.0.5:6380/2"}}));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  const auto& s = r.cfg->state;
  EXPECT_EQ(s.path, "/var/lib/ob/state.db");
  ASSERT_TRUE(s.redis);
  EXPECT_EQ(s.redis->host, "10.0.0.5");
  EXPECT_EQ(s.redis->port, 6380);
  EXPECT_EQ(s.redis->password, "pw");
  EXPECT_EQ(s.redis->db, 2);
  EXPECT_EQ(s.timeout, millis(20));
  EXPECT_EQ(s.on_failure, state_config::failure::deny);
  EXPECT_EQ(s.instances, 3u);
  EXPECT_EQ(s.prefix, "gw1:");
  // The redacted config never shows the password.
  std::string red = redacted_json(*r.cfg);
  EXPECT_EQ(red.find("pw@"), std::string::npos) << red;
  EXPECT_NE(red.find("redis://:[redacted]@10.0.0.5:6380/2"), std::string::npos) << red;
}

TEST(ConfigState, Timeouts) {
  for (auto [text, ms] : {std::pair{R"("50ms")", 50},
                          {R"("1s")", 1000},
                          {R"("1.5s")", 1500},
                          {"0.25", 250},
                          {R"("60s")", 60000}}) {
    auto r = parse_text(doc(std::string(R"("state":{"timeout":)") + text + "}"));
    ASSERT_TRUE(r.ok()) << text << dump(r);
    EXPECT_EQ(r.cfg->state.timeout, millis(ms)) << text;
  }
}

TEST(ConfigState, LeaseTtl) {
  EXPECT_EQ(parse_text(doc(R"("state":{})")).cfg->state.lease_ttl, millis(30000));
  for (auto [text, ms] : {std::pair{R"("2s")", 2000}, {R"("1500ms")", 1500}, {"60", 60000}}) {
    auto r = parse_text(doc(std::string(R"("state":{"lease_ttl":)") + text + "}"));
    ASSERT_TRUE(r.ok()) << text << dump(r);
    EXPECT_EQ(r.cfg->state.lease_ttl, millis(ms)) << text;
  }
}

struct state_refusal {
  const char* name;
  const char* state;
  const char* path;
  const char* message;
};

TEST(ConfigState, Refusals) {
  const state_refusal rows[] = {
      {"not an object", R"("redis://h")", "state", "an object"},
      {"bad scheme", R"({"redis":"http://h:1"})", "state.redis", "redis://"},
      {"bad port", R"({"redis":"redis://h:99999"})", "state.redis", "port"},
      {"bad db", R"({"redis":"redis://h:1/x"})", "state.redis", "database"},
      {"timeout unit", R"({"timeout":"50"})", "state.timeout", "duration"},
      {"timeout minutes", R"({"timeout":"1m"})", "state.timeout", "duration"},
      {"timeout zero", R"({"timeout":"0ms"})", "state.timeout", "between"},
      {"timeout long", R"({"timeout":"61s"})", "state.timeout", "between"},
      {"timeout type", R"({"timeout":true})", "state.timeout", "duration"},
      {"lease_ttl short", R"({"lease_ttl":"500ms"})", "state.lease_ttl", "between 1s and 1h"},
      {"lease_ttl unit", R"({"lease_ttl":"2m"})", "state.lease_ttl", "duration"},
      {"on_failure", R"({"on_failure":"open"})", "state.on_failure", "\"local\" or \"deny\""},
      {"instances zero", R"({"instances":0})", "state.instances", ""},
      {"instances text", R"({"instances":"2"})", "state.instances", ""},
      {"prefix brace", R"({"prefix":"a{b"})", "state.prefix", "hash tags"},
      {"prefix space", R"({"prefix":"a b"})", "state.prefix", "spaces"},
      {"path type", R"({"path":1})", "state.path", ""},
      {"missing env", R"({"redis":"${NOPE}"})", "state.redis", "not set"},
      {"cluster type", R"({"cluster":"yes"})", "state.cluster", "boolean"},
      {"cluster db", R"({"redis":"redis://h:1/2","cluster":true})", "state.redis", "database 0"},
  };
  for (const state_refusal& row : rows) {
    auto r = parse_text(doc(std::string(R"("state":)") + row.state));
    EXPECT_FALSE(r.ok()) << row.name;
    EXPECT_TRUE(has_error(r, row.path, row.message)) << row.name << "\n" << dump(r);
  }
  auto w = parse_text(doc(R"("state":{"ttl":1})"));
  EXPECT_TRUE(w.ok());
  EXPECT_TRUE(has_warning(w, "state.ttl", "unknown key")) << dump(w);
}

TEST(ConfigState, ClusterPutsEveryKeyUnderOneHashTag) {
  auto r = parse_text(doc(R"("state":{"redis":"redis://10.0.0.5:7000","cluster":true})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  EXPECT_TRUE(r.cfg->state.cluster);
  EXPECT_NE(redacted_json(*r.cfg).find("\"cluster\":true"), std::string::npos);
  auto off = parse_text(doc(R"("state":{"redis":"redis://10.0.0.5:7000/3"})"));
  ASSERT_TRUE(off.ok()) << dump(off);
  EXPECT_FALSE(off.cfg->state.cluster);
  // Without Redis it does nothing: said, not refused.
  auto alone = parse_text(doc(R"("state":{"cluster":true})"));
  ASSERT_TRUE(alone.ok()) << dump(alone);
  EXPECT_TRUE(has_warning(alone, "state.cluster", "without state.redis")) << dump(alone);
}

}  // namespace
}  // namespace ob::config
