// Micro-benchmarks of the shared routing state every request touches, run with 1, 2 and 4
// threads to show what contention between workers costs: a weighted pick (one lock per group),
// the retry budget's per-request record (lock-free), a target's health report (one lock per
// target). The numbers back docs/ARCHITECTURE.md's statement of what workers share.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "routing/policies/select.hpp"

namespace {

using namespace ob::routing;

const time_point now = time_point{} + std::chrono::hours(1);

struct weighted_group {
  group g;
  weighted_group() {
    g.name = "g";
    g.state = std::make_shared<group_state>();
    g.policy = policy_kind::weighted;
    std::uint32_t weights[] = {5, 1, 1, 3};
    for (std::size_t i = 0; i < 4; ++i) {
      target t;
      t.id = "t" + std::to_string(i);
      t.weight = weights[i];
      t.health = std::make_shared<target_health>();
      t.wrr_slot = g.state->wrr_slot(t.id);
      g.targets.push_back(std::move(t));
    }
  }
};

void BM_WeightedSelect(benchmark::State& state) {
  static weighted_group wg;
  rng r(static_cast<std::uint64_t>(state.thread_index()) + 1);
  for (auto _ : state) benchmark::DoNotOptimize(select(wg.g, now, {}, r));
}
BENCHMARK(BM_WeightedSelect)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

void BM_RetryBudgetRecordRequest(benchmark::State& state) {
  static retry_budget budget;
  for (auto _ : state) budget.record_request(now);
}
BENCHMARK(BM_RetryBudgetRecordRequest)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

void BM_HealthReportSuccess(benchmark::State& state) {
  static target_health health;
  for (auto _ : state) health.report(outcome::success, now);
}
BENCHMARK(BM_HealthReportSuccess)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

}  // namespace
