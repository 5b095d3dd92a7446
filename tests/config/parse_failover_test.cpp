// Config parsing of the failover and health keys: per-provider "timeouts" and "health_check",
// "groups", "health" and "retry" — defaults, every value read, every rule with its exact path.
#include <gtest/gtest.h>

#include "config/parse_helpers.hpp"

namespace ob::config {
namespace {

using namespace ob::config::testing;
using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr std::string_view base_provider =
    R"("group":"fast","name":"m","base":"https://api.example.com","key":"k")";

// `doc` with one provider carrying extra members.
std::string with_provider(std::string_view members, std::string_view extra = "") {
  return doc(extra, std::string(base_provider) + "," + std::string(members));
}

// Every new key set to a value other than its default.
constexpr std::string_view full_file = R"({
  "providers": [
    {"group": "fast", "name": "m", "base": "https://x", "key": "k", "weight": 3,
     "timeouts": {"connect": 2, "first_byte": 30, "idle": 60, "total": 600, "pool_idle": 4},
     "health_check": {"interval": 10, "timeout": 5, "path": "/v1/models"}},
    {"group": "fast", "name": "n", "base": "http://127.0.0.1:11434", "key": ""},
    {"group": "smart", "name": "o", "base": "https://y", "key": "k2"}
  ],
  "groups": {"fast": {"policy": "least_inflight", "attempts": 2},
             "smart": {"policy": "latency"}},
  "health": {"consecutive_failures": 7, "error_ratio": 0.25, "min_requests": 40, "window": 60,
             "base_ejection": 2.5, "max_ejection": 120},
  "retry": {"budget_ratio": 0.5, "budget_min_per_second": 10},
  "security": ["t"]
})";

// ---- defaults ---------------------------------------------------------------------------------

TEST(ConfigFailover, DefaultsWhenAbsent) {
  auto r = parse_text(doc());
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(r.diagnostics, IsEmpty());
  const auto& c = *r.cfg;
  const auto& p = c.providers[0];
  EXPECT_FALSE(p.timeouts.connect);
  EXPECT_FALSE(p.timeouts.first_byte);
  EXPECT_FALSE(p.timeouts.idle);
  EXPECT_FALSE(p.timeouts.total);
  EXPECT_FALSE(p.timeouts.pool_idle);
  EXPECT_FALSE(p.health_check.enabled);
  EXPECT_EQ(p.health_check.interval, 10s);
  EXPECT_EQ(p.health_check.timeout, 5s);
  EXPECT_EQ(p.health_check.path, "/v1/models");
  EXPECT_THAT(c.groups, IsEmpty());
  EXPECT_EQ(c.health.consecutive_failures, 5);
  EXPECT_DOUBLE_EQ(c.health.error_ratio, 0.5);
  EXPECT_EQ(c.health.min_requests, 20);
  EXPECT_EQ(c.health.window, 30s);
  EXPECT_EQ(c.health.base_ejection, 5s);
  EXPECT_EQ(c.health.max_ejection, 300s);
  EXPECT_DOUBLE_EQ(c.retry.budget_ratio, 0.2);
  EXPECT_DOUBLE_EQ(c.retry.budget_min_per_second, 3.0);
}

TEST(ConfigFailover, OldFileStillLoadsWithoutDiagnostics) {
  constexpr std::string_view old_file = R"({
    "providers": [
        {
            "group": "fast",
            "name": "gpt-4o-mini",
            "base": "https://api.openai.com",
            "key": "sk-abcdefghijklmnopqrstuvwxyz"
        }
    ],
    "security": [
        "sk-abcdefghijklmnopqrstuvwxyz"
    ]
})";
  auto r = parse_text(old_file);
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(r.diagnostics, IsEmpty());
  EXPECT_FALSE(r.cfg->providers[0].health_check.enabled);
  EXPECT_THAT(r.cfg->groups, IsEmpty());
}

