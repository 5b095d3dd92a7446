// Cost of keys' limits per request: admit + settle on the in-memory backend, 1,000 keys with
// rpm + tpm + concurrency + a token budget, requests spread over the keys; 1 and 2 threads
// (each key has its own mutex, so threads contend only when they hit the same key).
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "limits/memory_backend.hpp"

namespace {

using namespace ob::limits;

struct bench_keys {
  state_registry reg;
  std::vector<key_demand> keys;
  std::unique_ptr<memory_backend> be;
  std::vector<std::string> names;

  explicit bench_keys(std::size_t n) {
    std::vector<std::shared_ptr<key_state>> states;
    names.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      names.push_back("key-" + std::to_string(i));
      states.push_back(reg.key(names.back()));
      key_demand k;
      k.index = static_cast<std::uint32_t>(i);
      k.name = names.back();
      // Limits high enough that nothing is refused: the cost of the work, not of refusals.
      k.limits = {1'000'000'000, 0, 1'000'000'000'000, 0, 1'000'000, 0};
      k.budget = {budget_unit::tokens, budget_period::month, 1'000'000'000'000'000};
      keys.push_back(k);
    }
    be = std::make_unique<memory_backend>(std::move(states),
                                          std::vector<std::shared_ptr<target_state>>{});
  }
};

bench_keys& shared_keys() {
  static bench_keys k(1000);
  return k;
}

void BM_AdmitSettle1000Keys(benchmark::State& state) {
  auto& k = shared_keys();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7919;
  epoch_ms now = wall_now();
  for (auto _ : state) {
    demand d;
    d.key = &k.keys[i++ % k.keys.size()];
    d.input_tokens = 100;
    d.output_tokens = 1024;
    d.now = now;
    auto v = k.be->decide(d);
    benchmark::DoNotOptimize(v);
    k.be->settle_at(v.res, {90, 120}, now);
    now += (i & 63) == 0;  // time moves on a little
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AdmitSettle1000Keys)->Threads(1)->Threads(2)->UseRealTime();

// The same key from every thread: the worst case for the per-key mutex.
void BM_AdmitSettleOneKey(benchmark::State& state) {
  auto& k = shared_keys();
  epoch_ms now = wall_now();
  for (auto _ : state) {
    demand d;
    d.key = &k.keys[0];
    d.input_tokens = 100;
    d.output_tokens = 1024;
    d.now = now;
    auto v = k.be->decide(d);
    benchmark::DoNotOptimize(v);
    k.be->settle_at(v.res, {90, 120}, now);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AdmitSettleOneKey)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
