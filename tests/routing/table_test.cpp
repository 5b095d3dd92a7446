#include "routing/table.hpp"

#include <gtest/gtest.h>

#include <map>
#include <thread>

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
