#include "routing/health.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "routing/policies/select.hpp"
#include "routing/table.hpp"

namespace ob::routing {
namespace {

using namespace std::chrono_literals;

// The fake clock: a time point the test moves by hand. Starts away from the epoch on purpose.
struct fake_clock {
  time_point t = time_point{} + 1h;
  time_point operator()() const { return t; }
  void advance(millis d) { t += d; }
};

health_options streak_only() {
  health_options o;
  o.window_requests = 1'000'000;  // the ratio never counts
  return o;
}

health_options ratio_only() {
  health_options o;
  o.consecutive_failures = 0;  // the streak never counts
  return o;
}

void fail(target_health& h, fake_clock& c, int n) {
  for (int i = 0; i < n; ++i) h.report(outcome::failure, c());
}

// Ejects, waits out the cooldown and takes the probe.
void eject_and_probe(target_health& h, fake_clock& c) {
  fail(h, c, h.options().consecutive_failures);
  c.t = h.ejected_until();
  ASSERT_TRUE(h.try_acquire_probe(c()));
}

TEST(SlidingWindow, SumsTheLastWindowOnly) {
  sliding_window<2> w(10s);  // 10 buckets of 1 s
  time_point t0 = time_point{} + 100s;
  w.add(t0, 0);
  w.add(t0 + 500ms, 1, 3);
  EXPECT_EQ(w.sum(t0 + 900ms)[0], 1u);
  EXPECT_EQ(w.sum(t0 + 900ms)[1], 3u);
  EXPECT_EQ(w.sum(t0 + 9s)[0], 1u);   // bucket of t0 still inside
  EXPECT_EQ(w.sum(t0 + 10s)[0], 0u);  // slid out
  w.add(t0 + 10s, 0);                 // reuses t0's slot in place
  EXPECT_EQ(w.sum(t0 + 10s)[0], 1u);
  EXPECT_EQ(w.sum(t0 + 10s)[1], 0u);
  w.clear();
  EXPECT_EQ(w.sum(t0 + 10s)[0], 0u);
}

TEST(Health, HealthyByDefault) {
  target_health h;
  fake_clock c;
  EXPECT_TRUE(h.healthy());
  EXPECT_TRUE(h.available(c()));
  EXPECT_EQ(h.state(c()), health_state::healthy);
  EXPECT_EQ(h.ejections(), 0u);
  EXPECT_FALSE(h.try_acquire_probe(c()));  // nothing to probe
}

TEST(Health, EjectsAfterConsecutiveFailures) {
  target_health h(streak_only());
  fake_clock c;
  fail(h, c, 4);
  EXPECT_TRUE(h.available(c()));
  h.report(outcome::failure, c());
  EXPECT_FALSE(h.healthy());
  EXPECT_FALSE(h.available(c()));
  EXPECT_EQ(h.state(c()), health_state::ejected);
  EXPECT_EQ(h.ejections(), 1u);
  EXPECT_EQ(h.ejected_until(), c() + 5s);
}

TEST(Health, SuccessBreaksTheStreak) {
  target_health h(streak_only());
  fake_clock c;
  fail(h, c, 4);
  h.report(outcome::success, c());
  fail(h, c, 4);
  EXPECT_TRUE(h.healthy());
}

TEST(Health, RatioEjectsOnlyOnceTheWindowHoldsEnoughRequests) {
  target_health h(ratio_only());
  fake_clock c;
  // fail, fail, ok, ...: 2/3 failures, far above 0.5 from the start.
  for (int i = 0; i < 19; ++i) {
    h.report(i % 3 == 2 ? outcome::success : outcome::failure, c());
    c.advance(100ms);
    ASSERT_TRUE(h.healthy()) << "request " << i + 1;
  }
  h.report(outcome::failure, c());  // the 20th: 14 of 20 failed
  EXPECT_FALSE(h.healthy());
}

TEST(Health, RatioAtTheThresholdDoesNotEject) {
  target_health h(ratio_only());
  fake_clock c;
  for (int i = 0; i < 60; ++i) h.report(i % 2 ? outcome::failure : outcome::success, c());
  EXPECT_TRUE(h.healthy());  // exactly 0.5 is not above it
}

TEST(Health, WindowSlidingForgetsOldFailures) {
  target_health h(ratio_only());
  fake_clock c;
  fail(h, c, 15);
  c.advance(31s);  // past the 30 s window
  for (int i = 0; i < 5; ++i) h.report(outcome::success, c());
  fail(h, c, 5);  // 25 requests, 20 failed, had the old ones still counted
  EXPECT_TRUE(h.healthy());
}

TEST(Health, FailuresInsideTheWindowStillCount) {
  target_health h(ratio_only());
  fake_clock c;
  fail(h, c, 15);
  c.advance(20s);
  fail(h, c, 4);
  EXPECT_TRUE(h.healthy());
  h.report(outcome::failure, c());  // 20 in the window, all failed
  EXPECT_FALSE(h.healthy());
}

TEST(Health, CooldownDoublesOnEveryFailedProbeAndIsCapped) {
  target_health h;
  fake_clock c;
  fail(h, c, 5);
  EXPECT_EQ(h.ejected_until() - c(), 5s);
  for (auto expected : {10s, 20s, 40s, 80s, 160s, 300s, 300s}) {
    c.t = h.ejected_until();
    ASSERT_TRUE(h.try_acquire_probe(c()));
    h.report(outcome::failure, c());
    EXPECT_EQ(h.ejected_until() - c(), expected);
  }
  EXPECT_EQ(h.ejections(), 8u);
}

TEST(Health, ExactlyOneProbeAfterTheCooldown) {
  target_health h;
  fake_clock c;
  fail(h, c, 5);
  c.advance(4999ms);
  EXPECT_FALSE(h.available(c()));
  EXPECT_FALSE(h.try_acquire_probe(c()));
  c.advance(1ms);
  EXPECT_TRUE(h.available(c()));
  EXPECT_EQ(h.state(c()), health_state::ejected);  // until someone probes
  EXPECT_TRUE(h.try_acquire_probe(c()));
  EXPECT_FALSE(h.try_acquire_probe(c()));
  EXPECT_FALSE(h.available(c()));
  EXPECT_EQ(h.state(c()), health_state::probing);
}

TEST(Health, ConcurrentCallersOnlyOneWinsTheProbe) {
  constexpr int threads = 8;
  for (int round = 0; round < 50; ++round) {
    target_health h;
    fake_clock c;
    fail(h, c, 5);
    c.advance(5s);
    std::latch start(threads);
    std::atomic<int> wins{0};
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i)
      pool.emplace_back([&] {
        start.arrive_and_wait();
        for (int k = 0; k < 100; ++k)
          if (h.available(c()) && h.try_acquire_probe(c())) ++wins;
      });
    for (auto& t : pool) t.join();
    ASSERT_EQ(wins.load(), 1) << "round " << round;
  }
}

TEST(Health, ProbeSuccessRestoresFullTraffic) {
  target_health h;
  fake_clock c;
  eject_and_probe(h, c);
  h.report(outcome::success, c());
  EXPECT_TRUE(h.healthy());
  EXPECT_TRUE(h.available(c()));
  EXPECT_EQ(h.state(c()), health_state::healthy);
  EXPECT_FALSE(h.try_acquire_probe(c()));
  fail(h, c, 4);  // the streak started again from zero
  EXPECT_TRUE(h.healthy());
  EXPECT_EQ(h.ejections(), 1u);
}

TEST(Health, ProbeFailureReejectsForLonger) {
  target_health h;
  fake_clock c;
  eject_and_probe(h, c);
  h.report(outcome::failure, c());
  EXPECT_FALSE(h.available(c()));
  EXPECT_EQ(h.state(c()), health_state::ejected);
  EXPECT_EQ(h.ejected_until() - c(), 10s);
  EXPECT_EQ(h.ejections(), 2u);
}

TEST(Health, BackoffResetsAfterStayingHealthyForAWhile) {
  target_health h;
  fake_clock c;
  eject_and_probe(h, c);
  h.report(outcome::failure, c());  // 10 s, next would be 20 s
  c.t = h.ejected_until();
  ASSERT_TRUE(h.try_acquire_probe(c()));
  h.report(outcome::success, c());
  c.advance(10s);  // a short recovery: the same incident, cooldown keeps growing
  fail(h, c, 5);
  EXPECT_EQ(h.ejected_until() - c(), 20s);
  c.t = h.ejected_until();
  ASSERT_TRUE(h.try_acquire_probe(c()));
  h.report(outcome::success, c());
  c.advance(60s);  // backoff_reset: a new incident starts from base_ejection
  fail(h, c, 5);
  EXPECT_EQ(h.ejected_until() - c(), 5s);
}

TEST(Health, RetryAfterEjectsForExactlyThatLong) {
  target_health h;
  fake_clock c;
  h.report(outcome::rate_limited, c(), 7s);
  EXPECT_FALSE(h.available(c()));
  EXPECT_EQ(h.ejected_until(), c() + 7s);
  EXPECT_EQ(h.ejections(), 1u);
  c.advance(7s);
  ASSERT_TRUE(h.try_acquire_probe(c()));
  h.report(outcome::overloaded, c(), 2h);  // bounded by max_ejection
  EXPECT_EQ(h.ejected_until(), c() + 300s);
  c.advance(300s);
  ASSERT_TRUE(h.try_acquire_probe(c()));
  h.report(outcome::success, c());
  h.report(outcome::rate_limited, c(), 0ms);  // "retry now": the next request probes
  EXPECT_FALSE(h.healthy());
  EXPECT_TRUE(h.try_acquire_probe(c()));
}

TEST(Health, RetryAfterDoesNotDoubleTheNextCooldown) {
  target_health h;
  fake_clock c;
  h.report(outcome::rate_limited, c(), 1s);
  c.advance(1s);
  ASSERT_TRUE(h.try_acquire_probe(c()));
  h.report(outcome::failure, c());
  EXPECT_EQ(h.ejected_until() - c(), 5s);  // first backoff ejection: base
}

TEST(Health, LimitsWithoutRetryAfterCountAsFailures) {
  target_health h(streak_only());
  fake_clock c;
  h.report(outcome::rate_limited, c());
  h.report(outcome::overloaded, c());
  h.report(outcome::rate_limited, c());
  h.report(outcome::failure, c());
  EXPECT_TRUE(h.healthy());
  h.report(outcome::rate_limited, c());
  EXPECT_FALSE(h.healthy());
  EXPECT_EQ(h.ejected_until() - c(), 5s);
  h.report(outcome::success, c(), 1s);  // a Retry-After on a success means nothing
}

TEST(Health, ReportsWhileEjectedAreIgnored) {
  target_health h;
  fake_clock c;
  fail(h, c, 5);
  for (int i = 0; i < 10; ++i) h.report(outcome::success, c());  // started before ejection
  EXPECT_FALSE(h.available(c()));
  fail(h, c, 10);
  EXPECT_EQ(h.ejections(), 1u);
  EXPECT_EQ(h.ejected_until(), c() + 5s);
  c.advance(5s);
  EXPECT_TRUE(h.try_acquire_probe(c()));  // recovery still goes through a probe
}

TEST(Health, ActiveCheckSuccessEndsAnEjectionAtOnce) {
  target_health h;
  fake_clock c;
  fail(h, c, 5);
  ASSERT_FALSE(h.available(c()));
  h.report_check(outcome::failure, c());  // a failed check while ejected changes nothing
  EXPECT_FALSE(h.healthy());
  EXPECT_EQ(h.ejected_until(), c() + 5s);
  c.advance(1s);  // well inside the cooldown, no probe due
  h.report_check(outcome::success, c());
  EXPECT_TRUE(h.healthy());
  EXPECT_EQ(h.state(c()), health_state::healthy);
  EXPECT_FALSE(h.try_acquire_probe(c()));  // nothing left to probe
  EXPECT_EQ(h.ejections(), 1u);
}

TEST(Health, ActiveCheckSuccessEndsAProbeToo) {
  target_health h;
  fake_clock c;
  fail(h, c, 5);
  c.advance(5s);
  ASSERT_TRUE(h.try_acquire_probe(c()));
  h.report_check(outcome::success, c());
  EXPECT_TRUE(h.healthy());
}

TEST(Health, ActiveCheckRetryAfterEjectsForThatLong) {
  target_health h;
  fake_clock c;
  h.report_check(outcome::rate_limited, c(), 7s);
  EXPECT_FALSE(h.healthy());
  EXPECT_EQ(h.ejected_until(), c() + 7s);
}

TEST(Health, LostOrReleasedProbeLetsAnotherRequestProbe) {
  target_health h;
  fake_clock c;
  eject_and_probe(h, c);
  c.advance(119s);
  EXPECT_FALSE(h.try_acquire_probe(c()));
  c.advance(1s);  // probe_timeout
  EXPECT_EQ(h.state(c()), health_state::ejected);
  EXPECT_TRUE(h.available(c()));
  EXPECT_TRUE(h.try_acquire_probe(c()));
  h.release_probe();  // its client went away
  EXPECT_TRUE(h.try_acquire_probe(c()));
  h.report(outcome::success, c());
  EXPECT_TRUE(h.healthy());
}

TEST(Health, LatencyAverage) {
  target_health h;
  EXPECT_EQ(h.ewma_ms(), 0.0);  // untried
  h.record_latency(100ms);
  EXPECT_DOUBLE_EQ(h.ewma_ms(), 100.0);
  h.record_latency(200ms);
  EXPECT_DOUBLE_EQ(h.ewma_ms(), 130.0);
  h.record_latency(0ms);
  EXPECT_GT(h.ewma_ms(), 0.0);
}

TEST(Health, InFlightGuardCountsForItsLifetime) {
  target_health h;
  {
    in_flight_guard a(h);
    in_flight_guard b(h);
    EXPECT_EQ(h.in_flight(), 2);
    in_flight_guard moved(std::move(b));
    EXPECT_EQ(h.in_flight(), 2);
  }
  EXPECT_EQ(h.in_flight(), 0);
}

// Every entry point at once from several threads (run under -fsanitize=thread too).
TEST(Health, ConcurrentReportsAndQueriesStayConsistent) {
  target_health h;
  std::atomic<std::int64_t> clock_ms{0};
  constexpr int threads = 4, rounds = 20'000;
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      for (int k = 0; k < rounds; ++k) {
        auto now = time_point{} + millis(clock_ms.fetch_add(1));
        in_flight_guard busy(h);
        if (h.available(now)) h.try_acquire_probe(now);
        auto o = (k + i) % 3 == 0 ? outcome::success : outcome::failure;
        h.report(o, now, k % 101 == 0 ? std::optional<millis>(50ms) : std::nullopt);
        h.record_latency(millis(k % 50));
        (void)h.state(now);
      }
    });
  for (auto& t : pool) t.join();
  EXPECT_EQ(h.in_flight(), 0);
  EXPECT_GT(h.ejections(), 0u);
  EXPECT_GT(h.ewma_ms(), 0.0);
  EXPECT_LT(h.ewma_ms(), 50.0);
}

