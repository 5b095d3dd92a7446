// Micro-benchmarks of a /metrics scrape with 50 groups x 10 targets (500 targets): what the
// admin thread does once per scrape after every worker has copied its shard. Two shards (two
// workers) are filled with realistic series: every target answered 200s with token usage from
// a few clients, some 429s and upstream timeouts; attempts by outcome, failovers, rate-limit
// gauges. Half the groups stream (time per output token). Reported: merge of the two copies +
// render into a string (the scrape), each of the two alone, and the scrape into a kept buffer.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

#include "observe/gateway_metrics.hpp"
#include "observe/metrics.hpp"

namespace {

namespace m = ob::observe::metrics;

constexpr int groups = 50;
constexpr int targets_per_group = 10;
constexpr int clients = 20;  // client keys; each target is used by 3 of them

struct fixture {
  std::vector<std::uint32_t> group_ids;
  std::vector<std::uint32_t> target_ids;  // groups * targets_per_group
  m::shard shards[2];
  m::live_set live;

  fixture() {
    auto& in = m::labels();
    const char* hosts[] = {"api.openai.com", "api.anthropic.com", "api.mistral.ai",
                           "eu.example-llm.net", "llm-gw.internal.example.com"};
    const char* vendors[] = {"openai", "anthropic", "mistral_ai", "eu.example-llm.net",
                             "llm-gw.internal.example.com"};
    std::vector<std::uint32_t> client_ids;
    for (int c = 0; c < clients; ++c) client_ids.push_back(in.intern("team-" + std::to_string(c)));
    auto chat = m::operation_for_path("/v1/chat/completions");
    auto err_429 = in.intern("429");
    auto err_timeout = in.intern("upstream_timeout");
    auto out_ok = in.intern("ok"), out_429 = in.intern("status_429"),
         out_timeout = in.intern("timeout");
    for (int g = 0; g < groups; ++g) {
      auto gid = in.intern("group-" + std::to_string(g) + "-chat");
      group_ids.push_back(gid);
      live.groups.insert(gid);
      for (int t = 0; t < targets_per_group; ++t) {
        int h = (g + t) % 5;
        std::string model = "model-" + std::to_string(g) + "-" + std::to_string(t);
        auto tid = in.intern(model + "@" + hosts[h]);
        target_ids.push_back(tid);
        live.targets.insert(tid);
        auto provider = in.intern(vendors[h]);
        auto response_model = in.intern(model + "-2024-08-06");
        for (auto& sh : shards) {
          for (int i = 0; i < 40; ++i) {  // 40 answered requests per target and worker
            m::request_sample s;
            s.group = gid;
            s.target = tid;
            s.provider = provider;
            s.response_model = response_model;
            s.client = client_ids[(g * 7 + t + i % 3) % clients];
            s.operation = chat;
            s.stream = g % 2 == 0;
            s.duration_s = 0.05 * (1 + i % 30);
            s.ttft_s = 0.002 * (1 + i % 50);
            s.upstream_s = s.duration_s - 0.0003;
            s.status = 200;
            s.input_tokens = 100 + 37 * i;
            s.output_tokens = 20 + 11 * i;
            if (i % 13 == 5) {  // rate limited by the provider
              s.status = 429;
              s.error_type = err_429;
              s.input_tokens = s.output_tokens = -1;
            } else if (i % 17 == 3) {  // provider too slow
              s.status = 504;
              s.error_type = err_timeout;
              s.input_tokens = s.output_tokens = -1;
            }
            sh.record(s);
            sh.attempt(gid, tid,
                       s.status == 200   ? out_ok
                       : s.status == 429 ? out_429
                                         : out_timeout);
          }
          sh.failover(gid);
          sh.ratelimit(tid, 0, 4999, 1.0);
          sh.ratelimit(tid, 1, 1.5e6, 1.0);
        }
      }
    }
  }
};

const fixture& data() {
  static const fixture f;
  return f;
}

// What the admin thread adds per target besides the shard (openbridge_target_up and
// openbridge_target_ejections_total with 4 reasons), so the output has the scrape's size.
void per_target_rows(m::text_writer& w, const fixture& f) {
  const char* reasons[] = {"consecutive_failures", "error_ratio", "retry_after", "probe_failed"};
  w.family("openbridge_target_up", "gauge", "1 while a target takes traffic.");
  for (std::size_t i = 0; i < f.target_ids.size(); ++i) {
    m::label l[] = {{"group", m::labels().value(f.group_ids[i / targets_per_group])},
                    {"target", m::labels().value(f.target_ids[i])}};
    w.sample("openbridge_target_up", l, 1.0);
  }
  w.family("openbridge_target_ejections_total", "counter", "Ejections of a target, by reason.");
  for (std::size_t i = 0; i < f.target_ids.size(); ++i)
    for (const char* r : reasons) {
      m::label l[] = {{"group", m::labels().value(f.group_ids[i / targets_per_group])},
                      {"target", m::labels().value(f.target_ids[i])},
                      {"reason", r}};
      w.sample("openbridge_target_ejections_total", l, std::uint64_t{0});
    }
}

// The scrape as render_metrics does it: merge the two workers' copies (the first copy is the
// base), render every family into one string sized from the previous scrape.
void BM_MetricsScrape500Targets(benchmark::State& state) {
  const auto& f = data();
  std::size_t bytes = 0, series = 0;
  m::output_size_hint size_hint;
  for (auto _ : state) {
    m::shard merged = f.shards[0];  // render_metrics moves the first worker's copy in
    merged.merge(f.shards[1]);
    std::string out = size_hint.buffer();
    m::text_writer w(out);
    m::render(w, merged, f.live);
    per_target_rows(w, f);
    m::write_process_metrics(w);
    size_hint.remember(out.size());
    bytes = out.size();
    series = merged.requests.size() + merged.attempts.size() + merged.tokens.size() +
             merged.token_usage.size() + merged.duration.size() + merged.ttft.size() +
             merged.tpot.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["series"] = static_cast<double>(series);
}
BENCHMARK(BM_MetricsScrape500Targets)->Unit(benchmark::kMillisecond);

void BM_MetricsMerge2Shards500Targets(benchmark::State& state) {
  const auto& f = data();
  for (auto _ : state) {
    m::shard merged;
    merged.merge(f.shards[0]);
    merged.merge(f.shards[1]);
    benchmark::DoNotOptimize(&merged);
  }
}
BENCHMARK(BM_MetricsMerge2Shards500Targets)->Unit(benchmark::kMillisecond);

void BM_MetricsRender500Targets(benchmark::State& state) {
  const auto& f = data();
  m::shard merged;
  merged.merge(f.shards[0]);
  merged.merge(f.shards[1]);
  std::size_t lines = 0;
  for (auto _ : state) {
    std::string out;
    out.reserve(64 * 1024);
    m::text_writer w(out);
    m::render(w, merged, f.live);
    benchmark::DoNotOptimize(out.data());
    state.PauseTiming();
    lines = static_cast<std::size_t>(std::count(out.begin(), out.end(), '\n'));
    state.ResumeTiming();
  }
  state.counters["lines"] = static_cast<double>(lines);
}
BENCHMARK(BM_MetricsRender500Targets)->Unit(benchmark::kMillisecond);

// The same scrape into a buffer kept between scrapes (capacity reused): what is left once the
// 13 MB output no longer faults in fresh pages on every scrape.
void BM_MetricsScrape500TargetsKeptBuffer(benchmark::State& state) {
  const auto& f = data();
  std::string out;
  for (auto _ : state) {
    m::shard merged;
    merged.merge(f.shards[0]);
    merged.merge(f.shards[1]);
    out.clear();
    m::text_writer w(out);
    m::render(w, merged, f.live);
    per_target_rows(w, f);
    m::write_process_metrics(w);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_MetricsScrape500TargetsKeptBuffer)->Unit(benchmark::kMillisecond);

}  // namespace
