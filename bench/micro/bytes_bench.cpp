// Micro-benchmarks of the byte-level hot path: request model find + splice, answer inspect +
// splice, SSE framing + per-event rewrite. Bytes/s is of the input document or stream.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "proxy/http/request_id.hpp"
#include "proxy/json/model.hpp"
#include "proxy/json/usage.hpp"
#include "proxy/sse/framer.hpp"
#include "proxy/sse/rewrite.hpp"

namespace {

using namespace ob::proxy;

constexpr std::string_view group = R"("fast")";

// A chat request of about `size` bytes; big ones carry a base64 image in a user message, with
// "model" after the messages (the worst case: the whole body is scanned before it).
std::string chat_request(std::size_t size) {
  std::string body =
      R"({"messages":[{"role":"system","content":"You are a helpful assistant. Answer briefly."},)"
      R"({"role":"user","content":[{"type":"text","text":"What is in this picture?"},)"
      R"({"type":"image_url","image_url":{"url":"data:image/png;base64,)";
  const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::string tail =
      R"("}}]}],"temperature":0.7,"max_tokens":512,"stream":true,"model":"fast"})";
  std::size_t i = 0;
  while (body.size() + tail.size() < size) body += alphabet[(i++ * 37) % 64];
  return body + tail;
}

std::string chat_answer() {
  return R"({"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion",)"
         R"("created":1741570283,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":)"
         R"({"role":"assistant","content":"The image shows a wooden boardwalk path running )"
         R"(through a lush green field or meadow. The sky is bright blue with some scattered )"
         R"(clouds, giving the scene a serene and peaceful atmosphere. Trees and shrubs are )"
         R"(visible in the background, and the grass is tall and vibrant.","refusal":null,)"
         R"("annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{)"
         R"("prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,)"
         R"("prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},)"
         R"("completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,)"
         R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},)"
         R"("service_tier":"default","system_fingerprint":"fp_fc9f1d7035"})";
}

std::string chat_event(std::string_view delta, std::string_view finish) {
  return R"(data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk",)"
         R"("created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default",)"
         R"("system_fingerprint":"fp_06737a9306","choices":[{"index":0,"delta":)" +
         std::string(delta) + R"(,"logprobs":null,"finish_reason":)" + std::string(finish) +
         "}]}\n\n";
}

// ~20 events: role, 16 content deltas, finish, usage chunk, [DONE].
std::string chat_stream() {
  std::string s = chat_event(R"({"role":"assistant","content":"","refusal":null})", "null");
  for (int i = 0; i < 16; ++i)
    s += chat_event(R"({"content":" token)" + std::to_string(i) + "\"}", "null");
  s += chat_event("{}", R"("stop")");
  s += R"(data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk",)"
       R"("created":1741569952,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":)"
       R"({"prompt_tokens":19,"completion_tokens":16,"total_tokens":35}})"
       "\n\n";
  s += "data: [DONE]\n\n";
  return s;
}

// Upstream reads: mostly one or two events, sometimes cut inside an event.
std::vector<std::string> realistic_pieces(const std::string& stream) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<std::size_t> len(150, 900);
  std::vector<std::string> pieces;
  for (std::size_t pos = 0; pos < stream.size();) {
    const std::size_t n = std::min(len(rng), stream.size() - pos);
    pieces.push_back(stream.substr(pos, n));
    pos += n;
  }
  return pieces;
}