TEST(HealthRegistry, SameIdSameStateAndDroppedIdsAreForgotten) {
  health_registry reg;
  fake_clock c;
  auto a = reg.get("a");
  fail(*a, c, 5);
  EXPECT_EQ(reg.get("a"), a);
  EXPECT_NE(reg.get("b"), a);
  a.reset();
  auto again = reg.get("a");
  EXPECT_TRUE(again->healthy());
  EXPECT_EQ(again->ejections(), 0u);
}

config::provider provider(std::string name, std::string key, std::uint32_t weight = 1) {
  config::provider p;
  p.group = "g";
  p.name = std::move(name);
  p.base = "http://h";
  p.key = std::move(key);
  p.weight = weight;
  p.url.host = "h";
  p.url.port = 80;
  return p;
}

TEST(HealthRegistry, TableRebuildKeepsTheHealthOfKeptTargets) {
  state_registry states;
  fake_clock c;
  config::config c1;
  c1.providers = {provider("m1", "k1"), provider("m2", "k2")};
  auto t1 = std::make_unique<table>(c1, states);
  auto kept = t1->find("g")->targets[0].health;
  fail(*kept, c, 5);
  config::config c2;
  c2.providers = {provider("m1", "k1"), provider("m2", "other-key")};
  table t2(c2, states);  // built while t1 is alive, as in a reload
  EXPECT_EQ(t2.find("g")->targets[0].health, kept);
  EXPECT_FALSE(t2.find("g")->targets[0].health->healthy());
  EXPECT_NE(t2.find("g")->targets[1].health, t1->find("g")->targets[1].health);
}

