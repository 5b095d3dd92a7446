#include "routing/policies/select.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <thread>
#include <vector>

namespace ob::routing {
namespace {

using namespace std::chrono_literals;

constexpr std::array all_policies = {policy_kind::round_robin, policy_kind::weighted,
                                     policy_kind::least_inflight, policy_kind::latency};

// A group built by hand, one fresh health object per target.
struct test_group {
  group g;
  time_point now = time_point{} + 1h;
  rng r{42};

  explicit test_group(std::vector<std::uint32_t> weights,
                      policy_kind k = policy_kind::round_robin) {
    g.name = "g";
    g.state = std::make_shared<group_state>();
    g.policy = k;
    for (std::size_t i = 0; i < weights.size(); ++i) {
      target t;
      t.id = "t" + std::to_string(i);
      t.weight = weights[i];
      t.health = std::make_shared<target_health>();
      t.wrr_slot = g.state->wrr_slot(t.id);
      g.targets.push_back(std::move(t));
    }
  }
  target_health& h(std::size_t i) { return *g.targets[i].health; }
  void eject(std::size_t i) {
    for (int k = 0; k < 5; ++k) h(i).report(outcome::failure, now);
  }
  std::optional<selection> pick(std::span<const std::size_t> tried = {}) {
    return select(g, now, tried, r);
  }
  std::map<std::size_t, int> spread(int picks, std::span<const std::size_t> tried = {}) {
    std::map<std::size_t, int> hits;
    for (int i = 0; i < picks; ++i) {
      auto s = pick(tried);
      EXPECT_TRUE(s && !s->probe && !s->fallback);
      if (s) ++hits[s->index];
    }
    return hits;
  }
};

std::vector<candidate> candidates(test_group& tg) {
  std::vector<candidate> out;
  for (std::size_t i = 0; i < tg.g.targets.size(); ++i)
    out.push_back(
        {i, tg.g.targets[i].weight, tg.g.targets[i].health.get(), tg.g.targets[i].wrr_slot});
  return out;
}

TEST(Rng, TwoChoicesAreDistinctAndCoverEveryPair) {
  rng r{1};
  std::map<std::pair<std::size_t, std::size_t>, int> seen;
  for (int i = 0; i < 6000; ++i) {
    auto [a, b] = two_choices(3, r);
    ASSERT_NE(a, b);
    ASSERT_LT(a, 3u);
    ASSERT_LT(b, 3u);
    ++seen[{a, b}];
  }
  EXPECT_EQ(seen.size(), 6u);
  for (auto& [pair, n] : seen) EXPECT_NEAR(n, 1000, 150);
}

TEST(RoundRobinPolicy, EvenAndSharesTheCursorWithTheOldPick) {
  test_group tg({1, 1, 1});
  auto hits = tg.spread(300);
  EXPECT_EQ(hits[0], 100);
  EXPECT_EQ(hits[1], 100);
  EXPECT_EQ(hits[2], 100);
  EXPECT_EQ(pick_round_robin(tg.g), 0u);  // cursor is at 300
  EXPECT_EQ(tg.pick()->index, 1u);
}

// One client request as the exchange drives it: one request_picks for all its attempts, each
// target tried at most once, until one that is not in `failing` answers (no health report:
// the failing targets stay in rotation). Returns the targets sent to, in order.
std::vector<std::size_t> run_request(test_group& tg, const std::set<std::size_t>& failing) {
  request_picks picks;
  std::vector<std::size_t> tried;
  while (auto s = select(tg.g, tg.now, tried, picks, tg.r)) {
    tried.push_back(s->index);
    if (!failing.contains(s->index)) break;
  }
  return tried;
}

// Each request draws one cursor value c (0..59): its first pick is c % 3, so the failing
// target comes first for 20 of them; those continue over the two left at (c / 3) % 2, which
// alternates: 10 each. Every healthy target serves 20 + 10.
TEST(RoundRobinPolicy, FailoverSplitsAFailingTargetsShareEvenlyAndMovesTheCursorOnce) {
  for (std::size_t bad = 0; bad < 3; ++bad) {
    test_group tg({1, 1, 1});
    std::array<int, 3> sent{}, served{};
    for (int i = 0; i < 60; ++i) {
      auto path = run_request(tg, {bad});
      for (auto t : path) ++sent[t];
      ++served[path.back()];
    }
    std::array<int, 3> want{30, 30, 30};
    want[bad] = 0;
    EXPECT_EQ(served, want) << "failing target " << bad;
    EXPECT_EQ(sent[bad], 20) << "failing target " << bad << ": first in one request of three";
    EXPECT_EQ(tg.g.state->next.load(), 60u) << "the cursor moves once per request, not per attempt";
  }
}

// The drawn value read digit by digit (mixed radix 4, 3, 2) runs through all 24 orders of the
// targets in 24 requests, so whichever targets fail, the others serve equal shares.
TEST(RoundRobinPolicy, FailoverOverSeveralFailingTargetsStaysEven) {
  const std::set<std::size_t> failing_sets[] = {{0, 1}, {1, 2}, {2, 3}, {0, 3}, {1, 3}, {0, 1, 2}};
  for (const auto& failing : failing_sets) {
    test_group tg({1, 1, 1, 1});
    std::array<int, 4> served{};
    std::array<int, 4> sent{};
    for (int i = 0; i < 24 * 5; ++i) {
      auto path = run_request(tg, failing);
      for (auto t : path) ++sent[t];
      ++served[path.back()];
    }
    const int healthy = 4 - static_cast<int>(failing.size());
    for (std::size_t k = 0; k < 4; ++k) {
      if (failing.contains(k))
        EXPECT_EQ(served[k], 0) << k;
      else
        EXPECT_EQ(served[k], 120 / healthy) << "target " << k << " of " << healthy << " healthy";
    }
    EXPECT_EQ(tg.g.state->next.load(), 120u);
  }
}

TEST(RoundRobinPolicy, FailoverNeverRepeatsATargetAndEndsWhenAllWereTried) {
  test_group tg({1, 1, 1});
  for (int i = 0; i < 12; ++i) {
    auto path = run_request(tg, {0, 1, 2});
    std::set<std::size_t> seen(path.begin(), path.end());
    EXPECT_EQ(path.size(), 3u);
    EXPECT_EQ(seen.size(), 3u);
  }
  EXPECT_EQ(tg.g.state->next.load(), 12u);
}

TEST(WeightedPolicy, SmoothSequence) {
  test_group tg({5, 1, 1}, policy_kind::weighted);
  std::vector<std::size_t> seq;
  for (int i = 0; i < 7; ++i) seq.push_back(tg.pick()->index);
  EXPECT_EQ(seq, (std::vector<std::size_t>{0, 0, 1, 0, 2, 0, 0}));  // as nginx spreads 5:1:1
}

TEST(WeightedPolicy, ExactSharesOver7000Picks) {
  test_group tg({5, 1, 1}, policy_kind::weighted);
  auto hits = tg.spread(7000);
  EXPECT_EQ(hits[0], 5000);
  EXPECT_EQ(hits[1], 1000);
  EXPECT_EQ(hits[2], 1000);
}

TEST(WeightedPolicy, ExactSharesAcrossThreads) {
  test_group tg({5, 1, 1}, policy_kind::weighted);
  constexpr int threads = 4, per_thread = 1750;
  std::vector<std::array<int, 3>> counts(threads, std::array<int, 3>{});
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      rng r(i);
      for (int k = 0; k < per_thread; ++k) ++counts[i][select(tg.g, tg.now, {}, r)->index];
    });
  for (auto& t : pool) t.join();
  std::array<int, 3> total{};
  for (auto& c : counts)
    for (int k = 0; k < 3; ++k) total[k] += c[k];
  EXPECT_EQ(total, (std::array<int, 3>{5000, 1000, 1000}));
}

