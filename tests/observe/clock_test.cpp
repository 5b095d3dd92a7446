// The coarse clocks read the same time as the precise ones, at most one tick behind, and a
// coarse deadline never comes before the precise one.
#include <gtest/gtest.h>

#include "observe/clock.hpp"

namespace ob::observe {
namespace {

using namespace std::chrono;

TEST(CoarseClock, AtMostOneTickBehindTheSteadyClock) {
  const auto tick = coarse_resolution();
  ASSERT_GT(tick.count(), 0);
  ASSERT_LE(tick, milliseconds(20));
  for (int i = 0; i < 1000; ++i) {
    const auto before = steady_clock::now();
    const auto coarse = coarse_now();
    const auto after = steady_clock::now();
    EXPECT_LE(coarse, after);
    EXPECT_GE(coarse, before - 2 * tick);  // one tick, and one more for a tickless idle CPU
  }
}

TEST(CoarseClock, DeadlineWithinATickOfTheLimit) {
  const auto tick = coarse_resolution();
  for (auto limit : {milliseconds(0), milliseconds(1), milliseconds(100), milliseconds(30000)}) {
    const auto before = steady_clock::now();
    const auto deadline = coarse_deadline(limit);
    const auto after = steady_clock::now();
    // At most a tick late; early only if the coarse clock lagged by more than a tick.
    EXPECT_GE(deadline, before + limit - tick) << limit.count();
    EXPECT_LE(deadline, after + limit + tick) << limit.count();
  }
}

TEST(CoarseClock, WallClockCloseToSystemClock) {
  const auto tick = coarse_resolution();
  const auto coarse = coarse_wall_now();
  const auto precise = system_clock::now();
  EXPECT_LE(coarse, precise + milliseconds(1));
  EXPECT_GE(coarse, precise - 2 * tick);
}

}  // namespace
}  // namespace ob::observe
