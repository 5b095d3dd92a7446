// The in-memory backend's admission: order, all-or-nothing, settlement, targets, headers.
#include "limits/memory_backend.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace ob::limits {
namespace {

constexpr epoch_ms start = 1'796'046'300'000;  // 2026-11-30 13:45 UTC

struct fixture {
  state_registry reg;
  std::vector<std::shared_ptr<key_state>> keys{reg.key("k")};
  std::vector<std::shared_ptr<target_state>> targets{reg.target("a"), reg.target("b")};
  memory_backend be{keys, targets};
  key_demand key{0, "k", {}, {}};
  target_demand ta{0, "g/a@h", {}, {}};
  target_demand tb{1, "g/b@h", {}, {}};

  demand make(std::uint64_t in, std::uint64_t out, epoch_ms now,
              std::span<const target_demand> t = {}) {
    demand d;
    d.key = &key;
    d.targets = t;
    d.input_tokens = in;
    d.output_tokens = out;
    d.now = now;
    return d;
  }
};

TEST(MemoryBackend, NoLimitsAlwaysAdmitsWithNoHeaders) {
  fixture f;
  for (int i = 0; i < 100; ++i) {
    auto v = f.be.decide(f.make(10, 10, start));
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v.headers.limit_requests, -1);
    EXPECT_EQ(v.headers.limit_tokens, -1);
  }
}

TEST(MemoryBackend, RpmExactWithHeaders) {
  fixture f;
  f.key.limits.rpm = 5;
  for (int i = 0; i < 5; ++i) {
    auto v = f.be.decide(f.make(1, 1, start));
    ASSERT_TRUE(v.ok()) << i;
    EXPECT_EQ(v.headers.limit_requests, 5);
    EXPECT_EQ(v.headers.remaining_requests, 4 - i);
    f.be.settle_at(v.res, {1, 1}, start);
  }
  auto v = f.be.decide(f.make(1, 1, start));
  EXPECT_EQ(v.kind, refusal::rpm);
  EXPECT_EQ(v.retry_after_ms, 12'000);
  EXPECT_EQ(v.headers.remaining_requests, 0);
  EXPECT_FALSE(v.res.charged());
}

// A key's and a target's rpm run on the demand's microseconds: with no burst, requests 1.5 ms
// apart all pass rpm 40,000, and one 1 us early is refused.
TEST(MemoryBackend, RpmWithoutBurstOnTheMicrosecondClock) {
  fixture f;
  f.key.limits.rpm = 40'000;
  f.key.limits.burst = 1;
  f.ta.limits.rpm = 40'000;
  const target_demand ts[] = {f.ta};
  const std::int64_t us0 = start * us_per_ms;
  for (std::int64_t i = 0; i < 100; ++i) {
    auto d = f.make(1, 1, start + i * 1500 / 1000, ts);
    d.now_us = us0 + i * 1500;
    auto v = f.be.decide(d);
    ASSERT_TRUE(v.ok()) << i;
    f.be.settle_at(v.res, {1, 1}, d.now);
  }
  auto d = f.make(1, 1, start + 99 * 1500 / 1000 + 1, ts);
  d.now_us = us0 + 100 * 1500 - 1;
  EXPECT_EQ(f.be.decide(d).kind, refusal::rpm);
  d.now_us += 1;
  EXPECT_TRUE(f.be.decide(d).ok());
}

TEST(MemoryBackend, OrderStopsAtFirstRefusalWithoutCharging) {
  fixture f;
  f.key.limits = {.rpm = 10, .rpd = 0, .tpm = 100, .tpd = 0, .concurrency = 0, .burst = 0};
  // tpm refuses (est 200 > 100 is clamped to 100; take 100 first)
  auto first = f.be.decide(f.make(50, 50, start));
  ASSERT_TRUE(first.ok());
  auto refused = f.be.decide(f.make(50, 50, start));
  EXPECT_EQ(refused.kind, refusal::tpm);
  EXPECT_EQ(refused.retry_after_ms, 60'000);
  // The refusal charged no rpm: 9 requests are left after the first one.
  f.key.limits.tpm = 0;
  auto next = f.be.decide(f.make(1, 1, start));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next.headers.remaining_requests, 8);
}

TEST(MemoryBackend, BudgetBeforeConcurrencyBeforeRate) {
  fixture f;
  f.key.budget = {budget_unit::tokens, budget_period::day, 100};
  f.key.limits.concurrency = 1;
  f.key.limits.rpm = 1;
  auto a = f.be.decide(f.make(60, 60, start));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.res.budget_cost, 120u);
  // budget (120 reserved of 100) refuses first, though concurrency and rpm would too
  auto b = f.be.decide(f.make(1, 1, start));
  EXPECT_EQ(b.kind, refusal::budget);
  EXPECT_EQ(b.retry_after_ms, 1796083200000 - start);  // to the next UTC midnight
  f.be.release_at(a.res, start);
  auto c = f.be.decide(f.make(1, 1, start));
  EXPECT_EQ(c.kind, refusal::rpm);  // concurrency was returned by the release
  f.key.limits.rpm = 0;
  auto d = f.be.decide(f.make(1, 1, start));
  ASSERT_TRUE(d.ok());
  auto e = f.be.decide(f.make(1, 1, start));
  EXPECT_EQ(e.kind, refusal::concurrency);
}

