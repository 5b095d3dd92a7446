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
      window_(o.window) {}

void retry_budget::record_request(time_point now) {
  std::lock_guard lock(mu_);
  window_.add(now, requests);
}

bool retry_budget::try_retry(time_point now) {
  std::lock_guard lock(mu_);
  auto s = window_.sum(now);
  if (static_cast<double>(s[retries]) >= opt_.ratio * static_cast<double>(s[requests]) + floor_)
    return false;
  window_.add(now, retries);
  return true;
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
