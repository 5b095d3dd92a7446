// The same scripted sequence through the Redis backend and through the in-memory backend
// (src/limits/memory_backend.*, the reference every deployment without Redis runs): verdicts,
// retry_after and the x-ratelimit numbers must agree.
//
// Differences by design, kept out of the sequence: a concurrency slot is a lease that expires
// after 30 s in Redis and a counter in memory (every reservation here settles within 25 s), and
// a concurrency refusal's retry_after (the first lease's expiry in Redis, 1 s in memory).
// A refusal's headers: Redis computes every limit's numbers, memory stops at the refusing one;
// only admitted answers' headers are compared.
#include <gtest/gtest.h>

#include "limits/memory_backend.hpp"
#include "state/backend_fixture.hpp"

namespace ob::state {
namespace {

class RedisMemoryParity : public test::BackendFixture {};

TEST_F(RedisMemoryParity, ScriptedSequenceGivesTheInMemoryVerdicts) {
  connect();
  using limits::budget_period;
  using limits::budget_unit;
  using limits::refusal;
  const limits::key_demand keys[] = {
      {0,
       "m1",
       {.rpm = 5, .tpm = 2000, .concurrency = 3, .burst = 2},
       {budget_unit::tokens, budget_period::day, 20'000}},
      {1, "m2", {.rpd = 50, .tpd = 30'000}, {budget_unit::usd, budget_period::month, 3000}},
      {2, "m3", {.rpm = 30, .rpd = 100, .tpm = 5000, .tpd = 50'000, .concurrency = 2}, {}},
      {3, "m4", {}, {budget_unit::tokens, budget_period::week, 6000}},
  };
  const limits::target_demand one[] = {
      {0, "g/m1@h", {.rpm = 4, .tpm = 3000, .concurrency = 2}, {1'000'000, 4'000'000}}};
  const limits::target_demand two[] = {
      {0, "g/m1@h", {.rpm = 4, .tpm = 3000, .concurrency = 2}, {1'000'000, 4'000'000}},
      {1, "g/m2@h", {.rpm = 10}, {500'000, 1'500'000}}};
  std::vector<std::shared_ptr<limits::key_state>> ks;
  for (int i = 0; i < 4; ++i) ks.push_back(std::make_shared<limits::key_state>());
  limits::memory_backend memory(
      ks, {std::make_shared<limits::target_state>(), std::make_shared<limits::target_state>()});

  std::uint64_t seed = 777;
  auto rnd = [&](std::uint64_t n) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % n;
  };
  struct held {
    limits::reservation redis, mem;
    limits::epoch_ms at;
  };
  std::vector<held> outstanding;
  int admitted = 0, refused = 0, settled = 0;
  auto finish = [&](std::size_t i) {
    held h = outstanding[i];
    outstanding.erase(outstanding.begin() + static_cast<long>(i));
    std::uint64_t how = rnd(4);
    if (how == 0) {
      backend->release(h.redis);
      memory.release_at(h.mem, now);
    } else {
      limits::usage u;  // unknown usage when how == 1 (both charge what each bucket reserved)
      if (how != 1) u = {static_cast<std::int64_t>(rnd(900)), static_cast<std::int64_t>(rnd(2000))};
      backend->settle(h.redis, u);
      memory.settle_at(h.mem, u, now);
    }
    ++settled;
  };
  for (int step = 0; step < 600; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    std::uint64_t op = rnd(100);
    if (op < 65) {
      limits::demand d;
      std::uint64_t which = rnd(5);
      d.key = which < 4 ? &keys[which] : nullptr;
      std::uint64_t tg = rnd(3);
      if (tg == 1) d.targets = one;
      if (tg == 2) d.targets = two;
      d.input_tokens = rnd(800);
      d.output_tokens = rnd(1500);
      d.now = now;
      auto v = admit(d);
      auto m = memory.decide(d);
      ASSERT_EQ(static_cast<int>(v.kind), static_cast<int>(m.kind));
      if (v.kind != refusal::concurrency && v.kind != refusal::targets_full) {
        EXPECT_EQ(v.retry_after_ms, m.retry_after_ms);
      }
      EXPECT_EQ(v.target, m.target);
      if (v.ok()) {
        EXPECT_EQ(v.headers.limit_requests, m.headers.limit_requests);
        EXPECT_EQ(v.headers.remaining_requests, m.headers.remaining_requests);
        EXPECT_EQ(v.headers.reset_requests_ms, m.headers.reset_requests_ms);
        EXPECT_EQ(v.headers.limit_tokens, m.headers.limit_tokens);
        EXPECT_NEAR(v.headers.remaining_tokens, m.headers.remaining_tokens, 1);
        EXPECT_NEAR(v.headers.reset_tokens_ms, m.headers.reset_tokens_ms, 1);
        EXPECT_EQ(v.res.budget_cost, m.res.budget_cost);
        if (d.key && d.key->budget.unit != budget_unit::none) {
          EXPECT_EQ(v.res.budget_period_start, m.res.budget_period_start);
        }
        ++admitted;
        outstanding.push_back({v.res, m.res, now});
      } else {
        ++refused;
      }
    } else if (op < 90 && !outstanding.empty()) {
      finish(rnd(outstanding.size()));
    }
    std::uint64_t jump = rnd(100);
    limits::epoch_ms dt = jump < 80   ? static_cast<limits::epoch_ms>(rnd(3000))
                          : jump < 98 ? static_cast<limits::epoch_ms>(rnd(120'000))
                                      : 86'400'000;
    // Every reservation ends within 25 s (leases never expire here).
    for (std::size_t i = 0; i < outstanding.size();) {
      if (now + dt - outstanding[i].at >= 25'000)
        finish(i);
      else
        ++i;
    }
    now += dt;
    sync();
  }
  EXPECT_GT(admitted, 150);
  EXPECT_GT(refused, 50);
  EXPECT_GT(settled, 80);
}

}  // namespace
}  // namespace ob::state
