// Round robin across a group's targets. The cursor is one atomic shared by every worker, so
// the spread is even across the whole process (not per thread) and survives reloads.
#pragma once

#include <cstddef>

#include "routing/table.hpp"

namespace ob::routing {

inline std::size_t pick_round_robin(const group& g) {
  auto n = g.targets.size();
  if (n == 1) return 0;
  return static_cast<std::size_t>(g.state->next.fetch_add(1, std::memory_order_relaxed) % n);
}

}  // namespace ob::routing