TEST(MemoryBackend, BudgetSettlesActualUsageAndUnknownKeepsReservation) {
  fixture f;
  f.key.budget = {budget_unit::tokens, budget_period::month, 1000};
  auto a = f.be.decide(f.make(100, 100, start));
  ASSERT_TRUE(a.ok());
  f.be.settle_at(a.res, {30, 20}, start);
  auto u = f.be.peek(f.key, start);
  EXPECT_EQ(u.budget_used, 50u);
  EXPECT_EQ(u.budget_reserved, 0u);
  auto b = f.be.decide(f.make(100, 100, start));
  f.be.settle_at(b.res, {}, start);  // no usage reported
  u = f.be.peek(f.key, start);
  EXPECT_EQ(u.budget_used, 250u);
  EXPECT_EQ(u.budget_period_start, 1793491200000);
  EXPECT_EQ(u.budget_period_end, 1796083200000);
}

TEST(MemoryBackend, UsdBudgetUsesTheChosenTargetsPrice) {
  fixture f;
  f.key.budget = {budget_unit::usd, budget_period::day, 1'000'000};  // 1 USD
  f.ta.price = {2'000'000, 8'000'000};
  target_demand ts[] = {f.ta};
  auto a = f.be.decide(f.make(1000, 1000, start, ts));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.res.budget_cost, 10'000u);  // 1000*2 + 1000*8 micro-dollars
  f.be.settle_at(a.res, {500, 100}, start);
  EXPECT_EQ(f.be.peek(f.key, start).budget_used, 1'800u);
}

TEST(MemoryBackend, UsdBudgetOfAKeyAdmittedWithoutTargetIsChargedTheServedCost) {
  // The request path admits the key before a target is chosen: no price at admission, the
  // settlement carries the cost at the provider that answered.
  fixture f;
  f.key.budget = {budget_unit::usd, budget_period::day, 1'000'000};  // 1 USD
  auto a = f.be.decide(f.make(1000, 1000, start));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.res.budget_cost, 0u);
  usage u{500, 100};
  u.usd_micros = 1'800;
  f.be.settle_at(a.res, u, start);
  EXPECT_EQ(f.be.peek(f.key, start).budget_used, 1'800u);
}

TEST(MemoryBackend, TpmSettlementReturnsUnusedTokens) {
  fixture f;
  f.key.limits.tpm = 1000;
  auto a = f.be.decide(f.make(100, 900, start));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.headers.remaining_tokens, 0);
  EXPECT_EQ(f.be.decide(f.make(1, 1, start)).kind, refusal::tpm);
  f.be.settle_at(a.res, {100, 50}, start);
  EXPECT_EQ(f.be.peek(f.key, start).tpm_remaining, 850);
  auto b = f.be.decide(f.make(1, 1, start));
  ASSERT_TRUE(b.ok());
  f.be.release_at(b.res, start);
  EXPECT_EQ(f.be.peek(f.key, start).tpm_remaining, 850);
}

// An estimate above the bucket's capacity reserved only the capacity; an answer without usage
// (a client abort, a cut stream) is charged that, as the Redis scripts do, not the estimate
// (which left the level thousands of tokens below zero: minutes of refusals).
TEST(MemoryBackend, UnknownUsageChargesWhatWasReservedNotTheEstimate) {
  fixture f;
  f.key.limits.tpm = 1000;
  f.ta.limits.tpm = 1000;
  target_demand ts[] = {f.ta};
  auto a = f.be.decide(f.make(10, 5000, start, ts));
  ASSERT_TRUE(a.ok());
  f.be.settle_at(a.res, {}, start);
  EXPECT_EQ(f.be.peek(f.key, start).tpm_remaining, 0);
  // A second later 1000/60 tokens came back: a small request fits again, on the target too.
  auto b = f.be.decide(f.make(5, 5, start + 1000, ts));
  EXPECT_TRUE(b.ok()) << static_cast<int>(b.kind);
}

