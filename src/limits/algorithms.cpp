#include "limits/algorithms.hpp"

#include <cmath>
#include <cstdio>

#include "config/civil_date.hpp"

namespace ob::limits {

using civil::floor_div;

namespace {
// Rounded up, for a positive wait in us shown in ms.
std::int64_t us_to_ms_up(std::int64_t us) {
  return us <= 0 ? 0 : (us + us_per_ms - 1) / us_per_ms;
}
// Far beyond any period (about 70,000 years), so that tat + tolerance cannot overflow.
constexpr std::int64_t max_tolerance = std::int64_t{1} << 61;
}  // namespace

gcra_params make_gcra(std::uint64_t limit, std::int64_t period_ms, std::uint64_t burst) {
  gcra_params p;
  p.limit = limit;
  auto l = static_cast<std::int64_t>(std::max<std::uint64_t>(limit, 1));
  const std::int64_t period = period_ms * us_per_ms;
  p.interval = std::max<std::int64_t>(1, (period + l - 1) / l);
  auto b = static_cast<std::int64_t>(burst ? burst : std::max<std::uint64_t>(limit, 1));
  p.tolerance = b - 1 > max_tolerance / p.interval ? max_tolerance : (b - 1) * p.interval;
  return p;
}

gcra_result gcra_check(const gcra_params& p, std::int64_t tat, epoch_us now_us) {
  gcra_result r;
  const std::int64_t now = now_us.us;
  std::int64_t t = std::max(tat, now);
  std::int64_t new_tat = t + p.interval;
  std::int64_t window = p.tolerance + p.interval;
  if (new_tat - now <= window) {
    r.allowed = true;
    r.tat = new_tat;
    r.remaining = std::max<std::int64_t>(0, (window - (new_tat - now)) / p.interval);
    r.reset = us_to_ms_up(new_tat - now);
    return r;
  }
  r.retry_after = std::max<std::int64_t>(1, us_to_ms_up((new_tat - window) - now));
  r.tat = tat;
  r.remaining = 0;
  r.reset = us_to_ms_up(t - now);
  return r;
}

std::int64_t gcra_remaining(const gcra_params& p, std::int64_t tat, epoch_us now_us) {
  const std::int64_t now = now_us.us;
  return std::max<std::int64_t>(
      0, (p.tolerance + p.interval - (std::max(tat, now) - now)) / p.interval);
}

std::int64_t gcra_rescale(const gcra_params& p, std::int64_t tat, std::int64_t was,
                          epoch_us now_us) {
  const std::int64_t now = now_us.us;
  if (was == 0 || was == p.interval || tat <= now) return tat;
  // (tat - now) * interval can pass int64 (a day's burst of a limit of one a day, in us).
  return now + static_cast<std::int64_t>(static_cast<__int128>(tat - now) * p.interval / was);
}

void bucket_refill(const bucket_params& p, token_bucket& b, epoch_ms now) {
  if (b.ts == 0) {
    b.level = p.capacity;
    b.ts = now;
    return;
  }
  if (now > b.ts) {
    b.level = std::min(p.capacity, b.level + static_cast<double>(now - b.ts) * p.per_ms);
    b.ts = now;
  }
}

bucket_result bucket_take(const bucket_params& p, token_bucket& b, std::uint64_t est,
                          epoch_ms now) {
  bucket_refill(p, b, now);
  bucket_result r;
  r.charged = std::min<std::uint64_t>(est, static_cast<std::uint64_t>(p.capacity));
  auto want = static_cast<double>(r.charged);
  if (b.level >= want) {
    b.level -= want;
    r.allowed = true;
    return r;
  }
  r.retry_after =
      std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil((want - b.level) / p.per_ms)));
  return r;
}

void bucket_settle(const bucket_params& p, token_bucket& b, std::uint64_t charged,
                   std::uint64_t actual, epoch_ms now) {
  bucket_refill(p, b, now);
  b.level =
      std::min(p.capacity, b.level + static_cast<double>(charged) - static_cast<double>(actual));
}

void bucket_release(const bucket_params& p, token_bucket& b, std::uint64_t charged, epoch_ms now) {
  bucket_refill(p, b, now);
  b.level = std::min(p.capacity, b.level + static_cast<double>(charged));
}

std::int64_t bucket_remaining(const token_bucket& b) {
  return b.level <= 0 ? 0 : static_cast<std::int64_t>(std::floor(b.level + 1e-9));
}

std::int64_t bucket_reset_ms(const bucket_params& p, const token_bucket& b) {
  if (b.level >= p.capacity || p.per_ms <= 0) return 0;
  return static_cast<std::int64_t>(std::ceil((p.capacity - b.level) / p.per_ms - 1e-9));
}

epoch_ms period_start(budget_period period, epoch_ms now) {
  std::int64_t days = floor_div(now, day_ms);
  switch (period) {
    case budget_period::day:
      return days * day_ms;
    case budget_period::week:
      return civil::week_start(days) * day_ms;
    case budget_period::month:
      return civil::month_start(days) * day_ms;
  }
  return days * day_ms;
}

epoch_ms next_period_start(budget_period period, epoch_ms now) {
  epoch_ms start = period_start(period, now);
  switch (period) {
    case budget_period::day:
      return start + day_ms;
    case budget_period::week:
      return start + 7 * day_ms;
    case budget_period::month:
      return civil::next_month_start(floor_div(start, day_ms)) * day_ms;
  }
  return start + day_ms;
}

void budget_roll(budget_state& s, budget_period period, epoch_ms now) {
  epoch_ms start = period_start(period, now);
  if (s.start == start) return;
  s.start = start;
  s.used = 0;
  s.reserved = 0;
}

bool budget_has_room(const budget_state& s, std::uint64_t amount) {
  return s.used + s.reserved < amount;
}

void budget_settle(budget_state& s, epoch_ms start, std::uint64_t reserved, std::uint64_t actual) {
  if (s.start != start) return;
  s.reserved -= std::min(s.reserved, reserved);
  s.used += actual;
}

void budget_release(budget_state& s, epoch_ms start, std::uint64_t reserved) {
  if (s.start != start) return;
  s.reserved -= std::min(s.reserved, reserved);
}

std::uint64_t usd_cost(const price& p, std::uint64_t input, std::uint64_t output) {
  unsigned __int128 micro_million = static_cast<unsigned __int128>(input) * p.input +
                                    static_cast<unsigned __int128>(output) * p.output;
  unsigned __int128 cost = (micro_million + 999'999) / 1'000'000;
  return cost > ~std::uint64_t{0} ? ~std::uint64_t{0} : static_cast<std::uint64_t>(cost);
}

std::size_t format_duration(std::int64_t ms, char* out) {
  if (ms < 0) ms = 0;
  int n;
  if (ms < 1000) {
    n = std::snprintf(out, 32, "%lldms", static_cast<long long>(ms));
  } else {
    long long h = ms / 3'600'000, m = ms / 60'000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
    char sec[16];
    if (frac == 0)
      std::snprintf(sec, sizeof sec, "%llds", s);
    else {
      int len = std::snprintf(sec, sizeof sec, "%lld.%03lld", s, frac);
      while (len > 0 && sec[len - 1] == '0') sec[--len] = 0;
      sec[len] = 's';
      sec[len + 1] = 0;
    }
    if (h)
      n = std::snprintf(out, 32, "%lldh%lldm%s", h, m, sec);
    else if (m)
      n = std::snprintf(out, 32, "%lldm%s", m, sec);
    else
      n = std::snprintf(out, 32, "%s", sec);
  }
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

}  // namespace ob::limits
