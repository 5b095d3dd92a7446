// Micro-benchmarks of access-line formatting (runs once per request on a worker thread): the
// default logfmt text line, and the JSON line of `"log": {"format": "json"}`. Each iteration
// appends one line to a reused buffer, as the per-thread access buffer does.
#include <benchmark/benchmark.h>

#include <string>

#include "observe/events.hpp"
#include "observe/log.hpp"

namespace {

using namespace ob::observe;

request_record typical() {
  request_record r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.group = "fast";
  r.target = "gpt-4o-mini";
  r.provider = "https://api.openai.com/v1";
  r.status = 200;
  r.duration_ms = 812.345;
  r.bytes_in = 1834;
  r.bytes_out = 9211;
  r.stream = true;
  r.attempts = 1;
  r.prompt_tokens = 412;
  r.completion_tokens = 180;
  r.total_tokens = 592;
  return r;
}

template <class Format>
void run(benchmark::State& state, const request_record& r, Format format) {
  std::string buffer;
  buffer.reserve(64 * 1024);
  for (auto _ : state) {
    format(buffer, r);
    if (buffer.size() > 32 * 1024) buffer.clear();  // as the flush does
    benchmark::DoNotOptimize(buffer.data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_AccessLineText(benchmark::State& state) {
  run(state, typical(), [](std::string& b, const request_record& r) { format_access_line(b, r); });
}
BENCHMARK(BM_AccessLineText);

void BM_AccessLineJson(benchmark::State& state) {
  run(state, typical(), [](std::string& b, const request_record& r) { format_access_json(b, r); });
}
BENCHMARK(BM_AccessLineJson);

// The whole per-request call in the default configuration (text, event ring off), without the
// batched write(2): access_log() flushes every 32 KiB, so stderr goes to /dev/null here.
void BM_AccessLogCallDefault(benchmark::State& state) {
  const auto r = typical();
  for (auto _ : state) access_log(r);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AccessLogCallDefault);

// The same with the event ring on (admin API enabled): the JSON form is made and copied in.
void BM_AccessLogCallRingOn(benchmark::State& state) {
  const auto r = typical();
  events().set_enabled(true);
  for (auto _ : state) access_log(r);
  events().set_enabled(false);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AccessLogCallRingOn);

}  // namespace
