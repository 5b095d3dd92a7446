// The seam between the request path and the state of keys' and providers' limits and budgets
// (docs/CONFIGURATION.md "Keys and limits"; the algorithms are shared by every backend).
//
// One request, as the connection drives it:
//   demand d{...};                                      the key, candidate targets, estimates
//   verdict v = backend.admit_now(d) or co_await backend.admit(d);
//   v.ok()  -> forward to d.targets[v.target]; keep v.res for the end of the exchange
//   !v.ok() -> answer the refusal (429/503 ...); nothing was charged
//   end of the exchange, exactly once per admitted request, on every path:
//     backend.settle(v.res, usage)   the upstream answered (usage may be unknown: -1)
//     backend.release(v.res)         it failed before any usage (no answer, error first)
//
// All-or-nothing: admit checks, in this order, and stops at the first refusal without charging
// anything: key budget, key concurrency, rpm, rpd, tpm, tpd; then the candidate targets in the
// order given (concurrency, rpm, tpm), the first with room is chosen. When everything passes,
// every counter is charged at once.
//
// Lifetimes: the string_views in demand/reservation point into the config snapshot the
// request holds until it has settled; the backend copies what it must keep.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include <boost/asio/awaitable.hpp>

namespace ob::limits {

// Wall-clock milliseconds since the Unix epoch.
using epoch_ms = std::int64_t;

// 0 = no such limit.
struct key_limits {
  std::uint64_t rpm = 0, rpd = 0;  // requests per minute / day (GCRA)
  std::uint64_t tpm = 0, tpd = 0;  // tokens per minute / day (token bucket)
  std::uint64_t concurrency = 0;   // requests in flight
  std::uint64_t burst = 0;         // GCRA burst for rpm/rpd; 0 = the limit itself
  bool any() const { return rpm || rpd || tpm || tpd || concurrency; }
};

enum class budget_unit : std::uint8_t { none, tokens, usd };
enum class budget_period : std::uint8_t { day, week, month };  // calendar periods in UTC

struct budget_spec {
  budget_unit unit = budget_unit::none;
  budget_period period = budget_period::month;
  std::uint64_t amount = 0;  // tokens, or micro-dollars (1 USD = 1,000,000) for usd
};

// USD per million tokens, as micro-dollars per million tokens (1.25 USD/M -> 1'250'000).
struct price {
  std::uint64_t input = 0, output = 0;
};

struct target_limits {
  std::uint64_t rpm = 0, tpm = 0, concurrency = 0;  // 0 = no such limit
  bool any() const { return rpm || tpm || concurrency; }
};

struct key_demand {
  std::uint32_t index = 0;  // in the snapshot's key table
  std::string_view name;    // configured key name (Redis: {ob:k:<name>})
  key_limits limits;
  budget_spec budget;
};

struct target_demand {
  std::uint32_t index = 0;  // the target's position in its group (routing::group::targets)
  std::string_view id;      // "<group>/<target-name>@<host>" (Redis: {ob:t:<id>})
  target_limits limits;
  struct price price;  // for a usd budget of the key
};

struct demand {
  const key_demand* key = nullptr;         // nullptr: no key checks (a target-only admission)
  std::span<const target_demand> targets;  // candidates, in the balancer's order; may be empty
  std::uint64_t input_tokens = 0;          // ceil(body bytes / 4)
  std::uint64_t output_tokens = 0;         // max_*tokens of the request, else default_output_tokens
  epoch_ms now = 0;                        // Redis uses its own TIME instead
  std::int64_t now_us = 0;  // the same instant in epoch us, for rpm/rpd (0: now * 1000)
};

enum class refusal : std::uint8_t {
  none,         // admitted
  budget,       // 429 insufficient_quota
  concurrency,  // 429 rate_limit_exceeded (type requests)
  rpm,
  rpd,  // 429 rate_limit_exceeded (type requests)
  tpm,
  tpd,           // 429 rate_limit_exceeded (type tokens)
  targets_full,  // every candidate target at its limit: 429 rate_limit_exceeded
  unavailable,   // state backend unreachable with on_failure "deny": 503 state_unavailable
};

// The numbers of the x-ratelimit-* headers (-1 = header absent), from the key's rpm (else rpd)
// and tpm (else tpd), after this request.
struct rate_headers {
  std::int64_t limit_requests = -1, remaining_requests = -1, reset_requests_ms = -1;
  std::int64_t limit_tokens = -1, remaining_tokens = -1, reset_tokens_ms = -1;
};

// What an admitted request holds until it settles. Plain values: copyable, no ownership.
struct reservation {
  const key_demand* key = nullptr;  // key part charged (nullptr: none)
  int target = -1;                  // index into demand::targets of the charged target, or -1
  const target_demand* target_ptr = nullptr;
  std::uint64_t tokens = 0;  // reserved tokens (tpm/tpd and a token budget), before clamp
  std::uint64_t input_tokens = 0, output_tokens = 0;  // the estimates
  std::uint64_t budget_cost = 0;                      // reserved in the budget's unit
  epoch_ms budget_period_start = 0;  // the period the budget reservation belongs to
  std::uint64_t lease = 0;           // concurrency lease id (Redis zset member); 0 in memory
  bool charged() const { return key || target_ptr; }
};

struct verdict {
  refusal kind = refusal::none;
  std::int64_t retry_after_ms = 0;  // refusals: when to try again (ceil to seconds for Retry-After)
  int target = -1;                  // admitted: index into demand::targets chosen (-1: none given)
  rate_headers headers;
  reservation res;
  bool ok() const { return kind == refusal::none; }
};

// Actual usage of an exchange as counted for metrics; -1 = the provider did not say.
struct usage {
  std::int64_t input_tokens = -1, output_tokens = -1;
  // The actual cost in micro-dollars at the price of the provider that answered (-1: unknown).
  // A key's reservation is made before a target is chosen, so its USD budget is charged this.
  std::int64_t usd_micros = -1;
  bool known() const { return input_tokens >= 0 || output_tokens >= 0; }
};

class backend {
 public:
  virtual ~backend() = default;

  // Decides at once when it can without waiting (in memory: always; no allocation, no
  // suspension). nullopt: the decision needs a round trip, co_await admit(d) instead.
  virtual std::optional<verdict> admit_now(const demand& d) = 0;
  // The same decision for a backend that must wait (one round trip; never longer than its
  // timeout). `d` must stay alive until it completes.
  virtual boost::asio::awaitable<verdict> admit(const demand& d) = 0;

  // End of an admitted exchange with an answer: tpm/tpd level += reserved - actual, budget
  // reserved -= reserved, used += actual cost; concurrency leases returned. Unknown usage keeps
  // the reservation as the charge. Never waits (Redis: pipelined, reply not awaited).
  virtual void settle(const reservation& r, const usage& actual) = 0;
  // End of an admitted exchange before any usage: every reservation is given back.
  virtual void release(const reservation& r) = 0;
};

}  // namespace ob::limits
