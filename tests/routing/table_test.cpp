#include "routing/table.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "observe/gateway_metrics.hpp"
#include "routing/policies/round_robin.hpp"

namespace ob::routing {
namespace {

config::provider make(std::string group, std::string name, std::string host, std::string key) {
  config::provider p;
  p.group = std::move(group);
  p.name = std::move(name);
  p.base = "http://" + host;
  p.key = std::move(key);
  p.url.host = host;
  p.url.port = 80;
  p.url.host_header = host;
  return p;
}

config::config two_groups() {
  config::config c;
  c.providers = {make("fast", "model-a", "a.example", "ka"),
                 make("fast", "model-b", "b.example", "kb"),
                 make("smart", "big \"q\"", "c.example", "")};
  c.security = {"t"};
  return c;
}

TEST(Table, GroupsInConfigOrderWithTargets) {
  state_registry states;
  auto cfg = two_groups();
  table t(cfg, states);
  ASSERT_EQ(t.groups().size(), 2u);
  EXPECT_EQ(t.groups()[0]->name, "fast");
  EXPECT_EQ(t.groups()[1]->name, "smart");
  const auto* fast = t.find("fast");
  ASSERT_NE(fast, nullptr);
  ASSERT_EQ(fast->targets.size(), 2u);
  EXPECT_EQ(fast->name_literal, "\"fast\"");
  EXPECT_EQ(fast->targets[0].model_literal, "\"model-a\"");
  EXPECT_EQ(fast->targets[0].fixed_headers, "Authorization: Bearer ka\r\n");
  EXPECT_EQ(fast->targets[0].pool_key, "http|a.example|80");
  // The pool's hash of the key (upstream::pool::hash_of), computed once here.
  EXPECT_EQ(fast->targets[0].pool_hash, std::hash<std::string_view>{}("http|a.example|80"));
  const auto* smart = t.find("smart");
  ASSERT_NE(smart, nullptr);
  EXPECT_EQ(smart->targets[0].model_literal, "\"big \\\"q\\\"\"");
  EXPECT_EQ(smart->targets[0].fixed_headers, "");  // no key: no Authorization header
  EXPECT_EQ(t.find("missing"), nullptr);
  EXPECT_EQ(t.find("Fast"), nullptr);  // group names are case-sensitive, like model names
}

TEST(Table, TargetIdsAreStableAndDoNotContainTheKey) {
  auto p = make("g", "m", "h", "sk-secret-value");
  auto id = target_id(p);
  EXPECT_EQ(id, target_id(p));
  EXPECT_EQ(id.find("sk-secret-value"), std::string::npos);
  auto q = p;
  q.key = "sk-other";
  EXPECT_NE(id, target_id(q));
}

// Entries with one base, model and key that differ in API, auth, API version or headers are
// different targets (two projects of one account, two dialects of one endpoint): their own
// health, round-robin slot and active check. An entry with none of these keeps its old id.
TEST(Table, EntriesSetApartByApiAuthVersionOrHeadersAreDifferentTargets) {
  auto p = make("g", "m", "h.example", "k");
  const auto plain = target_id(p);
  EXPECT_EQ(plain.substr(0, plain.rfind('|') + 1), "http://h.example|m|");
  EXPECT_EQ(plain.size() - plain.rfind('|') - 1, 16u);
  std::vector<config::provider> variants(5, p);
  variants[0].headers = {{"OpenAI-Project", "proj_a"}};
  variants[1].headers = {{"OpenAI-Project", "proj_b"}};
  variants[2].api = config::provider_api::anthropic;
  variants[2].auth = config::auth_mode::x_api_key;
  variants[3].auth = config::auth_mode::api_key;
  variants[4].api_version = "2024-10-21";
  std::set<std::string> ids{plain};
  for (const auto& v : variants) {
    auto id = target_id(v);
    EXPECT_EQ(id, target_id(v));
    // The key's hash stays last: the metric labels' account suffix is read from there.
    EXPECT_EQ(id.substr(id.rfind('|')), plain.substr(plain.rfind('|')));
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 6u);

  state_registry states;
  config::config cfg;
  cfg.providers = {variants[0], variants[1]};
  table t(cfg, states);
  const auto& targets = t.find("g")->targets;
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_NE(targets[0].health, targets[1].health);
  EXPECT_NE(targets[0].id, targets[1].id);
}

// The target label values of group `g`, in config order.
std::vector<std::string> target_labels(const table& t, std::string_view g) {
  std::vector<std::string> out;
  for (const auto& x : t.find(g)->targets)
    out.emplace_back(observe::metrics::labels().value(x.metric_target));
  return out;
}

std::string key_tag(std::string_view key) {  // what two accounts' labels end with
  config::provider p;
  p.key = std::string(key);
  auto id = target_id(p);
  return "#" + id.substr(id.rfind('|') + 1, 6);
}

TEST(MetricLabels, ModelAtHostWithoutASuffixWhenNothingCollides) {
  state_registry states;
  auto cfg = two_groups();
  // The same entry in another group is the same target: the same label, no suffix.
  cfg.providers.push_back(make("smart", "model-a", "a.example", "ka"));
  table t(cfg, states);
  EXPECT_EQ(target_labels(t, "fast"),
            (std::vector<std::string>{"model-a@a.example", "model-b@b.example"}));
  EXPECT_EQ(target_labels(t, "smart"),
            (std::vector<std::string>{"big \"q\"@c.example", "model-a@a.example"}));
}

// Labels name targets across groups: the rate-limit gauges and the dashboard's series are
// keyed by the target label alone, so one model and host in two groups with two keys (two
// accounts) must not merge into one series.
TEST(MetricLabels, TwoAccountsInTwoGroupsAreToldApart) {
  state_registry states;
  auto cfg = two_groups();
  cfg.providers.push_back(make("smart", "model-a", "a.example", "kz"));
  table t(cfg, states);
  EXPECT_EQ(target_labels(t, "fast"),
            (std::vector<std::string>{"model-a@a.example" + key_tag("ka"), "model-b@b.example"}));
  EXPECT_EQ(target_labels(t, "smart"),
            (std::vector<std::string>{"big \"q\"@c.example", "model-a@a.example" + key_tag("kz")}));
}

TEST(MetricLabels, TwoAccountsOfOneModelAreToldApartByTheirKeys) {
  state_registry states;
  config::config cfg;
  cfg.providers = {make("g", "m", "h.example", "k1"), make("g", "m", "h.example", "k2")};
  table t(cfg, states);
  EXPECT_EQ(target_labels(t, "g"), (std::vector<std::string>{"m@h.example" + key_tag("k1"),
                                                             "m@h.example" + key_tag("k2")}));
}

// Same model, host and key, but two different targets: the labels must differ, or /metrics
// repeats a series (openbridge_target_up once per target) and Prometheus refuses the scrape.
TEST(MetricLabels, TargetsWithTheSameModelHostAndKeyGetDistinctLabels) {
  auto variant = [](int k) {
    auto p = make("g", "m", "h.example", "same-key");
    switch (k) {
      case 0:
        p.base = "http://h.example/a";
        break;
      case 1:
        p.base = "http://h.example/b";
        break;
      case 2:
        p.base = "http://h.example:80";
        break;
      case 3:
        p.headers = {{"OpenAI-Project", "proj_1"}};
        break;
      case 4:
        p.headers = {{"OpenAI-Project", "proj_2"}};
        break;
      case 5:
        p.api = config::provider_api::azure;
        p.auth = config::auth_mode::api_key;
        break;
      case 6:
        p.api = config::provider_api::azure;
        p.auth = config::auth_mode::api_key;
        p.api_version = "v1";
        break;
      case 7:
        p.auth = config::auth_mode::x_api_key;
        break;
    }
    return p;
  };
  state_registry states;
  config::config cfg;
  for (int k = 0; k < 8; ++k) cfg.providers.push_back(variant(k));
  cfg.providers.push_back(make("g", "m", "h.example", "other-key"));
  cfg.providers.push_back(make("g", "other", "h.example", "same-key"));
  table t(cfg, states);
  auto labels = target_labels(t, "g");
  std::set<std::string> distinct(labels.begin(), labels.end());
  EXPECT_EQ(distinct.size(), labels.size()) << ::testing::PrintToString(labels);
  for (int k = 0; k < 8; ++k) EXPECT_TRUE(labels[k].starts_with("m@h.example#")) << labels[k];
  // A key of its own still names the target by its key hash, as before.
  EXPECT_EQ(labels[8], "m@h.example" + key_tag("other-key"));
  EXPECT_EQ(labels[9], "other@h.example");

  // Stable: the same config built again (a reload) names its targets the same way.
  state_registry states2;
  table again(cfg, states2);
  EXPECT_EQ(target_labels(again, "g"), labels);
}

// An entry listed twice is one target (one health, see TargetIdsAreStable...): one label.
TEST(MetricLabels, AnEntryListedTwiceIsOneTarget) {
  state_registry states;
  config::config cfg;
  auto p = make("g", "m", "h.example", "k");
  p.base = "http://h.example/a";
  auto q = p;
  q.base = "http://h.example/b";
  cfg.providers = {p, p, q};
  table t(cfg, states);
  auto labels = target_labels(t, "g");
  EXPECT_EQ(labels[0], labels[1]);
  EXPECT_NE(labels[0], labels[2]);
  EXPECT_EQ(t.find("g")->targets[0].health, t.find("g")->targets[1].health);
}

TEST(RoundRobin, EvenSpreadInOneThread) {
  state_registry states;
  auto cfg = two_groups();
  table t(cfg, states);
  const auto& g = *t.find("fast");
  std::map<std::size_t, int> hits;
  for (int i = 0; i < 100; ++i) ++hits[pick_round_robin(g)];
  EXPECT_EQ(hits[0], 50);
  EXPECT_EQ(hits[1], 50);
  EXPECT_EQ(pick_round_robin(*t.find("smart")), 0u);
}

TEST(RoundRobin, EvenSpreadAcrossThreads) {
  state_registry states;
  auto cfg = two_groups();
  cfg.providers.push_back(make("fast", "model-c", "c.example", "kc"));
  table t(cfg, states);
  const auto& g = *t.find("fast");
  constexpr int threads = 4, per_thread = 3000;
  std::vector<std::array<int, 3>> counts(threads, std::array<int, 3>{});
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      for (int k = 0; k < per_thread; ++k) ++counts[i][pick_round_robin(g)];
    });
  for (auto& th : pool) th.join();
  std::array<int, 3> total{};
  for (auto& c : counts)
    for (int k = 0; k < 3; ++k) total[k] += c[k];
  // One shared cursor: the process-wide spread is exact, whatever the interleaving.
  EXPECT_EQ(total[0], threads * per_thread / 3);
  EXPECT_EQ(total[1], threads * per_thread / 3);
  EXPECT_EQ(total[2], threads * per_thread / 3);
}

