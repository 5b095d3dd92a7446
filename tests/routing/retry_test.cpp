#include "routing/retry.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <thread>
#include <vector>

namespace ob::routing {
namespace {

using namespace std::chrono_literals;
using std::chrono::sys_days;
using std::chrono::system_clock;

struct classification {
  failure_kind kind;
  int status;
  bool retry;
  std::optional<outcome> health;
};

TEST(Retry, ClassificationOfEveryKind) {
  const classification table[] = {
      {failure_kind::connect, 0, true, outcome::failure},
      {failure_kind::tls, 0, true, outcome::failure},
      {failure_kind::timeout_before_first_byte, 0, true, outcome::failure},
      {failure_kind::reset_before_first_byte, 0, true, outcome::failure},
      {failure_kind::stream_error_event_first, 0, true, outcome::failure},
      {failure_kind::after_first_byte, 0, false, outcome::failure},
      {failure_kind::client_error, 0, false, std::nullopt},
      {failure_kind::status, 429, true, outcome::rate_limited},
      {failure_kind::status, 503, true, outcome::overloaded},
      {failure_kind::status, 529, true, outcome::overloaded},
      {failure_kind::status, 500, true, outcome::failure},
      {failure_kind::status, 502, true, outcome::failure},
      {failure_kind::status, 504, true, outcome::failure},
      {failure_kind::status, 599, true, outcome::failure},
      {failure_kind::status, 408, true, outcome::failure},
      {failure_kind::status, 409, true, outcome::success},
      {failure_kind::status, 400, false, outcome::success},
      {failure_kind::status, 401, false, outcome::failure},  // the target's key
      {failure_kind::status, 403, false, outcome::failure},
      {failure_kind::status, 404, false, outcome::success},
      {failure_kind::status, 413, false, outcome::success},
      {failure_kind::status, 422, false, outcome::success},
      {failure_kind::status, 200, false, outcome::success},
  };
  for (const auto& c : table) {
    SCOPED_TRACE(::testing::Message()
                 << "kind " << static_cast<int>(c.kind) << " status " << c.status);
    EXPECT_EQ(retryable(c.kind, c.status), c.retry);
    EXPECT_EQ(health_outcome(c.kind, c.status), c.health);
  }
}

TEST(Retry, AfterTheFirstByteNothingIsRetryableWhateverTheStatus) {
  EXPECT_FALSE(retryable(failure_kind::after_first_byte, 503));
  EXPECT_FALSE(retryable(failure_kind::client_error, 502));
}

const time_point t0 = time_point{} + 1h;

TEST(RetryBudget, QuietProcessGetsTheMinimum) {
  retry_budget b;  // 3/s over 10 s = 30
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(b.try_retry(t0)) << i;
  EXPECT_FALSE(b.try_retry(t0));
}

TEST(RetryBudget, HoldsUnderABurstAndGrowsWithRequests) {
  retry_budget b;
  for (int i = 0; i < 100; ++i) b.record_request(t0);
  int allowed = 0;
  for (int i = 0; i < 1000; ++i) allowed += b.try_retry(t0 + 1ms * i);
  EXPECT_EQ(allowed, 50);  // 30 + 0.2 * 100
  b.record_request(t0 + 2s);
  for (int i = 0; i < 4; ++i) b.record_request(t0 + 2s);
  EXPECT_TRUE(b.try_retry(t0 + 2s));  // 5 more requests earn 1 more retry
  EXPECT_FALSE(b.try_retry(t0 + 2s));
}

TEST(RetryBudget, RefillsAfterTheWindow) {
  retry_budget b;
  while (b.try_retry(t0)) {
  }
  EXPECT_FALSE(b.try_retry(t0 + 9s));
  EXPECT_TRUE(b.try_retry(t0 + 10s));  // the burst slid out
}

TEST(RetryBudget, CustomOptions) {
  retry_budget b({.ratio = 0.5, .min_per_second = 0, .window = 1s});
  EXPECT_FALSE(b.try_retry(t0));  // no requests, no floor: no retries
  b.record_request(t0);
  b.record_request(t0);
  EXPECT_TRUE(b.try_retry(t0));
  EXPECT_FALSE(b.try_retry(t0));
}

TEST(RetryBudget, ExactUnderConcurrentSpending) {
  retry_budget b;
  constexpr int threads = 4;
  std::latch start(threads);
  std::atomic<int> allowed{0};
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&] {
      start.arrive_and_wait();
      for (int k = 0; k < 100; ++k) allowed += b.try_retry(t0);
    });
  for (auto& t : pool) t.join();
  EXPECT_EQ(allowed.load(), 30);
}

