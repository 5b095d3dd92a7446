// Cheap clock reads for the hot path.
//
// std::chrono::steady_clock::now() costs ~28 ns on the virtual machines we measure on (the vDSO
// reads and scales the TSC); a proxied request used to read it ~18 times, ~0.5 us per request.
// The kernel's coarse clocks are a plain memory read (~3 ns) with the resolution of the
// scheduler tick (1-4 ms). They read the same clocks as steady_clock / system_clock, so their
// time points mix with precise ones; a coarse reading is at most one tick behind.
//
// Use coarse_now() for deadlines, timeouts, health windows and pool ages (milliseconds and
// seconds); keep steady_clock::now() for durations that are reported (request latency, time to
// first byte), where a tick would be a visible error.
#pragma once

#include <time.h>

#include <chrono>

namespace ob::observe {

inline std::chrono::nanoseconds read_clock(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

inline std::chrono::steady_clock::time_point coarse_now() {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          read_clock(CLOCK_MONOTONIC_COARSE)));
}

// The tick of the coarse clocks (how far behind a reading can be).
inline std::chrono::nanoseconds coarse_resolution() {
  static const std::chrono::nanoseconds r = [] {
    timespec ts{};
    ::clock_getres(CLOCK_MONOTONIC_COARSE, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  }();
  return r;
}

// A deadline `limit` from now that never comes before now + limit on the precise clock: it may
// come up to one tick later.
inline std::chrono::steady_clock::time_point coarse_deadline(std::chrono::nanoseconds limit) {
  return coarse_now() + coarse_resolution() + limit;
}

inline std::chrono::system_clock::time_point coarse_wall_now() {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          read_clock(CLOCK_REALTIME_COARSE)));
}

}  // namespace ob::observe
