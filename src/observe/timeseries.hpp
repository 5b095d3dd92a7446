// The last minutes of traffic, one point per second, in memory: what the dashboard charts.
//
// Nothing here runs per request. Once a second the admin thread asks every worker to fold its
// metrics shard into a few totals (`fold`, on the worker's own thread, like a scrape but without
// copying the shard), adds the workers' totals up and hands the sum to `timeseries::sample`,
// which turns the difference from the previous second into a point: requests/s, error ratio,
// latency and time-to-first-token percentiles (estimated from the histogram buckets, as
// Prometheus' histogram_quantile does), tokens/s, open streams. Per (group, target) it keeps
// attempts/s and failed attempts/s for the sparklines.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "observe/gateway_metrics.hpp"

namespace ob::observe::metrics {

// Cumulative since start (counters and histograms), or current (gauges).
struct traffic_totals {
  // (group id << 32 | target id) -> (status code id -> answers)
  std::unordered_map<std::uint64_t, std::unordered_map<std::uint32_t, std::uint64_t>> answers;
  // (group id << 32 | target id) -> attempts sent to the target, and those that failed (any
  // outcome but ok, client_gone and status_4xx: the target's fault, not the client's). A
  // request that failed over counts on every target it tried.
  std::unordered_map<std::uint64_t, std::array<std::uint64_t, 2>> attempts;
  std::uint64_t tokens_in = 0, tokens_out = 0;
  histogram duration;  // every request_duration series merged (request_duration_buckets)
  histogram ttft;      // every time_to_first_token series merged
  std::int64_t inflight = 0, open_streams = 0;
  // The shard's last rate-limit headers per target (the newest wins when adding).
  std::unordered_map<series_key, shard::gauge_at, series_key_hash> ratelimit_remaining;

  void add(const traffic_totals& other);
};

// Folds a worker's shard into totals: a walk over its series, no copy of the shard.
traffic_totals fold(const shard& s);

// The q-quantile (0..1) of the samples of `h` (bucket counts, not cumulative), interpolated
// linearly inside the bucket it falls in; the +Inf bucket answers the highest finite bound.
// NaN when `h` has no samples.
double quantile(bucket_layout layout, const histogram& h, double q);

class timeseries {
 public:
  explicit timeseries(std::size_t seconds = 900);

  // A point for unix second `t` from the totals now (the first call only sets the base; a `t`
  // not after the previous one is ignored). `status_of` maps a status code label id to the
  // number (e.g. "503" -> 503); answers with status >= 500 count as errors.
  void sample(std::int64_t t, const traffic_totals& now,
              const std::function<int(std::uint32_t)>& status_of);

  // {"interval_s":1,"capacity":N,"points":{"t":[..],"rps":[..],...},"targets":[{"group",
  //  "target","rps":[..],"errors":[..]}]} (per target: attempts/s and failed attempts/s): the
  //  points with t > after, oldest first, columns
  // aligned with "t". `name_of` maps a label id to its text. Unknown values are null.
  std::string json(std::int64_t after,
                   const std::function<std::string_view(std::uint32_t)>& name_of) const;

  std::size_t size() const { return size_; }

  struct point {
    std::int64_t t = 0;
    double rps = 0, error_ratio = 0;  // error_ratio NaN without requests
    double p50 = 0, p99 = 0;          // request duration, seconds; NaN without requests
    double ttft_p50 = 0, ttft_p99 = 0;
    double tokens_in = 0, tokens_out = 0;  // per second
    double open_streams = 0, inflight = 0;
  };
  // The i-th kept point, oldest first (i < size()).
  const point& at(std::size_t i) const { return points_[index(i)]; }

 private:
  std::size_t index(std::size_t i) const { return (head_ + i) % points_.size(); }

  std::vector<point> points_;  // a ring: head_ is the oldest, size_ kept
  std::size_t head_ = 0, size_ = 0;
  // Per (group << 32 | target): attempts/s and failed attempts/s, slots aligned with points_.
  std::map<std::uint64_t, std::vector<std::array<float, 2>>> targets_;
  bool have_base_ = false;
  std::int64_t base_t_ = 0;
  traffic_totals base_;
};

}  // namespace ob::observe::metrics