TEST(ConfigFailover, EmptyObjectsKeepTheDefaults) {
  auto r = parse_text(with_provider(R"("timeouts":{})", R"("groups":{},"health":{},"retry":{})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(r.diagnostics, IsEmpty());
  EXPECT_FALSE(r.cfg->providers[0].timeouts.connect);
  EXPECT_THAT(r.cfg->groups, IsEmpty());
  EXPECT_EQ(r.cfg->health.max_ejection, 300s);
  EXPECT_DOUBLE_EQ(r.cfg->retry.budget_ratio, 0.2);
}

// ---- every key read ---------------------------------------------------------------------------

TEST(ConfigFailover, FullFileReadsEveryKey) {
  auto r = parse_text(full_file);
  ASSERT_TRUE(r.ok()) << dump(r);
  // The only diagnostic: the local provider's deliberate empty key.
  EXPECT_THAT(warnings(r), ElementsAre("warning: providers[1].key: empty: requests to this "
                                       "provider carry no Authorization header"));
  const auto& c = *r.cfg;
  ASSERT_EQ(c.providers.size(), 3u);
  const auto& p = c.providers[0];
  EXPECT_EQ(p.weight, 3u);
  EXPECT_EQ(p.timeouts.connect, 2s);
  EXPECT_EQ(p.timeouts.first_byte, 30s);
  EXPECT_EQ(p.timeouts.idle, 60s);
  EXPECT_EQ(p.timeouts.total, 600s);
  EXPECT_EQ(p.timeouts.pool_idle, 4s);
  EXPECT_TRUE(p.health_check.enabled);
  EXPECT_EQ(p.health_check.interval, 10s);
  EXPECT_EQ(p.health_check.timeout, 5s);
  EXPECT_EQ(p.health_check.path, "/v1/models");
  EXPECT_FALSE(c.providers[1].health_check.enabled);
  EXPECT_FALSE(c.providers[1].timeouts.connect);

  ASSERT_EQ(c.groups.size(), 2u);
  EXPECT_EQ(c.groups.at("fast").policy, "least_inflight");
  EXPECT_EQ(c.groups.at("fast").attempts, 2u);
  EXPECT_EQ(c.groups.at("smart").policy, "latency");
  EXPECT_EQ(c.groups.at("smart").attempts, 0u);

  EXPECT_EQ(c.health.consecutive_failures, 7);
  EXPECT_DOUBLE_EQ(c.health.error_ratio, 0.25);
  EXPECT_EQ(c.health.min_requests, 40);
  EXPECT_EQ(c.health.window, 60s);
  EXPECT_EQ(c.health.base_ejection, 2500ms);
  EXPECT_EQ(c.health.max_ejection, 120s);
  EXPECT_DOUBLE_EQ(c.retry.budget_ratio, 0.5);
  EXPECT_DOUBLE_EQ(c.retry.budget_min_per_second, 10.0);
}

TEST(ConfigFailover, BriefExampleLoadsWithoutDiagnostics) {
  auto r = parse_text(R"({
  "providers": [
    {"group": "fast", "name": "m", "base": "https://x", "key": "k", "weight": 3,
     "timeouts": {"connect": 2, "first_byte": 30, "idle": 60, "total": 600},
     "health_check": {"interval": 10, "timeout": 5, "path": "/v1/models"}}
  ],
  "groups": {"fast": {"policy": "least_inflight", "attempts": 2}},
  "health": {"consecutive_failures": 5, "error_ratio": 0.5, "min_requests": 20, "window": 30,
             "base_ejection": 5, "max_ejection": 300},
  "retry": {"budget_ratio": 0.2, "budget_min_per_second": 3},
  "security": ["t"]
})");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(r.diagnostics, IsEmpty());
}

// "A full example" of docs/CONFIGURATION.md, verbatim.
TEST(ConfigFailover, DocumentedFullExampleLoads) {
  constexpr std::string_view text = R"({
  "listen": "0.0.0.0:8080",
  "workers": 0,
  "providers": [
    {"group": "fast", "name": "gpt-4o-mini", "base": "https://api.openai.com",
     "key": "${OPENAI_API_KEY}", "weight": 3,
     "timeouts": {"connect": 5, "first_byte": 60}},
    {"group": "fast", "name": "llama3.1:8b", "base": "http://127.0.0.1:11434/v1", "key": "",
     "health_check": {"interval": 10, "timeout": 5, "path": "/models"}}
  ],
  "security": ["${OPENBRIDGE_CLIENT_TOKEN}"],
  "limits": {"max_header_bytes": 65536, "max_body_bytes": 67108864,
             "max_response_bytes": 268435456},
  "timeouts": {"connect": 10, "first_byte": 300, "idle": 120, "total": 900,
               "client_header": 30, "client_body": 120, "client_body_total": 300,
               "keepalive": 75, "shutdown_grace": 30},
  "groups": {"fast": {"policy": "weighted", "attempts": 2}},
  "health": {"consecutive_failures": 5, "error_ratio": 0.5, "min_requests": 20, "window": 30,
             "base_ejection": 5, "max_ejection": 300},
  "retry": {"budget_ratio": 0.2, "budget_min_per_second": 3}
})";
  auto r = parse_text(
      text, fake_env({{"OPENAI_API_KEY", "sk-o"}, {"OPENBRIDGE_CLIENT_TOKEN", "client"}}));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(warnings(r), ElementsAre("warning: providers[1].key: empty: requests to this "
                                       "provider carry no Authorization header"));
  const auto& c = *r.cfg;
  EXPECT_EQ(c.providers[0].timeouts.connect, 5s);
  EXPECT_EQ(c.providers[0].timeouts.first_byte, 60s);
  EXPECT_FALSE(c.providers[0].timeouts.idle);
  EXPECT_FALSE(c.providers[0].health_check.enabled);
  EXPECT_TRUE(c.providers[1].health_check.enabled);
  EXPECT_EQ(c.providers[1].health_check.path, "/models");
  EXPECT_EQ(c.groups.at("fast").policy, "weighted");
  EXPECT_EQ(c.groups.at("fast").attempts, 2u);
  const config defaults;
  EXPECT_EQ(c.health.consecutive_failures, defaults.health.consecutive_failures);
  EXPECT_DOUBLE_EQ(c.health.error_ratio, defaults.health.error_ratio);
  EXPECT_EQ(c.health.min_requests, defaults.health.min_requests);
  EXPECT_EQ(c.health.window, defaults.health.window);
  EXPECT_EQ(c.health.base_ejection, defaults.health.base_ejection);
  EXPECT_EQ(c.health.max_ejection, defaults.health.max_ejection);
  EXPECT_DOUBLE_EQ(c.retry.budget_ratio, defaults.retry.budget_ratio);
  EXPECT_DOUBLE_EQ(c.retry.budget_min_per_second, defaults.retry.budget_min_per_second);
}

