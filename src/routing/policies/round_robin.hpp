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

// Over the eligible targets; same cursor, so with every target eligible the sequence is the
// one above. When some are left out the spread over the rest stays even.
inline std::size_t pick_round_robin(std::span<const candidate> eligible, group_state& s, rng&) {
  if (eligible.size() == 1) return 0;
  return static_cast<std::size_t>(s.next.fetch_add(1, std::memory_order_relaxed) % eligible.size());
}

}  // namespace ob::routing
