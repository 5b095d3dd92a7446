#include "routing/retry.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace ob::routing {

bool retryable(failure_kind k, int status) {
  switch (k) {
    case failure_kind::connect:
    case failure_kind::tls:
    case failure_kind::timeout_before_first_byte:
    case failure_kind::reset_before_first_byte:
    case failure_kind::stream_error_event_first:
      return true;
    case failure_kind::status:
      return status == 408 || status == 409 || status == 429 || (status >= 500 && status <= 599);
    case failure_kind::after_first_byte:
    case failure_kind::client_error:
      return false;
  }
  return false;
}

std::optional<outcome> health_outcome(failure_kind k, int status) {
  switch (k) {
    case failure_kind::connect:
    case failure_kind::tls:
    case failure_kind::timeout_before_first_byte:
    case failure_kind::reset_before_first_byte:
    case failure_kind::stream_error_event_first:
    case failure_kind::after_first_byte:
      return outcome::failure;
    case failure_kind::client_error:
      return std::nullopt;
    case failure_kind::status:
      if (status == 429) return outcome::rate_limited;
      if (status == 503 || status == 529) return outcome::overloaded;  // 529: Anthropic's
      if (status >= 500 || status == 408 || status == 401 || status == 403) return outcome::failure;
      return outcome::success;  // it answered; the request itself was at fault
  }
  return std::nullopt;
}

retry_budget::retry_budget(retry_budget_options o)
    : opt_(o),
      floor_(o.min_per_second * std::chrono::duration<double>(o.window).count()),
      width_(std::max<std::int64_t>(
          1, std::chrono::duration_cast<std::chrono::nanoseconds>(o.window).count() /
                 static_cast<std::int64_t>(slices))) {}

std::uint32_t retry_budget::epoch(time_point now) const {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  auto e = ns >= 0 ? ns / width_ : (ns - width_ + 1) / width_;  // floor, also before the epoch
  return static_cast<std::uint32_t>(e);
}

void retry_budget::add(time_point now, counter c) {
  auto e = epoch(now);
  auto& w = slices_[e % slices][c];
  auto cur = w.load(std::memory_order_relaxed);
  std::uint64_t next;
  do {
    // A slice last used more than a window ago starts again from 0 for this epoch.
    next = static_cast<std::uint32_t>(cur >> 32) == e ? cur + 1
                                                      : (static_cast<std::uint64_t>(e) << 32) | 1;
  } while (!w.compare_exchange_weak(cur, next, std::memory_order_relaxed));
}

std::array<std::uint64_t, 2> retry_budget::sum(time_point now) const {
  auto e = epoch(now);
  std::array<std::uint64_t, 2> out{};
  for (const auto& slice : slices_)
    for (std::size_t c = 0; c < 2; ++c) {
      auto v = slice[c].load(std::memory_order_relaxed);
      // In the window: this slice's epoch is one of the last `slices` ones (mod 2^32).
      if (static_cast<std::uint32_t>(e - static_cast<std::uint32_t>(v >> 32)) < slices)
        out[c] += v & 0xffff'ffffu;
    }
  return out;
}

void retry_budget::record_request(time_point now) {
  add(now, requests);
}

bool retry_budget::try_retry(time_point now) {
  auto e = epoch(now);
  auto& w = slices_[e % slices][retries];
  auto s = sum(now);
  auto cur = w.load(std::memory_order_relaxed);
  auto in_w = [&](std::uint64_t v) -> std::uint64_t {
    return static_cast<std::uint32_t>(v >> 32) == e ? (v & 0xffff'ffffu) : 0;
  };
  const auto elsewhere = s[retries] - std::min(s[retries], in_w(cur));  // other slices
  const double limit = opt_.ratio * static_cast<double>(s[requests]) + floor_;
  // The check and the spend are one compare-and-swap on this slice's retry count, so
  // concurrent retries never spend more than the budget.
  for (;;) {
    if (static_cast<double>(elsewhere + in_w(cur)) >= limit) return false;
    auto next = in_w(cur) ? cur + 1 : (static_cast<std::uint64_t>(e) << 32) | 1;
    if (w.compare_exchange_weak(cur, next, std::memory_order_relaxed)) return true;
  }
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Non-negative decimal ("12", "1.5") in the given unit, capped; nullopt if malformed.
std::optional<millis> parse_decimal(std::string_view s, double unit_ms, millis cap) {
  s = trim(s);
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s.front()))) return std::nullopt;
  double value = 0, scale = 0;
  for (char c : s) {
    if (c == '.' && scale == 0) {
      scale = 1;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      if (scale == 0) {
        value = value * 10 + (c - '0');
      } else {
        scale /= 10;
        value += (c - '0') * scale;
      }
    } else {
      return std::nullopt;
    }
  }
  double ms = std::ceil(value * unit_ms);  // waiting a hair longer is safe, shorter is not
  if (ms >= static_cast<double>(cap.count())) return cap;
  return millis{static_cast<millis::rep>(ms)};
}