void BM_request_find_splice(benchmark::State& state) {
  std::string body = chat_request(static_cast<std::size_t>(state.range(0)));
  const bool padded = state.range(1) != 0;
  if (padded) body.reserve(body.size() + json::required_padding);
  const std::size_t capacity = padded ? body.capacity() : body.size();
  json::model_finder finder;
  std::string out;
  for (auto _ : state) {
    const json::request_model r = finder.find_request_model(body, capacity);
    if (r.status != json::find_status::ok) state.SkipWithError("model not found");
    out.clear();
    json::append_spliced(out, body, &r.value, 1, R"("gpt-4o-mini")");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_request_find_splice)
    ->ArgNames({"bytes", "padded"})
    ->Args({1 << 10, 1})
    ->Args({100 << 10, 1})
    ->Args({10 << 20, 1})
    ->Args({1 << 10, 0})
    ->Args({10 << 20, 0});

// Find + usage plan + one gathered-write's worth of pieces (model splice and the injected
// stream_options), the request path of a streaming chat request whose client did not ask.
void BM_request_find_plan_inject(benchmark::State& state) {
  std::string body = chat_request(static_cast<std::size_t>(state.range(0)));
  body.reserve(body.size() + json::required_padding);
  json::model_finder finder;
  std::size_t total = 0;
  for (auto _ : state) {
    const json::request_model r = finder.find_request_model(body, body.capacity());
    const json::usage_plan p = json::plan_usage_injection(body, r);
    if (!p.strip_usage_chunk()) state.SkipWithError("no injection");
    json::edit edits[json::usage_plan::max_edits + 1];
    const int n = json::merge_edits(p, r.value, R"("gpt-4o-mini")", edits);
    json::for_each_piece(body, edits, n, [&](std::string_view s) { total += s.size(); });
    benchmark::DoNotOptimize(total);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_request_find_plan_inject)->ArgNames({"bytes"})->Arg(1 << 10);

void BM_request_id(benchmark::State& state) {
  const bool client = state.range(0) != 0;
  const std::string client_id = "3f2a1c9e-8b7d-4e6f-a5c4-1b2d3e4f5a6b";
  for (auto _ : state) {
    const http::request_id id = http::request_id::choose(client ? client_id : std::string_view{});
    benchmark::DoNotOptimize(id.view().data());
  }
}
BENCHMARK(BM_request_id)->ArgNames({"from_client"})->Arg(0)->Arg(1);

void BM_answer_inspect_splice(benchmark::State& state) {
  const std::string answer = chat_answer();
  json::model_finder finder;
  std::string out;
  for (auto _ : state) {
    const json::answer_info a = finder.inspect_answer(answer, answer.size());
    out.clear();
    json::append_spliced(out, answer, a.models, a.model_count, group);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * answer.size()));
  state.counters["doc_bytes"] = static_cast<double>(answer.size());
}
BENCHMARK(BM_answer_inspect_splice);

// One typical chat.completion.chunk event's data (~300 bytes), as the SSE rewrite sees it: no
// padding after it.
void BM_answer_inspect_chunk(benchmark::State& state) {
  const std::string event = chat_event(R"({"content":" token7"})", "null");
  const std::string data = event.substr(6, event.size() - 8);  // without "data: " and "\n\n"
  json::model_finder finder;
  for (auto _ : state) {
    const json::answer_info a = finder.inspect_answer(data, data.size());
    if (a.model_count != 1) state.SkipWithError("model not found");
    benchmark::DoNotOptimize(a);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
  state.counters["doc_bytes"] = static_cast<double>(data.size());
}
BENCHMARK(BM_answer_inspect_chunk);

enum class sse_mode {
  frame_only,
  rewrite,
  rewrite_with_shape,
  rewrite_with_shape_strip,
  rewrite_with_claim
};

void BM_sse_frame(benchmark::State& state, sse_mode mode) {
  const bool rewrite = mode != sse_mode::frame_only;
  const std::string stream = chat_stream();
  const auto pieces = realistic_pieces(stream);
  sse::framer framer;
  json::model_finder finder;
  std::string out;
  std::int64_t events = 0;
  sse::stream_shape shape;
  sse::usage_strip strip;
  for (auto _ : state) {
    shape.reset();  // one stream per iteration, as the proxy does per answer
    strip.reset(mode == sse_mode::rewrite_with_shape_strip);
    for (const std::string& piece : pieces) {
      out.clear();  // one client write per upstream read
      auto on_event = [&](const sse::event& ev) {
        ++events;
        if (rewrite) {
          sse::rewrite_event(ev, finder, group, out, mode == sse_mode::rewrite ? nullptr : &shape,
                             &strip);
        } else {
          out.append(ev.raw);
        }
      };
      if (mode == sse_mode::rewrite_with_claim) {  // as the pass-through relay feeds it
        int claimed = 0;
        framer.feed(piece, on_event, [&](std::string_view rest) {
          return sse::claim_plain_events(rest, shape, &strip, group, out, claimed);
        });
        events += claimed;
      } else {
        framer.feed(piece, on_event);
      }
      benchmark::DoNotOptimize(out.data());
    }
    framer.finish([](const sse::event&) {});
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
  state.SetItemsProcessed(events);
  state.counters["stream_bytes"] = static_cast<double>(stream.size());
  state.counters["reads"] = static_cast<double>(pieces.size());
}
BENCHMARK_CAPTURE(BM_sse_frame, frame_only, sse_mode::frame_only);
BENCHMARK_CAPTURE(BM_sse_frame, frame_and_rewrite, sse_mode::rewrite);
BENCHMARK_CAPTURE(BM_sse_frame, frame_and_rewrite_with_shape, sse_mode::rewrite_with_shape);
// Plain chunks shaped like the last one taken whole by claim_plain_events, as the relay does.
BENCHMARK_CAPTURE(BM_sse_frame, frame_and_rewrite_with_claim, sse_mode::rewrite_with_claim);
// The same stream with the usage-only chunk removed (the client did not ask for usage).
BENCHMARK_CAPTURE(BM_sse_frame, frame_and_rewrite_with_shape_strip,
                  sse_mode::rewrite_with_shape_strip);

}  // namespace
