// The limit algorithms of docs/CONFIGURATION.md "Keys and limits", as pure values and functions
// of an explicit clock (epoch milliseconds): GCRA for requests per minute/day, a token bucket
// with reservation/settle/release for tokens per minute/day, calendar-period budgets in UTC,
// and USD cost. No locks and no clock reads here: the backend owns both. The Redis backend's
// script implements the same arithmetic; tests/limits pins the numbers both must produce.
#pragma once

#include <algorithm>
#include <cstdint>

#include "limits/backend.hpp"

namespace ob::limits {

inline constexpr std::int64_t minute_ms = 60'000;
inline constexpr std::int64_t day_ms = 86'400'000;

// ---- GCRA (rpm, rpd) --------------------------------------------------------------------------
// Its times (the interval, the tolerance, the theoretical arrival time `tat`) are microseconds:
// in whole milliseconds the interval of a limit that does not divide its period rounded up,
// and the sustained rate fell short of the limit (rpm 7,000: 6,666 a minute; rpm 40,000:
// 30,000; every rpm above 60,000: 60,000). Waits and resets are given in milliseconds.

inline constexpr std::int64_t us_per_ms = 1000;

struct gcra_params {
  std::int64_t interval = 1;   // I = ceil(period / limit) in us, >= 1
  std::int64_t tolerance = 0;  // tau = (burst - 1) * I (capped far beyond any period)
  std::uint64_t limit = 0;
};

gcra_params make_gcra(std::uint64_t limit, std::int64_t period_ms, std::uint64_t burst);

struct gcra_result {
  bool allowed = false;
  std::int64_t tat = 0;          // the state to store when allowed (epoch us)
  std::int64_t retry_after = 0;  // refused: ms until this request would pass (> 0)
  std::int64_t remaining = 0;    // requests left after this one (>= 0)
  std::int64_t reset = 0;        // ms until the limit is back to its initial state
};

// An instant in epoch microseconds: the clock of the checks below. With a clock in whole
// milliseconds, requests could only be spaced in whole milliseconds: with a small burst, a
// limit whose interval is not a whole number of ms admitted less than itself (rpm 40,000 with
// burst 1: one per 2 ms when they come back to back, 30,000 a minute). A distinct type, so
// that epoch milliseconds cannot be passed for it unconverted.
struct epoch_us {
  std::int64_t us = 0;
  static constexpr epoch_us of_ms(epoch_ms ms) { return {ms * us_per_ms}; }
};

// `tat` (epoch us) 0 = no state (absent).
gcra_result gcra_check(const gcra_params& p, std::int64_t tat, epoch_us now);
// The requests a burst could take at `now` (what gcra_check would leave after one, plus one).
std::int64_t gcra_remaining(const gcra_params& p, std::int64_t tat, epoch_us now);
// A state `tat` kept with interval `was` under a limit whose interval is now p.interval: the
// number of requests counted is kept, not the time they stand for.
std::int64_t gcra_rescale(const gcra_params& p, std::int64_t tat, std::int64_t was, epoch_us now);
// The same at a whole millisecond.
inline gcra_result gcra_check(const gcra_params& p, std::int64_t tat, epoch_ms now) {
  return gcra_check(p, tat, epoch_us::of_ms(now));
}
inline std::int64_t gcra_remaining(const gcra_params& p, std::int64_t tat, epoch_ms now) {
  return gcra_remaining(p, tat, epoch_us::of_ms(now));
}

// ---- token bucket (tpm, tpd) ------------------------------------------------------------------

struct token_bucket {
  double level = 0;  // tokens; may go below zero after a settlement (debt)
  epoch_ms ts = 0;   // last refill; 0 = new bucket (full)
};

struct bucket_params {
  double capacity = 0;  // C = the limit
  double per_ms = 0;    // C / period
};

inline bucket_params make_bucket(std::uint64_t limit, std::int64_t period_ms) {
  return {static_cast<double>(limit), static_cast<double>(limit) / static_cast<double>(period_ms)};
}

void bucket_refill(const bucket_params& p, token_bucket& b, epoch_ms now);

struct bucket_result {
  bool allowed = false;
  std::uint64_t charged = 0;     // est clamped to C: what was (or would be) taken
  std::int64_t retry_after = 0;  // refused: ms until `charged` tokens are there
};

// Refills, then takes min(est, C) when the level holds it (the caller commits `b` only when
// every check of the request passed: pass a copy).
bucket_result bucket_take(const bucket_params& p, token_bucket& b, std::uint64_t est, epoch_ms now);
// End of the exchange: level += charged - actual, at most C.
void bucket_settle(const bucket_params& p, token_bucket& b, std::uint64_t charged,
                   std::uint64_t actual, epoch_ms now);
// Failed before any usage: level += charged, at most C.
void bucket_release(const bucket_params& p, token_bucket& b, std::uint64_t charged, epoch_ms now);
// Header numbers: floor(level) clamped >= 0, and ms until full.
std::int64_t bucket_remaining(const token_bucket& b);
std::int64_t bucket_reset_ms(const bucket_params& p, const token_bucket& b);

// ---- calendar-period budgets (UTC) ------------------------------------------------------------

// Start of the period holding `now`: 00:00 UTC of the day, of the ISO week's Monday, of the
// month's 1st.
epoch_ms period_start(budget_period period, epoch_ms now);
// Start of the period after the one holding `now`.
epoch_ms next_period_start(budget_period period, epoch_ms now);

struct budget_state {
  epoch_ms start = -1;  // the period `used` and `reserved` belong to; -1 = none yet
  std::uint64_t used = 0, reserved = 0;
};

// Moves the state to the period holding `now` (a new period starts at zero).
void budget_roll(budget_state& s, budget_period period, epoch_ms now);
// Something left (used + reserved < amount), after rolling.
bool budget_has_room(const budget_state& s, std::uint64_t amount);
// Settles a reservation of period `start`: nothing happens when that period is over.
void budget_settle(budget_state& s, epoch_ms start, std::uint64_t reserved, std::uint64_t actual);
void budget_release(budget_state& s, epoch_ms start, std::uint64_t reserved);

// ---- estimates and cost -----------------------------------------------------------------------

// ceil(body_bytes / 4)
inline std::uint64_t input_estimate(std::uint64_t body_bytes) {
  return (body_bytes + 3) / 4;
}
// Micro-dollars for `input` and `output` tokens at `p` (micro-dollars per million), rounded up.
std::uint64_t usd_cost(const price& p, std::uint64_t input, std::uint64_t output);

// OpenAI's duration format for x-ratelimit-reset-*: "120ms", "1s", "1.5s", "6m0s", "1h2m3s".
// Writes into `out` (at least 32 bytes) and returns the length.
std::size_t format_duration(std::int64_t ms, char* out);

}  // namespace ob::limits
