// Micro-benchmarks of the Anthropic stream codecs (src/dialect/anthropic): the cost of
// translating one stream event, for a typical stream (a text block of many small deltas, then a
// tool call whose input arrives in 20 input_json_delta fragments). items/s = events/s.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dialect/anthropic/codec.hpp"
#include "dialect/anthropic/translate.hpp"
#include "proxy/sse/framer.hpp"

namespace {

using namespace ob::dialect::anthropic;

using event_list = std::vector<std::pair<std::string, std::string>>;  // name, data

event_list anthropic_events() {
  event_list e;
  e.emplace_back(
      "message_start",
      R"({"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message",)"
      R"("role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,)"
      R"("stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2}}})");
  e.emplace_back(
      "content_block_start",
      R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})");
  e.emplace_back("ping", R"({"type": "ping"})");
  for (int i = 0; i < 40; ++i)
    e.emplace_back(
        "content_block_delta",
        R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" the weather"}})");
  e.emplace_back("content_block_stop", R"({"type":"content_block_stop","index":0})");
  e.emplace_back("content_block_start",
                 R"({"type":"content_block_start","index":1,"content_block":{"type":"tool_use",)"
                 R"("id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}})");
  for (int i = 0; i < 20; ++i)
    e.emplace_back(
        "content_block_delta",
        R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"loc\": \"S"}})");
  e.emplace_back("content_block_stop", R"({"type":"content_block_stop","index":1})");
  e.emplace_back(
      "message_delta",
      R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}})");
  e.emplace_back("message_stop", R"({"type":"message_stop"})");
  return e;
}

event_list openai_events() {
  event_list e;
  auto chunk = [](std::string delta, const char* finish = "null") {
    return std::string(
               R"({"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk",)"
               R"("created":1741570283,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_1",)"
               R"("choices":[{"index":0,"delta":)") +
           delta + R"(,"logprobs":null,"finish_reason":)" + finish + "}]}";
  };
  e.emplace_back("", chunk(R"({"role":"assistant","content":""})"));
  for (int i = 0; i < 40; ++i) e.emplace_back("", chunk(R"({"content":" the weather"})"));
  e.emplace_back(
      "",
      chunk(
          R"({"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]})"));
  for (int i = 0; i < 20; ++i)
    e.emplace_back(
        "", chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"\"loc\": \"S"}}]})"));
  e.emplace_back("", chunk("{}", R"("tool_calls")"));
  e.emplace_back(
      "",
      R"({"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}})");
  e.emplace_back("", "[DONE]");
  return e;
}

void BM_anthropic_to_openai_event(benchmark::State& state) {
  const auto events = anthropic_events();
  anthropic_stream_to_openai t("fast", true, 1700000000);
  std::string out;
  for (auto _ : state) {
    t.reset("fast", true, 1700000000);
    for (const auto& [name, data] : events) {
      out.clear();
      t.on_event(name, data, out);
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(events.size()));
}
BENCHMARK(BM_anthropic_to_openai_event);

void BM_openai_to_anthropic_event(benchmark::State& state) {
  const auto events = openai_events();
  openai_stream_to_anthropic t("fast");
  std::string out;
  for (auto _ : state) {
    t.reset("fast");
    for (const auto& [name, data] : events) {
      out.clear();
      t.on_event(name, data, out);
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(events.size()));
}
BENCHMARK(BM_openai_to_anthropic_event);

// Framing included: the upstream bytes of the whole stream in one read, as the gateway gets them.
void BM_anthropic_to_openai_stream_framed(benchmark::State& state) {
  const auto events = anthropic_events();
  std::string bytes;
  for (const auto& [name, data] : events) bytes += "event: " + name + "\ndata: " + data + "\n\n";
  anthropic_stream_to_openai t("fast", true, 1700000000);
  ob::proxy::sse::framer f;
  std::string out;
  for (auto _ : state) {
    t.reset("fast", true, 1700000000);
    out.clear();
    f.feed(bytes, [&](const ob::proxy::sse::event& ev) { t.on_event(ev.type, ev.data, out); });
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(events.size()));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes.size()));
}
BENCHMARK(BM_anthropic_to_openai_stream_framed);

// bench/run scenario s: the client's ~1 KB streaming request and the mock's Anthropic answer
// (25 events: message_start, content_block_start, 20 text deltas, content_block_stop,
// message_delta, message_stop), as one read.
std::string scenario_s_request() {
  std::string filler;
  while (filler.size() < 860) filler += "The quick brown fox jumps over the lazy dog. ";
  return R"({"model":"astream","messages":[{"role":"system","content":"You are concise."},)"
         R"({"role":"user","content":")" +
         filler + R"("}],"temperature":0.2,"max_tokens":256,"stream":true})";
}

constexpr int scenario_s_events = 25;

std::string scenario_s_answer() {
  auto ev = [](const char* type, std::string data) {
    return std::string("event: ") + type + "\ndata: " + data + "\n\n";
  };
  std::string bytes =
      ev("message_start", R"({"type":"message_start","message":{"id":"msg_bench0000000000","type":)"
                          R"("message","role":"assistant","model":"real-model","content":[],)"
                          R"("stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":250,)"
                          R"("output_tokens":1}}})");
  bytes +=
      ev("content_block_start",
         R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})");
  for (int i = 0; i < 20; ++i)
    bytes += ev("content_block_delta",
                R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":")" +
                    std::string(" answers") + std::string(85, ' ') + R"("}})");
  bytes += ev("content_block_stop", R"({"type":"content_block_stop","index":0})");
  bytes += ev("message_delta",
              R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},)"
              R"("usage":{"output_tokens":48}})");
  bytes += ev("message_stop", R"({"type":"message_stop"})");
  return bytes;
}