// A small cursor over the date text; every step fails softly so the caller checks once.
struct date_reader {
  std::string_view s;
  bool ok = true;

  void skip_spaces() {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  }
  void expect(char c) {
    if (s.empty() || s.front() != c)
      ok = false;
    else
      s.remove_prefix(1);
  }
  int number(std::size_t min_digits, std::size_t max_digits) {
    std::size_t n = 0;
    int v = 0;
    while (n < s.size() && n < max_digits && std::isdigit(static_cast<unsigned char>(s[n])))
      v = v * 10 + (s[n++] - '0');
    if (n < min_digits) ok = false;
    s.remove_prefix(n);
    return v;
  }
  unsigned month() {
    static constexpr std::string_view names = "JanFebMarAprMayJunJulAugSepOctNovDec";
    auto pos = s.size() >= 3 ? names.find(s.substr(0, 3)) : std::string_view::npos;
    if (pos == std::string_view::npos || pos % 3 != 0) {
      ok = false;
      return 0;
    }
    s.remove_prefix(3);
    return static_cast<unsigned>(pos / 3 + 1);
  }
  std::chrono::seconds clock_time() {
    int h = number(2, 2);
    expect(':');
    int m = number(2, 2);
    expect(':');
    int sec = number(2, 2);
    if (h > 23 || m > 59 || sec > 60) ok = false;  // 60: a leap second is still a date
    return std::chrono::hours(h) + std::chrono::minutes(m) + std::chrono::seconds(sec);
  }
};

// IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT",
// asctime "Sun Nov  6 08:49:37 1994" (RFC 9110 5.6.7: recipients accept all three).
std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view text) {
  date_reader r{trim(text)};
  while (!r.s.empty() && std::isalpha(static_cast<unsigned char>(r.s.front())))
    r.s.remove_prefix(1);  // weekday: not checked against the date
  bool asctime = !r.s.empty() && r.s.front() == ' ';
  if (!asctime) r.expect(',');
  r.skip_spaces();
  int day = 0, year = 0;
  unsigned mon = 0;
  std::chrono::seconds tod{};
  if (asctime) {
    mon = r.month();
    r.skip_spaces();
    day = r.number(1, 2);
    r.expect(' ');
    tod = r.clock_time();
    r.expect(' ');
    year = r.number(4, 4);
  } else {
    day = r.number(2, 2);
    bool rfc850 = !r.s.empty() && r.s.front() == '-';
    r.expect(rfc850 ? '-' : ' ');
    mon = r.month();
    r.expect(rfc850 ? '-' : ' ');
    year = rfc850 ? r.number(2, 2) : r.number(4, 4);
    if (rfc850) year += year < 70 ? 2000 : 1900;
    r.expect(' ');
    tod = r.clock_time();
    r.expect(' ');
    if (r.s != "GMT") r.ok = false;
    r.s = {};
  }
  if (!r.ok || !r.s.empty()) return std::nullopt;
  std::chrono::year_month_day ymd{std::chrono::year(year), std::chrono::month(mon),
                                  std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return std::nullopt;
  return std::chrono::sys_days(ymd) + tod;
}

}  // namespace

std::optional<millis> parse_retry_after(std::string_view value,
                                        std::chrono::system_clock::time_point now, millis cap) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(value.front())))
    return parse_decimal(value, 1000.0, cap);
  auto when = parse_http_date(value);
  if (!when) return std::nullopt;
  // In milliseconds: `*when - now` would be in system_clock's nanoseconds, which overflow for
  // dates past 2262. ceil(when - now) == when - floor(now) since `when` is whole seconds.
  auto delta = std::chrono::time_point_cast<millis>(*when) - std::chrono::floor<millis>(now);
  return std::clamp(delta, millis{0}, cap);
}

std::optional<millis> parse_retry_after_ms(std::string_view value, millis cap) {
  return parse_decimal(value, 1.0, cap);
}

}  // namespace ob::routing