TEST(Table, WeightsAndPolicyFromConfig) {
  state_registry states;
  config::config even;
  even.providers = {provider("a", "k"), provider("b", "k")};
  table t1(even, states);
  EXPECT_EQ(t1.find("g")->policy, policy_kind::round_robin);
  config::config uneven;
  uneven.providers = {provider("a", "k", 5), provider("b", "k"), provider("c", "k", 0)};
  table t2(uneven, states);
  EXPECT_EQ(t2.find("g")->policy, policy_kind::weighted);
  EXPECT_EQ(t2.find("g")->targets[0].weight, 5u);
  EXPECT_EQ(t2.find("g")->targets[2].weight, 1u);  // 0 is read as 1
}

// Picks `n` times from `t`'s group "g" and returns the names picked, in order.
std::vector<std::string> weighted_picks(const table& t, int n) {
  std::vector<std::string> out;
  rng r(1);
  const auto& g = *t.find("g");
  for (int i = 0; i < n; ++i)
    out.push_back(g.targets[select(g, time_point{}, {}, r)->index].provider->name);
  return out;
}

// Smooth weighted round robin keeps its state per target identity: a reload that reorders the
// targets (or drops one) carries on with the same sequence, each target keeping its share.
TEST(Table, WeightedStateFollowsTargetsAcrossAReorder) {
  config::config c1;
  c1.providers = {provider("a", "k", 5), provider("b", "k", 1), provider("c", "k", 1)};
  config::config c2;
  c2.providers = {provider("c", "k", 1), provider("a", "k", 5), provider("b", "k", 1)};

  state_registry reference_states;
  table reference(c1, reference_states);
  auto expected = weighted_picks(reference, 3 + 14);

  state_registry states;
  auto t1 = std::make_unique<table>(c1, states);
  auto first = weighted_picks(*t1, 3);  // mid-cycle: the current values are not all 0
  table t2(c2, states);
  t1.reset();
  auto after = weighted_picks(t2, 14);
  first.insert(first.end(), after.begin(), after.end());
  EXPECT_EQ(first, expected);
  std::map<std::string, int> share;
  for (const auto& name : after) ++share[name];
  EXPECT_EQ(share["a"], 10);
  EXPECT_EQ(share["b"], 2);
  EXPECT_EQ(share["c"], 2);
}