// What one streaming request costs the Anthropic codec through the interface the exchange
// calls (dialect/codec.hpp), as bench/run scenario s drives it: encode the client's ~1 KB
// request, make the answer translator, translate the 25-event answer of 20 text deltas (framed
// from one read). items/s = requests/s; the per-event figure is the time / 25.
void BM_anthropic_codec_stream_request(benchmark::State& state) {
  const std::string body = scenario_s_request();
  const std::string bytes = scenario_s_answer();
  const ob::dialect::codec* c = codec_instance();
  ob::dialect::request_in in{"POST", "/v1/chat/completions", body, "real-model"};
  ob::dialect::request_out enc;
  ob::proxy::sse::framer f;
  std::string out;
  for (auto _ : state) {
    enc.target.clear();
    enc.headers.clear();
    enc.body.clear();
    auto r = c->encode_request(in, enc);
    if (!r.ok()) state.SkipWithError("encode_request refused the request");
    auto t = c->new_translator(in, enc.stream, "astream");
    out.clear();
    f.reset();
    f.feed(bytes, [&](const ob::proxy::sse::event& e) { t->translate_event(e, out); });
    benchmark::DoNotOptimize(out.data());
  }
  if (out.find("[DONE]") == std::string::npos) state.SkipWithError("no [DONE] in the translation");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_anthropic_codec_stream_request);

// The request side alone: encode_request of scenario s's ~1 KB body into a reused buffer.
// items/s = requests/s.
void BM_anthropic_request_encode(benchmark::State& state) {
  const std::string body = scenario_s_request();
  const ob::dialect::codec* c = codec_instance();
  ob::dialect::request_in in{"POST", "/v1/chat/completions", body, "real-model"};
  ob::dialect::request_out enc;
  for (auto _ : state) {
    enc.target.clear();
    enc.headers.clear();
    enc.body.clear();
    auto r = c->encode_request(in, enc);
    if (!r.ok()) state.SkipWithError("encode_request refused the request");
    benchmark::DoNotOptimize(enc.body.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_anthropic_request_encode);

// BM_anthropic_codec_stream_request as the exchange runs it since the translator is reused:
// the body parsed in place (the exchange's buffer has simdjson's padding) and the previous
// request's translator renewed instead of a new one made.
void BM_anthropic_codec_stream_request_renewed(benchmark::State& state) {
  std::string padded = scenario_s_request();
  const std::size_t size = padded.size();
  padded.append(64, '\0');
  const std::string bytes = scenario_s_answer();
  const ob::dialect::codec* c = codec_instance();
  ob::dialect::request_in in{"POST", "/v1/chat/completions", std::string_view(padded.data(), size),
                             "real-model", padded.size()};
  ob::dialect::request_out enc;
  ob::proxy::sse::framer f;
  std::string out;
  std::unique_ptr<ob::dialect::answer_translator> t;
  for (auto _ : state) {
    enc.target.clear();
    enc.headers.clear();
    enc.body.clear();
    auto r = c->encode_request(in, enc);
    if (!r.ok()) state.SkipWithError("encode_request refused the request");
    c->renew_translator(t, in, enc, enc.stream, "astream");
    out.clear();
    f.reset();
    f.feed(bytes, [&](const ob::proxy::sse::event& e) { t->translate_event(e, out); });
    benchmark::DoNotOptimize(out.data());
  }
  if (out.find("[DONE]") == std::string::npos) state.SkipWithError("no [DONE] in the translation");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_anthropic_codec_stream_request_renewed);

// The answer side of scenario s as the exchange runs it (proxy/exchange.cpp on_event): the
// upstream bytes framed, each event translated, and the client's bytes made ready in the
// exchange's payload with the model named by the group, the final event, error events and
// usage noted. The translator is made once per request. items/s = upstream events/s: the time
// per item is the gateway's answer cost per event.
void BM_anthropic_stream_relay(benchmark::State& state) {
  const std::string body = scenario_s_request();
  const std::string bytes = scenario_s_answer();
  const ob::dialect::codec* c = codec_instance();
  ob::dialect::request_in in{"POST", "/v1/chat/completions", body, "real-model"};
  ob::proxy::sse::framer f;
  std::string payload;
  bool terminal = false;
  int events = 0;
  for (auto _ : state) {
    auto t = c->new_translator(in, true, "astream");
    payload.clear();
    f.reset();
    terminal = false;
    events = 0;
    f.feed(bytes, [&](const ob::proxy::sse::event& e) {
      auto info = t->translate_event(e, payload);
      events += info.events;
      terminal = terminal || info.terminal;
    });
    benchmark::DoNotOptimize(payload.data());
  }
  if (!terminal || events != 23 || payload.find("\"model\":\"astream\"") == std::string::npos)
    state.SkipWithError("the relayed stream is not complete");
  state.SetItemsProcessed(state.iterations() * scenario_s_events);
}
BENCHMARK(BM_anthropic_stream_relay);

}  // namespace
