#pragma once
// Proleptic Gregorian calendar arithmetic on day numbers (days since 1970-01-01, UTC), for the
// config's RFC 3339 times, the budget periods (src/limits) and the usage ledger (src/state).
// Howard Hinnant's algorithms (http://howardhinnant.github.io/date_algorithms.html).

#include <cstdint>

namespace ob::civil {

struct date {
  std::int64_t year;
  unsigned month;  // 1..12
  unsigned day;    // 1..31
  friend bool operator==(const date&, const date&) = default;
};

// a / b rounded toward negative infinity (b > 0): the day of a time before 1970 too.
constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

constexpr date civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2), m, d};
}

constexpr bool is_leap(std::int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

constexpr unsigned days_in_month(std::int64_t y, unsigned m) {
  constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return days[m - 1] + (m == 2 && is_leap(y));
}

// The Monday on or before `days` (1970-01-01 was a Thursday).
constexpr std::int64_t week_start(std::int64_t days) {
  return days - ((days + 3) % 7 + 7) % 7;
}

// The first day of the month holding `days`, and of the month after it.
constexpr std::int64_t month_start(std::int64_t days) {
  date c = civil_from_days(days);
  return days_from_civil(c.year, c.month, 1);
}
constexpr std::int64_t next_month_start(std::int64_t days) {
  date c = civil_from_days(days);
  return c.month == 12 ? days_from_civil(c.year + 1, 1, 1)
                       : days_from_civil(c.year, c.month + 1, 1);
}

}  // namespace ob::civil