// A token count (/v1/messages/count_tokens, /v1/responses/input_tokens) demands no tokens: it
// is one request for rpm and leaves the token bucket and the budget as they were, also when its
// answer (which has no usage) keeps the reservation as the charge. A key with nothing left is
// still refused: its budget used up, or its bucket in debt after a settlement over the estimate.
TEST(MemoryBackend, ZeroTokenDemandCountsOnlyAsARequest) {
  fixture f;
  f.key.limits.rpm = 10;
  f.key.limits.tpm = 1000;
  f.key.budget = {budget_unit::tokens, budget_period::day, 1000};
  auto a = f.be.decide(f.make(0, 0, start));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.headers.remaining_tokens, 1000);
  EXPECT_EQ(a.headers.remaining_requests, 9);
  f.be.settle_at(a.res, {}, start);  // no usage reported
  auto u = f.be.peek(f.key, start);
  EXPECT_EQ(u.tpm_remaining, 1000);
  EXPECT_EQ(u.budget_used, 0u);
  EXPECT_EQ(u.budget_reserved, 0u);
  EXPECT_EQ(u.rpm_remaining, 9);
  // A generation that used more than its estimate: the bucket and the budget are past empty.
  auto g = f.be.decide(f.make(10, 10, start));
  ASSERT_TRUE(g.ok());
  f.be.settle_at(g.res, {1500, 0}, start);
  auto refused = f.be.decide(f.make(0, 0, start));
  EXPECT_EQ(refused.kind, refusal::budget);
  f.key.budget = {};
  EXPECT_EQ(f.be.decide(f.make(0, 0, start)).kind, refusal::tpm);
}

TEST(MemoryBackend, TargetsAtTheirLimitAreSkippedThenAllFull) {
  fixture f;
  f.ta.limits.concurrency = 1;
  f.tb.limits.rpm = 1;
  target_demand ts[] = {f.ta, f.tb};
  auto a = f.be.decide(f.make(1, 1, start, ts));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.target, 0);
  auto b = f.be.decide(f.make(1, 1, start, ts));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.target, 1);  // a is at its concurrency
  auto c = f.be.decide(f.make(1, 1, start, ts));
  EXPECT_EQ(c.kind, refusal::targets_full);
  EXPECT_GT(c.retry_after_ms, 0);
  f.be.settle_at(a.res, {1, 1}, start);
  auto d = f.be.decide(f.make(1, 1, start, ts));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.target, 0);
}

TEST(MemoryBackend, KeyIsNotChargedWhenEveryTargetIsFull) {
  fixture f;
  f.key.limits.rpm = 2;
  f.ta.limits.concurrency = 1;
  target_demand ts[] = {f.ta};
  ASSERT_TRUE(f.be.decide(f.make(1, 1, start, ts)).ok());
  EXPECT_EQ(f.be.decide(f.make(1, 1, start, ts)).kind, refusal::targets_full);
  EXPECT_EQ(f.be.peek(f.key, start).rpm_remaining, 1);
}

TEST(MemoryBackend, StateSurvivesANewBackendForTheSameName) {
  fixture f;
  f.key.limits.rpm = 2;
  ASSERT_TRUE(f.be.decide(f.make(1, 1, start)).ok());
  // A reload builds a new backend from the same registry.
  memory_backend again({f.reg.key("k")}, {});
  auto v = again.decide(f.make(1, 1, start));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.headers.remaining_requests, 0);
  EXPECT_EQ(again.decide(f.make(1, 1, start)).kind, refusal::rpm);
  // New limits apply to the next request; the requests counted so far stay counted.
  f.key.limits.rpm = 3;
  auto w = again.decide(f.make(1, 1, start));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.headers.remaining_requests, 0);
  EXPECT_EQ(again.decide(f.make(1, 1, start)).kind, refusal::rpm);
  f.key.limits.rpm = 2;
  EXPECT_EQ(again.decide(f.make(1, 1, start)).kind, refusal::rpm);
}

TEST(MemoryBackend, ConcurrentAdmissionIsExact) {
  fixture f;
  f.key.limits.rpm = 1000;
  std::atomic<int> ok{0};
  auto run = [&] {
    for (int i = 0; i < 1000; ++i)
      if (f.be.decide(f.make(1, 1, start)).ok()) ++ok;
  };
  std::thread a(run), b(run);
  a.join();
  b.join();
  EXPECT_EQ(ok.load(), 1000);
}

}  // namespace
}  // namespace ob::limits
