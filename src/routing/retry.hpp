// Failover decisions: which failed attempts may be retried on another target, what each
// failure says about the target's health, how many retries the process may afford, and how
// long an upstream asked us to wait (Retry-After). Pure and clock-injected; no I/O.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "routing/health.hpp"

namespace ob::routing {

// How one attempt on a target ended badly. "First byte" is the first byte of the upstream
// answer: before it nothing reached the client, so another target can still take over.
enum class failure_kind {
  connect,                    // resolve / TCP connect failed or timed out
  tls,                        // handshake or certificate verification failed
  timeout_before_first_byte,  // request sent, no answer head in time
  reset_before_first_byte,    // connection closed/reset before any answer byte
  status,                     // a complete answer head with an HTTP status (pass the code)
  stream_error_event_first,   // 2xx event stream whose first event is an error
  after_first_byte,           // broke after bytes went to the client: cannot be retried
  client_error,               // our client went away or sent something unusable
};

// True when the same request may be sent to another target. For `status`: 408, 409, 429 and
// 5xx. Client errors (400, 401, 403, 404, 413, 422, ...) would fail the same way anywhere.
bool retryable(failure_kind k, int status = 0);

// What the failure says about the target, or nothing when the target is not to blame
// (client_error). 401/403 count as failures: the provider key is per target, so a revoked
// key should take that target out of rotation rather than fail a share of requests forever.
std::optional<outcome> health_outcome(failure_kind k, int status = 0);

struct retry_budget_options {
  // Retries may add this share of the requests seen in the window...
  double ratio = 0.2;
  // ...plus this many per second of window, so a quiet process can still retry a few.
  double min_per_second = 3.0;
  // Span of the window (10 buckets of window/10).
  millis window{10'000};
};

// Caps retries process-wide (or per group, wherever the caller keeps it) so that when many
// targets fail at once, retries cannot multiply the load on whatever is left: a retry is
// allowed while retries in the window < ratio * requests + min_per_second * window seconds.
// With the defaults: 20% extra load, and at least 30 retries per 10 s. Thread-safe and
// lock-free: every worker records every request here, so a mutex would be taken (and
// contended) per request. Each counter of each slice is one atomic word holding the slice's
// epoch and its count, so a slice is reused and counted with one compare-and-swap; a retry's
// check and spend are one compare-and-swap too, so concurrent retries stay within the budget.
class retry_budget {
 public:
  explicit retry_budget(retry_budget_options o = {});
  // Once per client request (not per attempt: retries must not earn budget).
  void record_request(time_point now);
  // Before each retry; true spends one retry from the budget.
  bool try_retry(time_point now);

 private:
  static constexpr std::size_t slices = 10;
  enum counter : std::size_t { requests, retries };
  // (epoch mod 2^32) << 32 | count: one word per counter per slice.
  using word = std::atomic<std::uint64_t>;
  std::uint32_t epoch(time_point now) const;
  void add(time_point now, counter c);
  std::array<std::uint64_t, 2> sum(time_point now) const;

  const retry_budget_options opt_;
  const double floor_;        // min_per_second * window seconds
  const std::int64_t width_;  // nanoseconds per slice
  std::array<std::array<word, 2>, slices> slices_{};
};

// Retry-After: delta-seconds ("120", leniently "1.5") or an HTTP-date (IMF-fixdate, RFC 850
// or asctime form, all GMT) relative to `now`. A date in the past gives 0. The result is
// capped at `cap`; nullopt for anything unparseable or negative.
std::optional<millis> parse_retry_after(std::string_view value,
                                        std::chrono::system_clock::time_point now,
                                        millis cap = std::chrono::minutes(5));

// OpenAI's "retry-after-ms" header: milliseconds, possibly fractional. Capped at `cap`.
std::optional<millis> parse_retry_after_ms(std::string_view value,
                                           millis cap = std::chrono::minutes(5));

}  // namespace ob::routing
