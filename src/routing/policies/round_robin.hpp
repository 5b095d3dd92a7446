// Round robin across a group's targets. The cursor is one atomic shared by every worker, so
// the spread is even across the whole process (not per thread) and survives reloads.
#pragma once

#include <cstddef>

#include "routing/policies/policy.hpp"
#include "routing/table.hpp"

namespace ob::routing {

// Over all targets of the group, health ignored (the pre-health behaviour).
inline std::size_t pick_round_robin(const group& g) {
  auto n = g.targets.size();
  if (n == 1) return 0;
  return static_cast<std::size_t>(g.state->next.fetch_add(1, std::memory_order_relaxed) % n);
}

// Over the eligible targets. A request draws one value from the cursor, at its first pick
// with a choice to make, so the cursor moves once per request however many attempts it takes;
// with every target eligible the first picks follow the sequence above. Each pick uses the
// value modulo the number of eligible targets and keeps the quotient for the request's next
// pick (a failover, over the targets left): the drawn value, read in the mixed radix
// (n, n - 1, ...), names one order of the targets, and consecutive values run through every
// order equally often. So when a target fails, the others share its requests evenly, rather
// than the one after it in the list taking them all (or, drawing again per attempt, the cursor
// skipping ahead). When some are left out (ejected) the spread over the rest stays even.
inline std::size_t pick_round_robin(std::span<const candidate> eligible, group_state& s,
                                    request_picks& request, rng&) {
  if (eligible.size() == 1) return 0;
  if (!request.drawn) {
    request.cursor = s.next.fetch_add(1, std::memory_order_relaxed);
    request.drawn = true;
  }
  auto n = static_cast<std::uint64_t>(eligible.size());
  auto pos = request.cursor % n;
  request.cursor /= n;
  return static_cast<std::size_t>(pos);
}

}  // namespace ob::routing
