// Parameterized SSE tests run once with each variant of the byte scan behind the stream shape
// check and the fast path (detail::use_scan): AVX2 (skipped on a CPU without it), SSE2, scalar.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "proxy/sse/rewrite.hpp"

namespace ob::proxy::sse::test {

class scan_variants : public ::testing::TestWithParam<detail::scan_isa> {
 protected:
  void SetUp() override {
#if defined(__x86_64__)
    if (GetParam() == detail::scan_isa::avx2 && !__builtin_cpu_supports("avx2"))
      GTEST_SKIP() << "no AVX2 on this CPU";
#else
    if (GetParam() != detail::scan_isa::scalar) GTEST_SKIP() << "x86-64 only";
#endif
    before_ = detail::use_scan(GetParam());
  }
  void TearDown() override {
    detail::use_scan(before_);
  }

 private:
  detail::scan_isa before_ = detail::scan_isa::best;
};

inline auto every_scan() {
  return ::testing::Values(detail::scan_isa::avx2, detail::scan_isa::sse2,
                           detail::scan_isa::scalar);
}

inline std::string scan_name(const ::testing::TestParamInfo<detail::scan_isa>& info) {
  switch (info.param) {
    case detail::scan_isa::avx2:
      return "avx2";
    case detail::scan_isa::sse2:
      return "sse2";
    default:
      return "scalar";
  }
}

}  // namespace ob::proxy::sse::test
