// Lowest latency by power of two choices: compare two random eligible targets on their
// average time to first byte times (requests in flight + 1), and take the lower. The load
// factor matters: on latency alone the fastest target would take everything until it slowed
// down, and a slower one would never be measured again. An untried target (no sample yet)
// scores 0 and wins, so new targets get measured. Weights do not apply here.
#pragma once

#include <cstddef>

#include "routing/health.hpp"
#include "routing/policies/policy.hpp"

namespace ob::routing {

inline double latency_score(const target_health& h) {
  return h.ewma_ms() * (static_cast<double>(h.in_flight()) + 1.0);
}

inline std::size_t pick_latency(std::span<const candidate> eligible, group_state&, request_picks&,
                                rng& r) {
  if (eligible.size() == 1) return 0;
  auto [a, b] = two_choices(eligible.size(), r);
  return latency_score(*eligible[a].health) <= latency_score(*eligible[b].health) ? a : b;
}

}  // namespace ob::routing
