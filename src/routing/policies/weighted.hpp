// Smooth weighted round robin, as nginx does it: every pick adds each eligible target's weight
// to its current value, takes the largest, and subtracts the total from the winner. Shares are
// exact over every sum-of-weights picks, and a heavy target's picks are spread out (5:1:1 gives
// a a b a c a a, not a a a a a b c). Each target's current value is kept at its slot, which
// follows the target's identity across reloads, and ties go to the lower slot, so a reload
// that reorders targets continues the same sequence. One lock per group: a pick is a few adds over
// a handful of targets (bench/micro/routing_bench.cpp measures it under contention).
#pragma once

#include <cstddef>
#include <mutex>

#include "routing/policies/policy.hpp"
#include "routing/table.hpp"

namespace ob::routing {

inline std::size_t pick_weighted(std::span<const candidate> eligible, group_state& s,
                                 request_picks&, rng&) {
  if (eligible.size() == 1) return 0;
  std::lock_guard lock(s.wrr_mu);
  auto& current = s.wrr_current;
  std::int64_t total = 0;
  std::size_t best = 0;
  for (std::size_t k = 0; k < eligible.size(); ++k) {
    auto i = eligible[k].slot;
    if (i >= current.size()) current.resize(i + 1, 0);  // a group built by hand (tests)
    current[i] += eligible[k].weight;
    total += eligible[k].weight;
    auto b = eligible[best].slot;
    // Ties go to the lower slot, not the earlier position: the sequence then depends on the
    // targets alone, not on their order in the config.
    if (current[i] > current[b] || (current[i] == current[b] && i < b)) best = k;
  }
  current[eligible[best].slot] -= total;
  return best;
}

}  // namespace ob::routing
