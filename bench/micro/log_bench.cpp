// Micro-benchmarks of access-line formatting (runs once per request on a worker thread): the
// default logfmt text line, and the JSON line of `"log": {"format": "json"}`. Each iteration
// appends one line to a reused buffer, as the per-thread access buffer does.
#include <benchmark/benchmark.h>

#include <string>

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

}  // namespace