// ---- provider "timeouts" ----------------------------------------------------------------------

TEST(ConfigFailover, ProviderTimeoutsSubsetAndFractions) {
  auto r = parse_text(with_provider(R"("timeouts":{"first_byte":0.0001,"idle":1.5})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  const auto& t = r.cfg->providers[0].timeouts;
  EXPECT_FALSE(t.connect);
  EXPECT_EQ(t.first_byte, 1ms);  // rounded up, never 0
  EXPECT_EQ(t.idle, 1500ms);
  EXPECT_FALSE(t.total);
}

TEST(ConfigFailover, ProviderTimeoutsRules) {
  auto r = parse_text(
      with_provider(R"("timeouts":{"connect":0,"first_byte":-1,"idle":604801,"total":"10"})"));
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(errors(r),
              ElementsAre("providers[0].timeouts.connect: must be > 0 and <= 604800 seconds, "
                          "got 0",
                          "providers[0].timeouts.first_byte: must be > 0 and <= 604800 "
                          "seconds, got -1",
                          "providers[0].timeouts.idle: must be > 0 and <= 604800 seconds, got "
                          "604801",
                          "providers[0].timeouts.total: must be a number of seconds, got a "
                          "string"));
  r = parse_text(with_provider(R"("timeouts":604800)"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].timeouts: must be an object, got a number"));
}

TEST(ConfigFailover, ProviderTimeoutsUnknownKeysWarn) {
  // Client-side and shutdown timeouts are global only.
  auto r = parse_text(with_provider(R"("timeouts":{"client_header":5,"conect":1,"total":9})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(warnings(r), ElementsAre("warning: providers[0].timeouts.client_header: unknown "
                                       "key (ignored)",
                                       "warning: providers[0].timeouts.conect: unknown key "
                                       "(ignored)"));
  EXPECT_EQ(r.cfg->providers[0].timeouts.total, 9s);
}

TEST(ConfigFailover, ProviderTimeoutsDuplicateKeyWarns) {
  auto r = parse_text(with_provider(R"("timeouts":{"idle":1,"idle":2})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(has_warning(r, "providers[0].timeouts.idle", "more than once")) << dump(r);
  EXPECT_EQ(r.cfg->providers[0].timeouts.idle, 2s);
}

// ---- provider "health_check" ------------------------------------------------------------------

TEST(ConfigFailover, HealthCheckTrueUsesDefaults) {
  auto r = parse_text(with_provider(R"("health_check":true)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(r.diagnostics, IsEmpty());
  const auto& h = r.cfg->providers[0].health_check;
  EXPECT_TRUE(h.enabled);
  EXPECT_EQ(h.interval, 10s);
  EXPECT_EQ(h.timeout, 5s);
  EXPECT_EQ(h.path, "/v1/models");
}

TEST(ConfigFailover, HealthCheckFalseLeavesItOff) {
  auto r = parse_text(with_provider(R"("health_check":false)"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(r.diagnostics, IsEmpty());
  EXPECT_FALSE(r.cfg->providers[0].health_check.enabled);
}

TEST(ConfigFailover, HealthCheckObjectTurnsItOn) {
  auto r = parse_text(with_provider(R"("health_check":{})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.cfg->providers[0].health_check.enabled);
  EXPECT_EQ(r.cfg->providers[0].health_check.interval, 10s);
  EXPECT_EQ(r.cfg->providers[0].health_check.timeout, 5s);

  r = parse_text(
      with_provider(R"("health_check":{"interval":30,"timeout":2.5,"path":"/health?deep=1"})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(r.diagnostics, IsEmpty());
  const auto& h = r.cfg->providers[0].health_check;
  EXPECT_TRUE(h.enabled);
  EXPECT_EQ(h.interval, 30s);
  EXPECT_EQ(h.timeout, 2500ms);
  EXPECT_EQ(h.path, "/health?deep=1");
}

TEST(ConfigFailover, HealthCheckEnabledFalseInsideTheObjectTurnsItOff) {
  auto r = parse_text(with_provider(R"("health_check":{"enabled":false,"interval":30})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(r.diagnostics, IsEmpty());
  EXPECT_FALSE(r.cfg->providers[0].health_check.enabled);
  EXPECT_EQ(r.cfg->providers[0].health_check.interval, 30s);
  r = parse_text(with_provider(R"("health_check":{"enabled":"no"})"));
  EXPECT_THAT(errors(r),
              ElementsAre("providers[0].health_check.enabled: must be a boolean, got a string"));
}

TEST(ConfigFailover, HealthCheckDefaultTimeoutStaysBelowAShortInterval) {
  auto r = parse_text(with_provider(R"("health_check":{"interval":4})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->providers[0].health_check.timeout, 2s);
  r = parse_text(with_provider(R"("health_check":{"interval":1})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->providers[0].health_check.timeout, 500ms);
  r = parse_text(with_provider(R"("health_check":{"interval":3600})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->providers[0].health_check.timeout, 5s);
}

TEST(ConfigFailover, HealthCheckIntervalRange) {
  auto r = parse_text(with_provider(R"("health_check":{"interval":1})"));
  EXPECT_TRUE(r.ok()) << dump(r);
  r = parse_text(with_provider(R"("health_check":{"interval":86400})"));
  EXPECT_TRUE(r.ok()) << dump(r);
  r = parse_text(with_provider(R"("health_check":{"interval":0.5})"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].health_check.interval: must be >= 1 and <= "
                                     "86400 seconds, got 5E-1"));
  r = parse_text(with_provider(R"("health_check":{"interval":86401})"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].health_check.interval: must be >= 1 and <= "
                                     "86400 seconds, got 86401"));
  r = parse_text(with_provider(R"("health_check":{"interval":"10"})"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].health_check.interval: must be a number, "
                                     "got a string"));
}

TEST(ConfigFailover, HealthCheckTimeoutRules) {
  auto r = parse_text(with_provider(R"("health_check":{"timeout":0})"));
  EXPECT_TRUE(has_error(r, "providers[0].health_check.timeout", "must be > 0")) << dump(r);
  r = parse_text(with_provider(R"("health_check":{"timeout":-2})"));
  EXPECT_TRUE(has_error(r, "providers[0].health_check.timeout", "must be > 0")) << dump(r);
  r = parse_text(with_provider(R"("health_check":{"timeout":null})"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].health_check.timeout: must be a number of "
                                     "seconds, got null"));
  // Not shorter than the interval (the default interval is 10 s).
  r = parse_text(with_provider(R"("health_check":{"timeout":10})"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].health_check.timeout: must be less than the "
                                     "interval (10 s), got 10 s"));
  r = parse_text(with_provider(R"("health_check":{"interval":2,"timeout":3})"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].health_check.timeout: must be less than the "
                                     "interval (2 s), got 3 s"));
  r = parse_text(with_provider(R"("health_check":{"interval":2,"timeout":1.999})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->providers[0].health_check.timeout, 1999ms);
  // An interval already refused is not compared again.
  r = parse_text(with_provider(R"("health_check":{"interval":0,"timeout":20})"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].health_check.interval: must be >= 1 and <= "
                                     "86400 seconds, got 0"));
}

TEST(ConfigFailover, HealthCheckPathRules) {
  for (auto bad : {R"("")", R"("v1/models")", R"("http://x/v1")"}) {
    auto r = parse_text(with_provider(std::string(R"("health_check":{"path":)") + bad + "}"));
    EXPECT_TRUE(has_error(r, "providers[0].health_check.path", "must start with \"/\"")) << bad;
  }
  for (auto bad : {R"("/v1 models")", R"("/v1\tmodels")", R"("/v1\r\nX: y")", R"("/a\u007f")"}) {
    auto r = parse_text(with_provider(std::string(R"("health_check":{"path":)") + bad + "}"));
    EXPECT_TRUE(has_error(r, "providers[0].health_check.path", "spaces or control characters"))
        << bad << "\n"
        << dump(r);
  }
  auto r = parse_text(with_provider(R"("health_check":{"path":7})"));
  EXPECT_THAT(errors(r),
              ElementsAre("providers[0].health_check.path: must be a string, got a number"));
}

TEST(ConfigFailover, HealthCheckTypeAndUnknownKeys) {
  auto r = parse_text(with_provider(R"("health_check":"on")"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].health_check: must be an object or a "
                                     "boolean, got a string"));
  r = parse_text(with_provider(R"("health_check":{"intervall":3})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(warnings(r),
              ElementsAre("warning: providers[0].health_check.intervall: unknown key (ignored)"));
}

// ---- "groups" ---------------------------------------------------------------------------------

TEST(ConfigFailover, GroupEveryPolicy) {
  for (auto policy : {"round_robin", "weighted", "least_inflight", "latency"}) {
    auto r = parse_text(doc(std::string(R"("groups":{"fast":{"policy":")") + policy + "\"}}"));
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_THAT(r.diagnostics, IsEmpty());
    EXPECT_EQ(r.cfg->groups.at("fast").policy, policy);
    EXPECT_EQ(r.cfg->groups.at("fast").attempts, 0u);
  }
}

TEST(ConfigFailover, GroupUnknownPolicyListsTheAllowedOnes) {
  constexpr std::string_view want =
      R"(groups.fast.policy: must be one of "round_robin", "weighted", "least_inflight", )"
      R"("latency", got )";
  auto r = parse_text(doc(R"("groups":{"fast":{"policy":"random"}})"));
  EXPECT_THAT(errors(r), ElementsAre(std::string(want) + R"("random")"));
  r = parse_text(doc(R"("groups":{"fast":{"policy":""}})"));
  EXPECT_THAT(errors(r), ElementsAre(std::string(want) + R"("")"));
  r = parse_text(doc(R"("groups":{"fast":{"policy":"Weighted"}})"));
  EXPECT_THAT(errors(r), ElementsAre(std::string(want) + R"("Weighted")"));
  r = parse_text(doc(R"("groups":{"fast":{"policy":1}})"));
  EXPECT_THAT(errors(r), ElementsAre("groups.fast.policy: must be a string, got a number"));
}

TEST(ConfigFailover, GroupAttempts) {
  for (auto [text, want] : {std::pair{"0", 0u}, {"1", 1u}, {"100", 100u}, {"3e0", 3u}}) {
    auto r = parse_text(doc(std::string(R"("groups":{"fast":{"attempts":)") + text + "}}"));
    ASSERT_TRUE(r.ok()) << text << dump(r);
    EXPECT_EQ(r.cfg->groups.at("fast").attempts, want);
    EXPECT_EQ(r.cfg->groups.at("fast").policy, "");
  }
  auto r = parse_text(doc(R"("groups":{"fast":{"attempts":101}})"));
  EXPECT_THAT(errors(r), ElementsAre("groups.fast.attempts: must be between 0 and 100, got 101"));
  r = parse_text(doc(R"("groups":{"fast":{"attempts":-1}})"));
  EXPECT_THAT(errors(r), ElementsAre("groups.fast.attempts: must be between 0 and 100, got -1"));
  r = parse_text(doc(R"("groups":{"fast":{"attempts":1.5}})"));
  EXPECT_THAT(errors(r), ElementsAre("groups.fast.attempts: must be an integer, got a number"));
  r = parse_text(doc(R"("groups":{"fast":{"attempts":"2"}})"));
  EXPECT_THAT(errors(r), ElementsAre("groups.fast.attempts: must be an integer, got a string"));
}

TEST(ConfigFailover, GroupNamingNoProviderGroupWarnsAndIsDropped) {
  auto r = parse_text(doc(R"("groups":{"fsat":{"policy":"latency"},"fast":{"attempts":2}})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(warnings(r),
              ElementsAre("warning: groups.fsat: no provider has this group (ignored)"));
  EXPECT_EQ(r.cfg->groups.size(), 1u);
  EXPECT_EQ(r.cfg->groups.at("fast").attempts, 2u);
}

TEST(ConfigFailover, GroupsBeforeProvidersInTheFileStillMatch) {
  auto r = parse_text(R"({"groups":{"fast":{"policy":"weighted"}},)"
                      R"("providers":[{"group":"fast","name":"m","base":"https://h","key":"k"}],)"
                      R"("security":["t"]})");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(r.diagnostics, IsEmpty());
  EXPECT_EQ(r.cfg->groups.at("fast").policy, "weighted");
}

TEST(ConfigFailover, GroupsShapeAndUnknownKeys) {
  auto r = parse_text(doc(R"("groups":["fast"])"));
  EXPECT_THAT(errors(r),
              ElementsAre("groups: must be an object of group name -> options, got an array"));
  r = parse_text(doc(R"("groups":{"fast":"latency"})"));
  EXPECT_THAT(errors(r), ElementsAre("groups.fast: must be an object, got a string"));
  r = parse_text(doc(R"("groups":{"fast":{"policy":"latency","retries":3}})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(warnings(r), ElementsAre("warning: groups.fast.retries: unknown key (ignored)"));
  r = parse_text(doc(R"("groups":{"fast":{"attempts":1},"fast":{"attempts":2}})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(has_warning(r, "groups.fast", "more than once")) << dump(r);
  EXPECT_EQ(r.cfg->groups.at("fast").attempts, 2u);
}

// ---- "health" ---------------------------------------------------------------------------------

TEST(ConfigFailover, HealthCounts) {
  auto r = parse_text(doc(R"("health":{"consecutive_failures":1,"min_requests":1000000})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->health.consecutive_failures, 1);
  EXPECT_EQ(r.cfg->health.min_requests, 1'000'000);
  r = parse_text(doc(R"("health":{"consecutive_failures":1000,"min_requests":1e6})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->health.consecutive_failures, 1000);
  r = parse_text(doc(R"("health":{"consecutive_failures":0,"min_requests":1000001})"));
  EXPECT_THAT(errors(r),
              ElementsAre("health.consecutive_failures: must be between 1 and 1000, got 0",
                          "health.min_requests: must be between 1 and 1000000, got 1000001"));
  r = parse_text(doc(R"("health":{"consecutive_failures":2.5,"min_requests":"20"})"));
  EXPECT_THAT(errors(r),
              ElementsAre("health.consecutive_failures: must be an integer, got a number",
                          "health.min_requests: must be an integer, got a string"));
}

TEST(ConfigFailover, HealthErrorRatio) {
  auto r = parse_text(doc(R"("health":{"error_ratio":1})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_DOUBLE_EQ(r.cfg->health.error_ratio, 1.0);
  r = parse_text(doc(R"("health":{"error_ratio":0.01})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_DOUBLE_EQ(r.cfg->health.error_ratio, 0.01);
  r = parse_text(doc(R"("health":{"error_ratio":0})"));
  EXPECT_THAT(errors(r), ElementsAre("health.error_ratio: must be > 0 and <= 1, got 0"));
  r = parse_text(doc(R"("health":{"error_ratio":1.5})"));
  EXPECT_THAT(errors(r), ElementsAre("health.error_ratio: must be > 0 and <= 1, got 1.5E0"));
  r = parse_text(doc(R"("health":{"error_ratio":"50%"})"));
  EXPECT_THAT(errors(r), ElementsAre("health.error_ratio: must be a number, got a string"));
}

TEST(ConfigFailover, HealthDurations) {
  auto r = parse_text(doc(R"("health":{"window":0.5,"base_ejection":1,"max_ejection":3600})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->health.window, 500ms);
  EXPECT_EQ(r.cfg->health.base_ejection, 1s);
  EXPECT_EQ(r.cfg->health.max_ejection, 3600s);
  r = parse_text(doc(R"("health":{"window":0,"base_ejection":-1,"max_ejection":"5"})"));
  EXPECT_THAT(errors(r),
              ElementsAre("health.window: must be > 0 and <= 604800 seconds, got 0",
                          "health.base_ejection: must be > 0 and <= 604800 seconds, got -1",
                          "health.max_ejection: must be a number of seconds, got a string"));
}

TEST(ConfigFailover, HealthBaseEjectionNotAboveMax) {
  auto r = parse_text(doc(R"("health":{"base_ejection":10,"max_ejection":10})"));
  EXPECT_TRUE(r.ok()) << dump(r);
  r = parse_text(doc(R"("health":{"base_ejection":20,"max_ejection":10})"));
  EXPECT_THAT(errors(r),
              ElementsAre("health.base_ejection: must be <= max_ejection (10 s), got 20 s"));
  // Against the default max_ejection (300 s).
  r = parse_text(doc(R"("health":{"base_ejection":600})"));
  EXPECT_THAT(errors(r),
              ElementsAre("health.base_ejection: must be <= max_ejection (300 s), got 600 s"));
  // Only max_ejection written: it is the one blamed.
  r = parse_text(doc(R"("health":{"max_ejection":1})"));
  EXPECT_THAT(errors(r),
              ElementsAre("health.max_ejection: must be >= base_ejection (5 s), got 1 s"));
  // A refused value is not compared again.
  r = parse_text(doc(R"("health":{"base_ejection":20,"max_ejection":-1})"));
  EXPECT_THAT(errors(r),
              ElementsAre("health.max_ejection: must be > 0 and <= 604800 seconds, got -1"));
}

TEST(ConfigFailover, HealthShapeAndUnknownKeys) {
  auto r = parse_text(doc(R"("health":true)"));
  EXPECT_THAT(errors(r), ElementsAre("health: must be an object, got a boolean"));
  r = parse_text(doc(R"("health":{"consecutive_failure":3})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(warnings(r),
              ElementsAre("warning: health.consecutive_failure: unknown key (ignored)"));
  EXPECT_EQ(r.cfg->health.consecutive_failures, 5);
}

// ---- "retry" ----------------------------------------------------------------------------------

TEST(ConfigFailover, RetryBudget) {
  auto r = parse_text(doc(R"("retry":{"budget_ratio":0,"budget_min_per_second":0})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_DOUBLE_EQ(r.cfg->retry.budget_ratio, 0.0);
  EXPECT_DOUBLE_EQ(r.cfg->retry.budget_min_per_second, 0.0);
  r = parse_text(doc(R"("retry":{"budget_ratio":10,"budget_min_per_second":1e6})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_DOUBLE_EQ(r.cfg->retry.budget_ratio, 10.0);
  EXPECT_DOUBLE_EQ(r.cfg->retry.budget_min_per_second, 1e6);
  r = parse_text(doc(R"("retry":{"budget_ratio":-0.1,"budget_min_per_second":1000001})"));
  EXPECT_THAT(errors(r),
              ElementsAre("retry.budget_ratio: must be >= 0 and <= 10, got -1E-1",
                          "retry.budget_min_per_second: must be >= 0 and <= 1000000, got "
                          "1000001"));
  r = parse_text(doc(R"("retry":{"budget_ratio":10.5})"));
  EXPECT_TRUE(has_error(r, "retry.budget_ratio", ">= 0 and <= 10")) << dump(r);
  r = parse_text(doc(R"("retry":{"budget_ratio":"0.2","budget_min_per_second":null})"));
  EXPECT_THAT(errors(r), ElementsAre("retry.budget_ratio: must be a number, got a string",
                                     "retry.budget_min_per_second: must be a number, got null"));
}

TEST(ConfigFailover, RetryShapeAndUnknownKeys) {
  auto r = parse_text(doc(R"("retry":0.2)"));
  EXPECT_THAT(errors(r), ElementsAre("retry: must be an object, got a number"));
  r = parse_text(doc(R"("retry":{"budget":0.2})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(warnings(r), ElementsAre("warning: retry.budget: unknown key (ignored)"));
}

// ---- all together -----------------------------------------------------------------------------

TEST(ConfigFailover, EveryProblemIsReportedTogetherInDocumentOrder) {
  auto r = parse_text(R"({
  "providers": [
    {"group": "fast", "name": "m", "base": "https://x", "key": "k",
     "timeouts": {"connect": 0, "idel": 1},
     "health_check": {"interval": 0.1, "path": "models"}}
  ],
  "groups": {"fast": {"policy": "fastest", "attempts": 0.5}, "slow": {}},
  "health": {"error_ratio": 2, "base_ejection": 400},
  "retry": {"budget_ratio": 11},
  "security": ["t"]
})");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(errors(r),
              ElementsAre("providers[0].timeouts.connect: must be > 0 and <= 604800 seconds, "
                          "got 0",
                          "providers[0].health_check.interval: must be >= 1 and <= 86400 "
                          "seconds, got 1E-1",
                          "providers[0].health_check.path: \"models\" must start with \"/\"",
                          "groups.fast.policy: must be one of \"round_robin\", \"weighted\", "
                          "\"least_inflight\", \"latency\", got \"fastest\"",
                          "groups.fast.attempts: must be an integer, got a number",
                          "health.error_ratio: must be > 0 and <= 1, got 2",
                          "health.base_ejection: must be <= max_ejection (300 s), got 400 s",
                          "retry.budget_ratio: must be >= 0 and <= 10, got 11"));
  EXPECT_THAT(warnings(r),
              ElementsAre("warning: providers[0].timeouts.idel: unknown key (ignored)",
                          "warning: groups.slow: no provider has this group (ignored)"));
}

}  // namespace
}  // namespace ob::config