TEST(WeightedPolicy, WeightsFromTheConfigSelectIt) {
  state_registry states;
  config::config cfg;
  for (std::uint32_t w : {5u, 1u, 1u}) {
    config::provider p;
    p.group = "g";
    p.name = "m" + std::to_string(cfg.providers.size());
    p.base = "http://h";
    p.weight = w;
    cfg.providers.push_back(p);
  }
  table t(cfg, states);
  rng r{7};
  std::array<int, 3> hits{};
  for (int i = 0; i < 700; ++i) ++hits[select(*t.find("g"), time_point{}, {}, r)->index];
  EXPECT_EQ(hits, (std::array<int, 3>{500, 100, 100}));
}

// Not a benchmark; a guard that the shared lock stays in the tens of nanoseconds, and the
// number on record in the test log.
// Correctness under contention; how fast a pick is lives in bench/micro/routing_bench.cpp.
TEST(WeightedPolicy, ExactSharesUnderContention) {
  test_group tg({5, 1, 1, 3}, policy_kind::weighted);
  constexpr int threads = 2, per_thread = 50'000;  // 100,000 picks: 10,000 full cycles
  std::vector<std::array<int, 4>> hits(threads);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      rng r(i);
      hits[i] = {};
      for (int k = 0; k < per_thread; ++k) ++hits[i][select(tg.g, tg.now, {}, r)->index];
    });
  for (auto& t : pool) t.join();
  std::array<int, 4> total{};
  for (const auto& h : hits)
    for (std::size_t k = 0; k < 4; ++k) total[k] += h[k];
  EXPECT_EQ(total, (std::array<int, 4>{50'000, 10'000, 10'000, 30'000}));
}

