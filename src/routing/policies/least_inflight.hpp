// Least in-flight by power of two choices: compare two random eligible targets on requests in
// flight per unit of weight and take the lighter. Two random looks avoid the herd that "global
// least" causes when every worker sees the same minimum at once, at O(1) per pick.
#pragma once

#include <cstddef>

#include "routing/health.hpp"
#include "routing/policies/policy.hpp"

namespace ob::routing {

inline std::size_t pick_least_inflight(std::span<const candidate> eligible, group_state&,
                                       request_picks&, rng& r) {
  if (eligible.size() == 1) return 0;
  auto [a, b] = two_choices(eligible.size(), r);
  // in_flight_a / weight_a <= in_flight_b / weight_b, without division.
  auto load_a = static_cast<std::int64_t>(eligible[a].health->in_flight()) * eligible[b].weight;
  auto load_b = static_cast<std::int64_t>(eligible[b].health->in_flight()) * eligible[a].weight;
  return load_a <= load_b ? a : b;
}

}  // namespace ob::routing
