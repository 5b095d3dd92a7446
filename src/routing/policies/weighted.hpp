// Smooth weighted round robin, as nginx does it: every pick adds each eligible target's weight
// to its current value, takes the largest, and subtracts the total from the winner. Shares are
// exact over every sum-of-weights picks, and a heavy target's picks are spread out (5:1:1 gives
// a a b a c a a, not a a a a a b c). One lock per group: a pick is a few adds over a handful of
// targets, far shorter than any contention it could cause (see policies_test's timing).
#pragma once

#include <cstddef>
#include <mutex>

#include "routing/policies/policy.hpp"
#include "routing/table.hpp"

namespace ob::routing {

inline std::size_t pick_weighted(std::span<const candidate> eligible, group_state& s, rng&) {
  if (eligible.size() == 1) return 0;
  std::lock_guard lock(s.wrr_mu);
  auto& current = s.wrr_current;
  std::int64_t total = 0;
  std::size_t best = 0;
  for (std::size_t k = 0; k < eligible.size(); ++k) {
    auto i = eligible[k].index;
    if (i >= current.size()) current.resize(i + 1, 0);  // first pick, or a reload added targets
    current[i] += eligible[k].weight;
    total += eligible[k].weight;
    if (current[i] > current[eligible[best].index]) best = k;
  }
  current[eligible[best].index] -= total;
  return best;
}

}  // namespace ob::routing