TEST(LeastInflightPolicy, TwoCandidatesAlwaysTheLighter) {
  test_group tg({1, 1}, policy_kind::least_inflight);
  tg.h(0).start_request();
  tg.h(0).start_request();
  tg.h(1).start_request();
  auto hits = tg.spread(100);
  EXPECT_EQ(hits[1], 100);
}

TEST(LeastInflightPolicy, LoadIsPerUnitOfWeight) {
  test_group tg({3, 1}, policy_kind::least_inflight);
  tg.h(0).start_request();
  tg.h(0).start_request();  // 2 / 3
  tg.h(1).start_request();  // 1 / 1
  auto hits = tg.spread(100);
  EXPECT_EQ(hits[0], 100);
}

TEST(LeastInflightPolicy, PowerOfTwoChoicesPicksTheBetterOfTwo) {
  test_group tg({1, 1, 1}, policy_kind::least_inflight);
  for (int i = 0; i < 5; ++i) tg.h(1).start_request();
  for (int i = 0; i < 10; ++i) tg.h(2).start_request();
  auto hits = tg.spread(3000);
  EXPECT_EQ(hits[2], 0);            // loses every pair it is in
  EXPECT_NEAR(hits[0], 2000, 150);  // wins every pair it is in: 2 of the 3 pairs
  EXPECT_NEAR(hits[1], 1000, 150);
}

TEST(LatencyPolicy, PrefersTheLowerAverage) {
  test_group tg({1, 1, 1}, policy_kind::latency);
  tg.h(0).record_latency(300ms);
  tg.h(1).record_latency(100ms);
  tg.h(2).record_latency(200ms);
  auto hits = tg.spread(3000);
  EXPECT_EQ(hits[0], 0);
  EXPECT_NEAR(hits[1], 2000, 150);
  EXPECT_NEAR(hits[2], 1000, 150);
}

TEST(LatencyPolicy, UntriedTargetsCountAsBest) {
  test_group tg({1, 1}, policy_kind::latency);
  tg.h(0).record_latency(1ms);
  auto hits = tg.spread(50);
  EXPECT_EQ(hits[1], 50);
}

TEST(LatencyPolicy, LoadWeighsIn) {
  test_group tg({1, 1}, policy_kind::latency);
  tg.h(0).record_latency(100ms);
  tg.h(1).record_latency(200ms);
  for (int i = 0; i < 3; ++i) tg.h(0).start_request();  // 100 x 4 > 200 x 1
  auto hits = tg.spread(50);
  EXPECT_EQ(hits[1], 50);
}

