// Retry-After and retry-after-ms parsing (src/routing/retry.*). Invariants: never throws; a
// result is within [0, cap]; a later `now` never gives a longer wait; a smaller cap caps.
#include <chrono>
#include <string>

#include "fuzz/split.hpp"
#include "routing/retry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace std::chrono;
  using ob::routing::millis;
  const std::string_view v(reinterpret_cast<const char*>(data), size);
  // A fixed "now" (2024-05-01T12:00:00Z) so that dates around it are meaningful to the fuzzer.
  const system_clock::time_point now{seconds{1714564800}};
  const millis cap = minutes(5);
  try {
    const auto a = ob::routing::parse_retry_after(v, now, cap);
    const auto later = ob::routing::parse_retry_after(v, now + seconds(1), cap);
    OB_FUZZ_CHECK(a.has_value() == later.has_value());
    if (a) {
      OB_FUZZ_CHECK(*a >= millis(0) && *a <= cap);
      OB_FUZZ_CHECK(*later <= *a);
      const auto small = ob::routing::parse_retry_after(v, now, millis(1000));
      OB_FUZZ_CHECK(small && *small == std::min(*a, millis(1000)));
    }
    const auto ms = ob::routing::parse_retry_after_ms(v, cap);
    if (ms) OB_FUZZ_CHECK(*ms >= millis(0) && *ms <= cap);
  } catch (...) {
    ob::fuzz::fail("Retry-After parsing threw");
  }
  return 0;
}
