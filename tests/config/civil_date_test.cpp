#include "config/civil_date.hpp"

#include <gtest/gtest.h>

namespace ob::civil {
namespace {

TEST(CivilDate, KnownDays) {
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(1969, 12, 31), -1);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 11017);
  EXPECT_EQ(days_from_civil(2024, 2, 29), 19782);
  EXPECT_EQ(days_from_civil(2024, 3, 1), 19783);
  EXPECT_EQ(days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28), 1);  // not leap
  EXPECT_EQ(days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28), 2);  // leap (400)
  EXPECT_EQ((civil_from_days(-1)), (date{1969, 12, 31}));
  EXPECT_EQ((civil_from_days(19782)), (date{2024, 2, 29}));
  EXPECT_EQ((civil_from_days(days_from_civil(2023, 12, 31) + 1)), (date{2024, 1, 1}));
}

TEST(CivilDate, DaysInMonth) {
  EXPECT_EQ(days_in_month(2024, 2), 29u);
  EXPECT_EQ(days_in_month(2023, 2), 28u);
  EXPECT_EQ(days_in_month(1900, 2), 28u);
  EXPECT_EQ(days_in_month(2000, 2), 29u);
  EXPECT_EQ(days_in_month(2024, 12), 31u);
  EXPECT_EQ(days_in_month(2024, 4), 30u);
}

// Every day from 1600 to 2400 (both sides of 1970, every leap rule) against a calendar counted
// one day at a time.
TEST(CivilDate, EveryDayAgainstACountedCalendar) {
  date c{1600, 1, 1};
  std::int64_t z = days_from_civil(1600, 1, 1);
  EXPECT_EQ(z, -135140);
  std::int64_t monday = week_start(z);
  for (int n = 0; n < 800 * 366 && c.year < 2400; ++n, ++z) {
    ASSERT_EQ(days_from_civil(c.year, c.month, c.day), z) << c.year << "-" << c.month;
    ASSERT_EQ(civil_from_days(z), c) << z;
    ASSERT_EQ(month_start(z), z - (c.day - 1)) << z;
    ASSERT_EQ(next_month_start(z), z - c.day + 1 + days_in_month(c.year, c.month)) << z;
    if ((z - days_from_civil(1970, 1, 5)) % 7 == 0) monday = z;  // 1970-01-05: a Monday
    ASSERT_EQ(week_start(z), monday) << z;
    if (++c.day > days_in_month(c.year, c.month)) {
      c.day = 1;
      if (++c.month > 12) {
        c.month = 1;
        ++c.year;
      }
    }
  }
  EXPECT_EQ(c.year, 2400);
}

TEST(CivilDate, MonthAndWeekBoundaries) {
  auto day = [](std::int64_t y, unsigned m, unsigned d) { return days_from_civil(y, m, d); };
  EXPECT_EQ(month_start(day(2024, 2, 29)), day(2024, 2, 1));
  EXPECT_EQ(next_month_start(day(2024, 2, 29)), day(2024, 3, 1));
  EXPECT_EQ(next_month_start(day(2023, 12, 31)), day(2024, 1, 1));
  EXPECT_EQ(next_month_start(day(2023, 12, 1)), day(2024, 1, 1));
  EXPECT_EQ(month_start(day(2024, 1, 1)), day(2024, 1, 1));
  EXPECT_EQ(month_start(day(1969, 12, 31)), day(1969, 12, 1));
  EXPECT_EQ(week_start(day(2024, 1, 1)), day(2024, 1, 1));      // a Monday
  EXPECT_EQ(week_start(day(2023, 12, 31)), day(2023, 12, 25));  // a Sunday
  EXPECT_EQ(week_start(0), day(1969, 12, 29));                  // Thursday 1970-01-01
}

TEST(CivilDate, FloorDiv) {
  EXPECT_EQ(floor_div(-1, 86'400'000), -1);
  EXPECT_EQ(floor_div(0, 86'400'000), 0);
  EXPECT_EQ(floor_div(86'399'999, 86'400'000), 0);
  EXPECT_EQ(floor_div(-86'400'000, 86'400'000), -1);
  EXPECT_EQ(floor_div(-86'400'001, 86'400'000), -2);
}

static_assert(days_from_civil(1970, 1, 1) == 0 && civil_from_days(0) == date{1970, 1, 1});

}  // namespace
}  // namespace ob::civil
