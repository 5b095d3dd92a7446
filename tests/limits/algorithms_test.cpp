// The shared limit arithmetic with a fake clock (plain epoch milliseconds).
#include "limits/algorithms.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ob::limits {
namespace {

constexpr epoch_ms t0 = 1'800'000'000'000;  // any instant

// Epoch ms of a UTC date (checked against `date -u -d ... +%s`).
constexpr epoch_ms ms(std::int64_t s) {
  return s * 1000;
}

TEST(Gcra, ParamsFollowTheSpec) {  // in microseconds
  auto p = make_gcra(5, minute_ms, 0);
  EXPECT_EQ(p.interval, 12'000'000);
  EXPECT_EQ(p.tolerance, 4 * 12'000'000);
  auto q = make_gcra(7, minute_ms, 0);  // 60,000,000 / 7 = 8,571,428.57 us -> rounded up
  EXPECT_EQ(q.interval, 8'571'429);
  auto r = make_gcra(1'000'000, minute_ms, 0);
  EXPECT_EQ(r.interval, 60);
  auto tiny = make_gcra(1'000'000'000'000, minute_ms, 0);  // never below 1 us
  EXPECT_EQ(tiny.interval, 1);
  auto b = make_gcra(60, minute_ms, 10);
  EXPECT_EQ(b.tolerance, 9 * 1'000'000);
  // A burst far beyond the limit cannot overflow the window.
  auto huge = make_gcra(1, day_ms, 1'000'000'000'000);
  EXPECT_GT(huge.tolerance, 0);
  auto h = gcra_check(huge, 0, t0);
  EXPECT_TRUE(h.allowed);
  EXPECT_GT(h.remaining, 0);
}

// The sustained rate is the limit, also where the period is not a whole number of
// milliseconds per request (with a millisecond interval, rpm 40,000 gave 30,000 a minute and
// every rpm above 60,000 gave 60,000).
TEST(Gcra, SustainedRateIsTheLimitWhateverTheInterval) {
  constexpr std::uint64_t burst = 1000;
  for (std::uint64_t rpm : {7'000ull, 40'000ull, 100'000ull, 250'000ull}) {
    auto p = make_gcra(rpm, minute_ms, burst);
    std::int64_t tat = 0;
    std::uint64_t admitted = 0;
    // Every ms of one minute (both ends), as many requests as pass.
    for (epoch_ms now = t0; now <= t0 + minute_ms; ++now) {
      for (;;) {
        auto r = gcra_check(p, tat, now);
        if (!r.allowed) break;
        tat = r.tat;
        ++admitted;
      }
    }
    // The burst at once, then the limit over the minute (less one where the interval was
    // rounded up to the next microsecond).
    EXPECT_GE(admitted, rpm + burst - 1) << rpm;
    EXPECT_LE(admitted, rpm + burst) << rpm;
  }
}

TEST(Gcra, FiveThenRefusedWithRetryAfterAndHeaders) {
  auto p = make_gcra(5, minute_ms, 0);
  std::int64_t tat = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = gcra_check(p, tat, t0);
    ASSERT_TRUE(r.allowed) << i;
    EXPECT_EQ(r.remaining, 4 - i);
    EXPECT_EQ(r.reset, (i + 1) * 12'000);
    tat = r.tat;
  }
  auto r = gcra_check(p, tat, t0);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.retry_after, 12'000);
  EXPECT_EQ(r.remaining, 0);
  EXPECT_EQ(r.reset, 60'000);
  // One interval later exactly one more fits.
  auto later = gcra_check(p, tat, t0 + 12'000);
  EXPECT_TRUE(later.allowed);
  EXPECT_EQ(later.remaining, 0);
  EXPECT_FALSE(gcra_check(p, later.tat, t0 + 12'000).allowed);
  // 1 ms early is still refused, with 1 ms to wait.
  auto early = gcra_check(p, tat, t0 + 11'999);
  EXPECT_FALSE(early.allowed);
  EXPECT_EQ(early.retry_after, 1);
}

TEST(Gcra, BurstSmallerThanLimitSpacesRequests) {
  auto p = make_gcra(60, minute_ms, 1);  // no burst: one per second
  auto a = gcra_check(p, 0, t0);
  ASSERT_TRUE(a.allowed);
  EXPECT_EQ(a.remaining, 0);
  auto b = gcra_check(p, a.tat, t0 + 500);
  EXPECT_FALSE(b.allowed);
  EXPECT_EQ(b.retry_after, 500);
  EXPECT_TRUE(gcra_check(p, a.tat, t0 + 1000).allowed);
}

// Requests spaced by the interval pass on a microsecond clock, also where the interval is not
// a whole number of milliseconds (rpm 40,000: 1.5 ms) and there is no burst; a microsecond
// early is refused. On a millisecond clock they could only be spaced in whole ms.
TEST(Gcra, NoBurstSpacesRequestsInMicroseconds) {
  auto p = make_gcra(40'000, minute_ms, 1);
  ASSERT_EQ(p.interval, 1500);
  const epoch_us start = epoch_us::of_ms(t0);
  std::int64_t tat = 0;
  int admitted = 0;
  for (std::int64_t i = 0; i < 40'000; ++i) {  // one minute at the limit
    auto r = gcra_check(p, tat, epoch_us{start.us + i * 1500});
    if (!r.allowed) continue;
    tat = r.tat;
    ++admitted;
  }
  EXPECT_EQ(admitted, 40'000);
  EXPECT_FALSE(gcra_check(p, tat, epoch_us{tat - 1}).allowed);
  EXPECT_TRUE(gcra_check(p, tat, epoch_us{tat}).allowed);
  EXPECT_EQ(gcra_remaining(p, tat, epoch_us{tat}), 1);
  EXPECT_EQ(gcra_remaining(p, tat, epoch_us{tat - 1}), 0);
}

TEST(Gcra, IdleStateIsLikeNew) {
  auto p = make_gcra(5, minute_ms, 0);
  std::int64_t tat = (t0 + 60'000) * us_per_ms;  // full at t0
  auto r = gcra_check(p, tat, t0 + 10 * 60'000);
  EXPECT_TRUE(r.allowed);
  EXPECT_EQ(r.remaining, 4);
}

TEST(Bucket, ReserveSettleRelease) {
  auto p = make_bucket(1000, minute_ms);
  token_bucket b;
  auto r = bucket_take(p, b, 300, t0);
  ASSERT_TRUE(r.allowed);
  EXPECT_EQ(r.charged, 300u);
  EXPECT_EQ(bucket_remaining(b), 700);
  // Actual usage 100: 200 come back.
  bucket_settle(p, b, 300, 100, t0);
  EXPECT_EQ(bucket_remaining(b), 900);
  EXPECT_EQ(bucket_reset_ms(p, b), 6000);  // 100 tokens at 1000/60000 per ms
  // Release gives everything back, never above C.
  auto r2 = bucket_take(p, b, 500, t0);
  ASSERT_TRUE(r2.allowed);
  bucket_release(p, b, 500, t0);
  EXPECT_EQ(bucket_remaining(b), 900);
  bucket_release(p, b, 500, t0);
  EXPECT_EQ(bucket_remaining(b), 1000);
}

TEST(Bucket, RefusalRetryAfterAndDebt) {
  auto p = make_bucket(600, minute_ms);  // 10 tokens per second
  token_bucket b;
  ASSERT_TRUE(bucket_take(p, b, 600, t0).allowed);
  auto r = bucket_take(p, b, 100, t0);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.retry_after, 10'000);
  // Actual usage beyond the reservation: debt that refill pays off.
  bucket_settle(p, b, 600, 900, t0);
  EXPECT_EQ(bucket_remaining(b), 0);
  EXPECT_LT(b.level, -299.0);
  auto r2 = bucket_take(p, b, 100, t0);
  EXPECT_EQ(r2.retry_after, 40'000);
  EXPECT_TRUE(bucket_take(p, b, 100, t0 + 40'000).allowed);
}

TEST(Bucket, RequestLargerThanTheBucketPassesWhenFull) {
  auto p = make_bucket(100, minute_ms);
  token_bucket b;
  auto r = bucket_take(p, b, 5000, t0);
  EXPECT_TRUE(r.allowed);
  EXPECT_EQ(r.charged, 100u);
  EXPECT_FALSE(bucket_take(p, b, 5000, t0 + 1000).allowed);
}

TEST(Bucket, RefillIsProportionalAndCapped) {
  auto p = make_bucket(60, minute_ms);
  token_bucket b;
  ASSERT_TRUE(bucket_take(p, b, 60, t0).allowed);
  bucket_refill(p, b, t0 + 30'000);
  EXPECT_EQ(bucket_remaining(b), 30);
  bucket_refill(p, b, t0 + 600'000);
  EXPECT_EQ(bucket_remaining(b), 60);
  EXPECT_EQ(bucket_reset_ms(p, b), 0);
}

struct period_case {
  const char* name;
  budget_period period;
  epoch_ms now, start, next;
};

TEST(Budget, CalendarPeriodsInUtc) {
  const period_case cases[] = {
      // date -u -d '2026-11-30 13:45:00' +%s = 1796046300
      {"day", budget_period::day, ms(1796046300), ms(1795996800), ms(1796083200)},
      {"day at midnight", budget_period::day, ms(1795996800), ms(1795996800), ms(1796083200)},
      {"day last ms", budget_period::day, ms(1796083200) - 1, ms(1795996800), ms(1796083200)},
      // 2026-11-30 is a Monday
      {"week on monday", budget_period::week, ms(1796046300), ms(1795996800), ms(1796601600)},
      // 2026-12-06 23:59:59 Sunday -> same week
      {"week on sunday", budget_period::week, ms(1796601599), ms(1795996800), ms(1796601600)},
      // 1970-01-01 Thursday: its week began Monday 1969-12-29
      {"week before epoch", budget_period::week, 0, ms(-259200), ms(345600)},
      {"month", budget_period::month, ms(1796046300), ms(1793491200), ms(1796083200)},
      // Dec -> Jan: 2026-12-31 23:59:59 -> start 2026-12-01, next 2027-01-01
      {"december", budget_period::month, ms(1798761599), ms(1796083200), ms(1798761600)},
      {"january 1st", budget_period::month, ms(1798761600), ms(1798761600), ms(1801440000)},
      // leap year: 2024-02-29 12:00 -> Feb 1, Mar 1
      {"leap february", budget_period::month, ms(1709208000), ms(1706745600), ms(1709251200)},
      {"leap day", budget_period::day, ms(1709208000), ms(1709164800), ms(1709251200)},
      // 2100 is not a leap year: 2100-02-28 -> next month 2100-03-01
      {"2100 february", budget_period::month, ms(4107456000), ms(4105123200), ms(4107542400)},
      // ISO week across a year: Fri 2027-01-01 belongs to the week of Mon 2026-12-28
      {"week across new year", budget_period::week, ms(1798761600), ms(1798416000), ms(1799020800)},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(period_start(c.period, c.now), c.start) << c.name;
    EXPECT_EQ(next_period_start(c.period, c.now), c.next) << c.name;
  }
}

TEST(Budget, ReservedAndUsedRollWithThePeriod) {
  budget_state s;
  const epoch_ms day1 = ms(1796046300);
  budget_roll(s, budget_period::day, day1);
  EXPECT_TRUE(budget_has_room(s, 100));
  s.reserved += 60;
  EXPECT_TRUE(budget_has_room(s, 100));
  s.reserved += 60;  // 120 reserved: overshoot is bounded by reservations in flight
  EXPECT_FALSE(budget_has_room(s, 100));
  budget_settle(s, s.start, 60, 10);
  EXPECT_EQ(s.used, 10u);
  EXPECT_EQ(s.reserved, 60u);
  EXPECT_TRUE(budget_has_room(s, 100));
  budget_release(s, s.start, 60);
  EXPECT_EQ(s.reserved, 0u);
  auto old_start = s.start;
  s.used = 100;
  EXPECT_FALSE(budget_has_room(s, 100));
  budget_roll(s, budget_period::day, day1 + day_ms);
  EXPECT_TRUE(budget_has_room(s, 100));
  EXPECT_EQ(s.used, 0u);
  // A reservation of the previous period settles into nothing.
  budget_settle(s, old_start, 60, 50);
  EXPECT_EQ(s.used, 0u);
}

TEST(Cost, UsdMicroDollarsRoundedUp) {
  price p{1'250'000, 10'000'000};  // 1.25 / 10 USD per million
  EXPECT_EQ(usd_cost(p, 1'000'000, 0), 1'250'000u);
  EXPECT_EQ(usd_cost(p, 1, 0), 2u);  // 1.25 micro-dollars -> 2
  EXPECT_EQ(usd_cost(p, 0, 100), 1000u);
  EXPECT_EQ(usd_cost(p, 0, 0), 0u);
  EXPECT_EQ(usd_cost(price{~0ull, ~0ull}, ~0ull, ~0ull), ~0ull);  // saturates
  EXPECT_EQ(input_estimate(0), 0u);
  EXPECT_EQ(input_estimate(1), 1u);
  EXPECT_EQ(input_estimate(8), 2u);
  EXPECT_EQ(input_estimate(9), 3u);
}

TEST(Duration, OpenAiFormat) {
  char buf[32];
  auto f = [&](std::int64_t v) { return std::string(buf, format_duration(v, buf)); };
  EXPECT_EQ(f(0), "0ms");
  EXPECT_EQ(f(120), "120ms");
  EXPECT_EQ(f(1000), "1s");
  EXPECT_EQ(f(1500), "1.5s");
  EXPECT_EQ(f(12'000), "12s");
  EXPECT_EQ(f(360'000), "6m0s");
  EXPECT_EQ(f(3'723'000), "1h2m3s");
  EXPECT_EQ(f(-5), "0ms");
}

}  // namespace
}  // namespace ob::limits