TEST(RoundRobin, StateSurvivesRebuildOfTheTable) {
  state_registry states;
  auto cfg = two_groups();
  auto t1 = std::make_unique<table>(cfg, states);
  pick_round_robin(*t1->find("fast"));  // cursor now 1
  auto cfg2 = two_groups();
  table t2(cfg2, states);  // built while t1 still holds the state, as in a reload
  EXPECT_EQ(t2.find("fast")->state, t1->find("fast")->state);
  EXPECT_EQ(pick_round_robin(*t2.find("fast")), 1u);
  t1.reset();
  EXPECT_EQ(pick_round_robin(*t2.find("fast")), 0u);
}

// A reload refused after its table was built (or any table built and dropped) must leave the
// shared state as the running config set it.
TEST(StateRegistry, ATableBuiltAndDroppedChangesNoSharedSettings) {
  state_registry states;
  auto running = two_groups();
  running.health.consecutive_failures = 7;
  running.retry.budget_ratio = 0.2;
  running.retry.budget_min_per_second = 3;
  table live(running, states);

  auto refused = two_groups();
  refused.providers.push_back(make("fast", "model-c", "c.example", "kc"));
  refused.providers.push_back(make("new-group", "model-n", "n.example", "kn"));
  refused.health.consecutive_failures = 2;
  refused.retry.budget_ratio = 0;
  refused.retry.budget_min_per_second = 0;
  { table prepared(refused, states); }

  // Kept targets keep their health object and its settings.
  EXPECT_EQ(live.find("fast")->targets[0].health->options().consecutive_failures, 7);
  // Nothing the refused config brought is left behind as a default for what comes next.
  EXPECT_NE(states.health().get("later-target")->options().consecutive_failures, 2);
  EXPECT_TRUE(states.get("later-group")->retries.try_retry(time_point{} + std::chrono::hours(1)));
  // The running config's next table gives new targets its own settings.
  running.providers.push_back(make("fast", "model-d", "d.example", "kd"));
  table next(running, states);
  EXPECT_EQ(next.find("fast")->targets[2].health->options().consecutive_failures, 7);
}

TEST(StateRegistry, ForgetsGroupsNobodyHolds) {
  state_registry states;
  auto a = states.get("a");
  a->next = 7;
  a.reset();
  auto again = states.get("a");
  EXPECT_EQ(again->next.load(), 0u);
}

}  // namespace
}  // namespace ob::routing