// Smooth weighted round robin written out plainly, each target's current value kept by name:
// `n` picks over `targets` (ties to the earlier one), continuing from `current`.
std::vector<std::string> model_picks(const std::vector<std::pair<std::string, int>>& targets,
                                     std::map<std::string, std::int64_t>& current, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::int64_t total = 0;
    const std::string* best = nullptr;
    for (const auto& [name, weight] : targets) {
      current[name] += weight;
      total += weight;
      if (!best || current[name] > current[*best]) best = &name;
    }
    current[*best] -= total;
    out.push_back(*best);
  }
  return out;
}

TEST(Table, WeightedStateOfARemovedTargetGoesNowhere) {
  config::config c1;
  c1.providers = {provider("a", "k", 1), provider("b", "k", 4), provider("c", "k", 2)};
  config::config c2;
  c2.providers = {provider("b", "k", 4), provider("c", "k", 2)};
  std::map<std::string, std::int64_t> current;
  auto expected_before = model_picks({{"a", 1}, {"b", 4}, {"c", 2}}, current, 5);
  auto expected_after = model_picks({{"b", 4}, {"c", 2}}, current, 12);

  state_registry states;
  auto t1 = std::make_unique<table>(c1, states);
  EXPECT_EQ(weighted_picks(*t1, 5), expected_before);
  table t2(c2, states);
  t1.reset();
  // b and c carry on from their own values; a's value is not handed to anyone.
  EXPECT_EQ(weighted_picks(t2, 12), expected_after);
  std::map<std::string, int> share;
  for (const auto& name : weighted_picks(t2, 6 * 10)) ++share[name];
  EXPECT_EQ(share["b"], 40);
  EXPECT_EQ(share["c"], 20);
}

}  // namespace
}  // namespace ob::routing