TEST(Policies, SingleCandidateIsPickedByEveryPolicy) {
  for (auto k : all_policies) {
    test_group tg({4});
    auto c = candidates(tg);
    request_picks picks;
    EXPECT_EQ(policy_for(k)(c, *tg.g.state, picks, tg.r), 0u);
  }
}

TEST(Select, EveryPolicySkipsEjectedTargets) {
  for (auto k : all_policies) {
    test_group tg({2, 1, 1}, k);
    tg.eject(1);
    auto hits = tg.spread(1000);
    EXPECT_EQ(hits[1], 0) << static_cast<int>(k);
    EXPECT_GT(hits[0], 0);
    EXPECT_GT(hits[2], 0);
  }
}

TEST(Select, EveryPolicySkipsTargetsThisRequestTried) {
  for (auto k : all_policies) {
    test_group tg({1, 1, 1}, k);
    std::array<std::size_t, 1> tried{0};
    auto hits = tg.spread(1000, tried);
    EXPECT_EQ(hits[0], 0) << static_cast<int>(k);
    EXPECT_EQ(hits[1] + hits[2], 1000);
  }
}

TEST(Select, CooldownOverMeansOneProbeThenNothingUntilItReports) {
  for (auto k : all_policies) {
    test_group tg({1, 1}, k);
    tg.eject(1);
    tg.now += 5s;
    auto s = tg.pick();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->index, 1u);
    EXPECT_TRUE(s->probe);
    EXPECT_EQ(tg.spread(100)[1], 0);  // the probe is out: everyone else goes to 0
    tg.h(1).report(outcome::success, tg.now);
    EXPECT_GT(tg.spread(100)[1], 0);
  }
}

TEST(Select, TriedTargetIsNotProbed) {
  test_group tg({1, 1});
  tg.eject(1);
  tg.now += 5s;
  std::array<std::size_t, 1> tried{1};
  auto s = tg.pick(tried);
  EXPECT_EQ(s->index, 0u);
  EXPECT_FALSE(s->probe);
  EXPECT_TRUE(tg.h(1).try_acquire_probe(tg.now));  // still there for the next request
}

TEST(Select, AllEjectedFallsBackToTheOneWhoseCooldownEndsFirst) {
  for (auto k : all_policies) {
    test_group tg({1, 1, 1}, k);
    tg.eject(2);  // until +5 s
    tg.now += 1s;
    tg.eject(0);  // until +6 s
    tg.now += 1s;
    tg.eject(1);  // until +7 s
    auto s = tg.pick();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->index, 2u);
    EXPECT_TRUE(s->fallback);
    EXPECT_FALSE(s->probe);
    std::array<std::size_t, 1> tried{2};
    EXPECT_EQ(tg.pick(tried)->index, 0u);
    std::array<std::size_t, 2> tried2{2, 0};
    EXPECT_EQ(tg.pick(tried2)->index, 1u);
  }
}

TEST(Select, FallbackAlsoWhenTheHealthyOnesWereTried) {
  test_group tg({1, 1, 1});
  tg.eject(1);
  tg.eject(2);
  std::array<std::size_t, 1> tried{0};
  auto s = tg.pick(tried);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->fallback);
  EXPECT_NE(s->index, 0u);
}

TEST(Select, EverythingTriedEndsFailover) {
  test_group tg({1, 1});
  std::array<std::size_t, 2> tried{0, 1};
  EXPECT_FALSE(tg.pick(tried));
  test_group empty({});
  EXPECT_FALSE(empty.pick());
}

TEST(Select, ThreadRngOverload) {
  test_group tg({1, 1}, policy_kind::least_inflight);
  for (int i = 0; i < 100; ++i) {
    auto s = select(tg.g, tg.now);
    ASSERT_TRUE(s);
    EXPECT_LT(s->index, 2u);
  }
}

}  // namespace
}  // namespace ob::routing
