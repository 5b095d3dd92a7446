// The one interface every balancing policy implements: given the targets of a group that may
// take this request (healthy, not yet tried by it), return the position of the one to use.
// Policies are pure functions of that list, the group's shared state, the request's own pick
// state and a random source; health, probing and failover are select()'s business
// (select.hpp), not theirs.
//
// Header-only: the routing library is built from src/routing/*.cpp, and each policy is a few
// lines that the select() loop inlines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace ob::routing {

class target_health;
struct group_state;

enum class policy_kind {
  round_robin,     // even spread, one process-wide cursor per group
  weighted,        // smooth weighted round robin (nginx): exact shares by config weight
  least_inflight,  // power of two choices on in-flight requests / weight
  latency,         // power of two choices on time to first byte (EWMA) x load
};

struct candidate {
  std::size_t index;      // in group::targets
  std::uint32_t weight;   // >= 1
  target_health* health;  // never null
  std::uint32_t slot;     // target::wrr_slot: the weighted policy's state is kept by identity
};

// What the picks of one client request share: select() runs once per attempt, and a failover
// must not count as a new request. Round robin keeps here the value it drew from the group's
// cursor (policies/round_robin.hpp); the other policies ignore it. The caller owns one per
// request, starts it empty ({}) and passes the same one to every pick of that request.
struct request_picks {
  std::uint64_t cursor = 0;  // round robin: what is left of the drawn value
  bool drawn = false;        // round robin: the group's cursor moved for this request
};

// Small, fast, not cryptographic: picks two candidates per request. One per thread in
// production (no sharing), seeded by the caller; tests seed it for repeatable runs.
class rng {
 public:
  explicit rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {  // splitmix64
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) for n < 2^32 (multiply-shift, no division).
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(((next() >> 32) * n) >> 32); }

 private:
  std::uint64_t s_;
};

// Returns a position in `eligible` (not a target index). `eligible` is never empty.
using pick_fn = std::size_t (*)(std::span<const candidate> eligible, group_state& state,
                                request_picks& request, rng& r);

// Two distinct random positions out of n >= 2, for the power-of-two-choices policies.
inline std::pair<std::size_t, std::size_t> two_choices(std::size_t n, rng& r) {
  std::size_t a = r.below(n);
  std::size_t b = r.below(n - 1);
  if (b >= a) ++b;
  return {a, b};
}

}  // namespace ob::routing
