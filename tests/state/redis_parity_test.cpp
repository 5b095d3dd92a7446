// The same scripted sequence through the Redis backend (admit.lua / settle.lua) and through the
// spec written out in C++ (spec_model.hpp): every verdict must be the same.
#include <gtest/gtest.h>

#include "state/backend_fixture.hpp"
#include "state/spec_model.hpp"

namespace ob::state {
namespace {

class RedisParity : public test::BackendFixture {};

TEST_F(RedisParity, ScriptedSequenceGivesTheSpecsVerdicts) {
  connect();
  using limits::budget_period;
  using limits::budget_unit;
  const limits::key_demand keys[] = {
      {0,
       "p1",
       {.rpm = 5, .tpm = 2000, .concurrency = 3, .burst = 2},
       {budget_unit::tokens, budget_period::day, 20'000}},
      {1, "p2", {.rpd = 50, .tpd = 30'000}, {budget_unit::usd, budget_period::month, 3000}},
      {2, "p3", {.rpm = 30, .rpd = 100, .tpm = 5000, .tpd = 50'000, .concurrency = 2}, {}},
      {3, "p4", {}, {budget_unit::tokens, budget_period::week, 6000}},
  };
  const limits::target_demand one[] = {
      {0, "g/t1@h", {.rpm = 4, .tpm = 3000, .concurrency = 2}, {1'000'000, 4'000'000}}};
  const limits::target_demand two[] = {
      {0, "g/t1@h", {.rpm = 4, .tpm = 3000, .concurrency = 2}, {1'000'000, 4'000'000}},
      {1, "g/t2@h", {.rpm = 10}, {500'000, 1'500'000}}};

  test::spec_model model;
  std::uint64_t seed = 12345;
  auto rnd = [&](std::uint64_t n) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % n;
  };
  struct held {
    limits::reservation redis, model;
  };
  std::vector<held> outstanding;
  int admitted = 0, refused = 0, settled = 0;
  for (int step = 0; step < 600; ++step) {
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
      auto v = admit(d);
      auto m = model.admit(d, now, v.res.lease);
      SCOPED_TRACE("step " + std::to_string(step));
      ASSERT_EQ(static_cast<int>(v.kind), static_cast<int>(m.kind));
      EXPECT_EQ(v.retry_after_ms, m.retry_after_ms);
      EXPECT_EQ(v.target, m.target);
      EXPECT_EQ(v.headers.limit_requests, m.headers.limit_requests);
      EXPECT_EQ(v.headers.remaining_requests, m.headers.remaining_requests);
      EXPECT_EQ(v.headers.reset_requests_ms, m.headers.reset_requests_ms);
      EXPECT_EQ(v.headers.limit_tokens, m.headers.limit_tokens);
      EXPECT_NEAR(v.headers.remaining_tokens, m.headers.remaining_tokens, 1);
      EXPECT_NEAR(v.headers.reset_tokens_ms, m.headers.reset_tokens_ms, 1);
      if (v.ok()) {
        ++admitted;
        EXPECT_EQ(v.res.budget_cost, m.res.budget_cost);
        if (d.key && d.key->budget.unit != budget_unit::none) {
          EXPECT_EQ(v.res.budget_period_start, m.res.budget_period_start);
        }
        outstanding.push_back({v.res, m.res});
      } else {
        ++refused;
      }
    } else if (op < 90 && !outstanding.empty()) {
      std::size_t i = rnd(outstanding.size());
      held h = outstanding[i];
      outstanding.erase(outstanding.begin() + static_cast<long>(i));
      std::uint64_t how = rnd(4);
      if (how == 0) {
        backend->release(h.redis);
        model.finish(h.model, nullptr, now);
      } else {
        limits::usage u;
        if (how != 1)
          u = {static_cast<std::int64_t>(rnd(900)), static_cast<std::int64_t>(rnd(2000))};
        backend->settle(h.redis, u);
        model.finish(h.model, &u, now);
      }
      ++settled;
    }
    // The clock: mostly small steps, sometimes minutes, now and then a day.
    std::uint64_t jump = rnd(100);
    now += jump < 80   ? static_cast<limits::epoch_ms>(rnd(3000))
           : jump < 98 ? static_cast<limits::epoch_ms>(rnd(120'000))
                       : 86'400'000;
    sync();
  }
  // The sequence exercised both answers and the settlements.
  EXPECT_GT(admitted, 150);
  EXPECT_GT(refused, 50);
  EXPECT_GT(settled, 80);
}

}  // namespace
}  // namespace ob::state