struct retry_after_case {
  const char* value;
  std::optional<millis> expected;
};

TEST(RetryAfter, ParsesDeltaSecondsAndHttpDates) {
  // 1994-11-06 08:49:00 GMT, 37 s before the RFC's example date.
  const auto now =
      system_clock::time_point(sys_days(std::chrono::year(1994) / 11 / 6) + 8h + 49min);
  const retry_after_case table[] = {
      {"120", 120s},
      {" 5 ", 5s},
      {"0", 0ms},
      {"1.5", 1500ms},
      {"300", 300s},
      {"301", 300s},  // capped
      {"99999999999999999999999", 300s},
      {"", std::nullopt},
      {"   ", std::nullopt},
      {"-1", std::nullopt},
      {"5s", std::nullopt},
      {"1.2.3", std::nullopt},
      {"soon", std::nullopt},
      {"Sun, 06 Nov 1994 08:49:37 GMT", 37s},   // IMF-fixdate
      {"Sunday, 06-Nov-94 08:49:37 GMT", 37s},  // RFC 850
      {"Sun Nov  6 08:49:37 1994", 37s},        // asctime
      {"Sun Nov 16 08:49:37 1994", 300s},       // 10 days away: capped
      {"Sun, 06 Nov 1994 08:48:00 GMT", 0ms},   // already past
      {"Sat, 05 Nov 1994 08:49:37 GMT", 0ms},
      {"Mon, 07 Nov 1994 08:49:37 GMT", 300s},
      {"Sun, 06 Nov 1994 08:49:37", std::nullopt},      // no zone
      {"Sun, 06 Nov 1994 08:49:37 UTC", std::nullopt},  // only GMT is HTTP
      {"Sun, 31 Feb 1994 08:49:37 GMT", std::nullopt},  // no such day
      {"Sun, 06 Foo 1994 08:49:37 GMT", std::nullopt},
      {"Sun, 06 Nov 1994 24:00:00 GMT", std::nullopt},
      {"Sun, 6 Nov 1994 08:49:37 GMT", std::nullopt},  // fixdate has two-digit days
      {"Sun, 06 Nov 1994 08:49 GMT", std::nullopt},
      {"Sun, 06 Nov 1994 08:49:37 GMT trailing", std::nullopt},
      {"Sun Nov  6 08:49:37 1994 x", std::nullopt},
  };
  for (const auto& c : table) {
    SCOPED_TRACE(c.value);
    EXPECT_EQ(parse_retry_after(c.value, now), c.expected);
  }
}

TEST(RetryAfter, CapIsAParameter) {
  auto now = system_clock::now();
  EXPECT_EQ(parse_retry_after("120", now, 60s), 60s);
  EXPECT_EQ(parse_retry_after("3600", now, 2h), 3600s);
}

TEST(RetryAfter, RelativeToTheWallClockGiven) {
  auto now = system_clock::time_point(sys_days(std::chrono::year(2024) / 2 / 29) + 23h + 59min);
  EXPECT_EQ(parse_retry_after("Fri, 01 Mar 2024 00:00:30 GMT", now), 90s);  // leap day
}

// A date past what system_clock's nanoseconds can hold (year 2262) is still just "later than
// the cap": no overflow in the subtraction (found by tests/fuzz/retry_after_fuzz.cpp).
TEST(RetryAfter, FarFutureDateIsCappedWithoutOverflow) {
  auto now = system_clock::time_point(sys_days(std::chrono::year(2024) / 5 / 1) + 12h);
  EXPECT_EQ(parse_retry_after("Mon, 01 Jan 2524 00:00:00 GMT", now), millis(300'000));
  EXPECT_EQ(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now, millis(1000)), millis(1000));
  // Sub-millisecond "now" still rounds the wait up, as before.
  auto later = now + std::chrono::microseconds(1500);
  EXPECT_EQ(parse_retry_after("Wed, 01 May 2024 12:00:01 GMT", later), millis(999));
}

TEST(RetryAfter, MillisecondsHeader) {
  EXPECT_EQ(parse_retry_after_ms("250"), 250ms);
  EXPECT_EQ(parse_retry_after_ms("1.2"), 2ms);  // rounded up: never retry early
  EXPECT_EQ(parse_retry_after_ms("9999999"), 300s);
  EXPECT_EQ(parse_retry_after_ms("x"), std::nullopt);
  EXPECT_EQ(parse_retry_after_ms(""), std::nullopt);
}

}  // namespace
}  // namespace ob::routing
