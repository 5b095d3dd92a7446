// Picks the target for one attempt of a request: the step between "which group" and "send".
//
//   1. Targets this request already tried are out (failover never repeats a target).
//   2. A target whose ejection cooldown is over is probed: the first request to win its probe
//      goes there (selection::probe), so recovery is noticed at the cost of one request.
//   3. Healthy targets are eligible; the group's policy picks one of them.
//   4. None eligible: the untried target whose ejection ends first (selection::fallback), so
//      a group whose targets are all ejected degrades to "try the best bet", not to an error.
//   5. Every target tried: nullopt, the request has run out of failover.
//
// One request, as the proxy drives it (all times from one steady clock, passed in):
//   g.state->retries.record_request(now);                once per client request
//   request_picks picks;                                 once per client request
//   loop:
//     sel = select(g, now, tried, picks);                nullopt: answer with the last error
//     auto& h = *g.targets[sel->index].health;
//     in_flight_guard busy(h);                           the whole attempt, stream included
//     h.record_latency(ttfb);                            when the answer head arrives
//     h.report(outcome, now, retry_after);               once, when the attempt's fate is known:
//         outcome::success, or *health_outcome(kind, status); none for client_error (then, if
//         sel->probe, h.release_probe() so the next request can probe)
//     stop on success, !retryable(kind, status) or !g.state->retries.try_retry(now);
//     tried.push_back(sel->index);
#pragma once

#include <algorithm>
#include <optional>
#include <random>
#include <span>
#include <thread>
#include <vector>

#include "routing/policies/latency.hpp"
#include "routing/policies/least_inflight.hpp"
#include "routing/policies/policy.hpp"
#include "routing/policies/round_robin.hpp"
#include "routing/policies/weighted.hpp"
#include "routing/table.hpp"

namespace ob::routing {

struct selection {
  std::size_t index = 0;  // in group::targets
  bool probe = false;     // this attempt is the target's probe: report its outcome (or
                          // release_probe() if it ends without one)
  bool fallback = false;  // every untried target is ejected; this one's cooldown ends first
};

inline pick_fn policy_for(policy_kind k) {
  switch (k) {
    case policy_kind::round_robin:
      return &pick_round_robin;
    case policy_kind::weighted:
      return &pick_weighted;
    case policy_kind::least_inflight:
      return &pick_least_inflight;
    case policy_kind::latency:
      return &pick_latency;
  }
  return &pick_round_robin;
}

namespace detail {

inline bool contains(std::span<const std::size_t> s, std::size_t i) {
  return std::find(s.begin(), s.end(), i) != s.end();
}

// Reused per thread so a pick allocates nothing once warm.
inline std::vector<candidate>& scratch() {
  thread_local std::vector<candidate> v;
  v.clear();
  return v;
}

inline std::optional<selection> fallback(const group& g, std::span<const std::size_t> tried) {
  std::optional<selection> best;
  time_point best_until{};
  for (std::size_t i = 0; i < g.targets.size(); ++i) {
    if (contains(tried, i)) continue;
    auto until = g.targets[i].health->ejected_until();
    if (!best || until < best_until) {
      best = selection{i, false, true};
      best_until = until;
    }
  }
  return best;
}

}  // namespace detail

// `tried`: indexes this request already used (usually 0-2 entries). `picks`: the request's
// own pick state, the same object for each of its attempts (a failover is not a new request).
inline std::optional<selection> select(const group& g, time_point now,
                                       std::span<const std::size_t> tried, request_picks& picks,
                                       rng& r) {
  auto& eligible = detail::scratch();
  for (std::size_t i = 0; i < g.targets.size(); ++i) {
    const auto& t = g.targets[i];
    if (detail::contains(tried, i)) continue;
    if (t.health->healthy())
      eligible.push_back(candidate{i, t.weight, t.health.get(), t.wrr_slot});
    else if (t.health->try_acquire_probe(now))
      return selection{i, true, false};
  }
  if (eligible.empty()) return detail::fallback(g, tried);
  auto pos = policy_for(g.policy)(eligible, *g.state, picks, r);
  return selection{eligible[pos].index, false, false};
}

inline rng& thread_rng() {
  thread_local rng r{std::random_device{}() ^
                     (std::hash<std::thread::id>{}(std::this_thread::get_id()) << 1)};
  return r;
}

inline std::optional<selection> select(const group& g, time_point now,
                                       std::span<const std::size_t> tried, request_picks& picks) {
  return select(g, now, tried, picks, thread_rng());
}

// The first pick of a request of its own: each call counts as one more request.
inline std::optional<selection> select(const group& g, time_point now,
                                       std::span<const std::size_t> tried, rng& r) {
  request_picks picks;
  return select(g, now, tried, picks, r);
}

inline std::optional<selection> select(const group& g, time_point now,
                                       std::span<const std::size_t> tried = {}) {
  return select(g, now, tried, thread_rng());
}

}  // namespace ob::routing
