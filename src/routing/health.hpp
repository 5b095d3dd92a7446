// Passive health of one upstream target (outlier ejection), fed by the outcomes of real
// requests; no probing traffic of our own. Worker threads report outcomes and ask "may I use
// it" concurrently, so every member is thread-safe. Time is always passed in (`now`), never
// read here, so tests drive a fake clock.
//
// Life cycle:  healthy --(N failures in a row | failure ratio over the window | 429/503 with
//              Retry-After)--> ejected --(cooldown over, one request wins the probe)--> probing
//              probing --(probe succeeds)--> healthy;  probing --(probe fails)--> ejected, with
//              the cooldown doubled (capped). A target that stays healthy for `backoff_reset`
//              after a probe success starts again from `base_ejection` next time.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace ob::routing {

using steady = std::chrono::steady_clock;
using time_point = steady::time_point;
using millis = std::chrono::milliseconds;

// What one attempt on a target tells about the target (see retry.hpp for the mapping from
// transport failures and status codes).
enum class outcome {
  success,       // the target answered sensibly (2xx, or a client-caused 4xx)
  failure,       // connect error, TLS error, timeout, 5xx, broken stream, 429 without Retry-After
  rate_limited,  // 429 (with Retry-After: ejected for exactly that long)
  overloaded,    // 503 (with Retry-After: ejected for exactly that long)
};

enum class health_state { healthy, ejected, probing };  // for metrics

// Why a target was ejected (metrics label `reason`, admin API, health event lines).
enum class ejection_reason { consecutive_failures, error_ratio, retry_after, probe_failed, count };
const char* to_string(ejection_reason r);
const char* to_string(health_state s);

// A target's health as the admin API and the metrics show it (read under the lock, at once).
struct health_view {
  health_state state = health_state::healthy;
  time_point until{};           // end of the current or last ejection; epoch if never
  const char* reason = "";      // of the current or last ejection
  std::uint64_t ejections = 0;  // since creation
  std::array<std::uint64_t, static_cast<std::size_t>(ejection_reason::count)> by_reason{};
  std::uint64_t window_ok = 0, window_failed = 0;  // outcomes in the health window
  int in_flight = 0;
  double ewma_ms = 0;
};

struct health_options {
  // Failures in a row that eject the target; catches a target that is simply down quickly.
  int consecutive_failures = 5;
  // Failure share over `window` above which the target is ejected; catches a target that
  // fails often but not always (e.g. every other request), which never reaches the streak.
  double error_ratio = 0.5;
  // Requests the window must hold before the ratio counts: 1 failure out of 1 is not 100%.
  int window_requests = 20;
  // Span of the sliding window for the ratio (kept as 10 buckets of window/10).
  millis window{30'000};
  // First ejection length; doubled on every ejection that follows a failed probe.
  millis base_ejection{5'000};
  // Upper bound of any ejection, including one asked for by Retry-After.
  millis max_ejection{300'000};
  // Healthy this long after a successful probe forgets earlier ejections for the doubling.
  millis backoff_reset{60'000};
  // A probe that has not reported in this long is presumed lost (its client went away and
  // nobody called release_probe) and another request may probe.
  millis probe_timeout{120'000};
  // Weight of the newest sample in the time-to-first-byte average (0 < alpha <= 1).
  double ewma_alpha = 0.3;
};

// Counters over a sliding time window kept as `Buckets` slices of window/Buckets: a slice is
// reused in place once it falls out of the window, so memory is fixed whatever the rate.
// The sum covers between window*(Buckets-1)/Buckets and the whole window. Not thread-safe.
template <std::size_t Counters, std::size_t Buckets = 10>
class sliding_window {
 public:
  using sums = std::array<std::uint64_t, Counters>;

  explicit sliding_window(std::chrono::nanoseconds window)
      : width_(std::max<std::int64_t>(1, (window / Buckets).count())) {}

  void add(time_point now, std::size_t counter, std::uint32_t n = 1) {
    auto e = epoch(now);
    auto& b = buckets_[static_cast<std::size_t>(e % Buckets)];
    if (b.epoch != e) b = bucket{e, {}};
    b.n[counter] += n;
  }

  sums sum(time_point now) const {
    auto e = epoch(now);
    sums out{};
    for (const auto& b : buckets_)
      if (b.epoch <= e && b.epoch > e - static_cast<std::int64_t>(Buckets))
        for (std::size_t c = 0; c < Counters; ++c) out[c] += b.n[c];
    return out;
  }

  void clear() { buckets_.fill(bucket{}); }

 private:
  struct bucket {
    std::int64_t epoch = std::numeric_limits<std::int64_t>::min();
    std::array<std::uint32_t, Counters> n{};
  };
  std::int64_t epoch(time_point now) const {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    return ns >= 0 ? ns / width_ : (ns - width_ + 1) / width_;  // floor, also before the epoch
  }

  std::int64_t width_;  // nanoseconds per bucket
  std::array<bucket, Buckets> buckets_{};
};

class target_health {
 public:
  explicit target_health(health_options o = {});

  // The result of one attempt, reported once when it is known. Reports that arrive while the
  // target is ejected (requests started before the ejection) are ignored; while probing, the
  // first report is taken as the probe's result.
  void report(outcome o, time_point now, std::optional<millis> retry_after = {});
  // The result of an active health check (server/health_checker.cpp). Like report(), except
  // that a success also ends an ejection or a probe at once: the check is a request of our own
  // that the target answered now, so recovery needs no client request as a probe.
  void report_check(outcome o, time_point now, std::optional<millis> retry_after = {});

  // Lock-free: true unless ejected or probing. select() uses this for the common case.
  bool healthy() const { return until_ns_.load(std::memory_order_acquire) == healthy_mark; }
  // Not ejected, or its cooldown is over and no probe is out (then the caller must still win
  // try_acquire_probe before sending anything).
  bool available(time_point now) const;
  // After the cooldown, exactly one caller gets true and its request is the probe. False for a
  // healthy target (nothing to probe) and while another probe is out.
  bool try_acquire_probe(time_point now);
  // The probe's request ended without an outcome (client gone): let the next request probe.
  void release_probe();

  time_point ejected_until() const;  // end of the current or last ejection; epoch if never
  std::uint64_t ejections() const;   // ejections since creation
  health_state state(time_point now) const;

  // Requests on this target right now, kept by the proxy (in_flight_guard) for least_inflight.
  void start_request() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void finish_request() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }
  int in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  // Time to first byte of an answer; the average is 0 until the first sample, so an untried
  // target looks fastest and gets tried.
  void record_latency(millis ttfb);
  double ewma_ms() const { return ewma_ms_.load(std::memory_order_relaxed); }

  const health_options& options() const { return opt_; }
  health_view view(time_point now) const;
  // Who this is in health event lines ("<model>@<host>"); set once, before it is shared.
  void set_label(std::string label) { label_ = std::move(label); }
  const std::string& label() const { return label_; }

 private:
  enum class mode { healthy, ejected, probing };
  static constexpr std::int64_t healthy_mark = std::numeric_limits<std::int64_t>::min();
  enum counter : std::size_t { ok, bad };

  void eject_for(millis d, time_point now, ejection_reason why);  // mu_ held
  void eject_with_backoff(time_point now, ejection_reason why);   // mu_ held
  // Health event lines, written after the lock is released.
  struct pending_event {
    const char* event = nullptr;  // "ejected", "recovered"
    ejection_reason reason{};
    millis length{};
    time_point until{};
    std::uint64_t ejections = 0;
    time_point at{};
  };
  void emit(const pending_event& e) const;
  void report_locked(outcome o, time_point now, std::optional<millis> retry_after);  // mu_ held
  void restore(time_point now);                                                      // mu_ held
  bool probe_lost(time_point now) const;                                             // mu_ held
  bool should_eject_on_failure(time_point now) const;                                // mu_ held

  const health_options opt_;
  mutable std::mutex mu_;
  mode mode_ = mode::healthy;
  sliding_window<2> window_;
  int consecutive_ = 0;
  int level_ = 0;  // ejections since the last lasting recovery: cooldown = base * 2^level
  time_point until_{};
  time_point probe_started_{};
  std::optional<time_point> restored_at_;
  std::uint64_t ejections_ = 0;
  ejection_reason last_reason_ = ejection_reason::consecutive_failures;
  std::array<std::uint64_t, static_cast<std::size_t>(ejection_reason::count)> by_reason_{};
  pending_event pending_;  // filled under mu_ by eject_for/restore, emitted after unlocking
  std::string label_;
  // Mirror of until_ (or healthy_mark) readable without the mutex.
  std::atomic<std::int64_t> until_ns_{healthy_mark};
  std::atomic<int> in_flight_{0};
  std::atomic<double> ewma_ms_{0.0};
};

// Counts one request on a target for as long as it lives (an attempt, including its stream).
class in_flight_guard {
 public:
  explicit in_flight_guard(target_health& h) : h_(&h) { h.start_request(); }
  in_flight_guard(in_flight_guard&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  in_flight_guard& operator=(in_flight_guard&&) = delete;
  ~in_flight_guard() {
    if (h_) h_->finish_request();
  }

 private:
  target_health* h_;
};

// Hands out the same health object for the same target id while anyone holds it, so a reload
// that keeps a target keeps its health; ids nobody holds any more are forgotten. Holds no
// settings of its own: a new target gets the options of the config that brings it (`o`), so
// building a snapshot that is then thrown away changes nothing here but entries that expire
// with it. Existing targets keep their options so their state stays consistent.
class health_registry {
 public:
  std::shared_ptr<target_health> get(const std::string& target_id, const health_options& o = {},
                                     std::string_view label = {});

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<target_health>> items_;
};

}  // namespace ob::routing
