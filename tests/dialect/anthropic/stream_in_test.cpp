// Inbound stream: chat.completion.chunk events -> Anthropic Messages events, checked as an
// Anthropic client (Claude Code) reads them: strict block order, valid JSON everywhere.
#include <gtest/gtest.h>

#include <random>

#include "dialect/anthropic/translate.hpp"
#include "helpers.hpp"

namespace ob::dialect::anthropic {
namespace {

using test::sse;

std::string chunk(std::string_view delta, std::string_view finish = "null") {
  return sse(
      "",
      std::string(R"({"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,)"
                  R"("model":"gpt-4o-mini","choices":[{"index":0,"delta":)") +
          std::string(delta) + R"(,"logprobs":null,"finish_reason":)" + std::string(finish) +
          "}]}");
}

std::string usage_chunk() {
  return sse(
      "",
      R"({"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini",)"
      R"("choices":[],"usage":{"prompt_tokens":120,"completion_tokens":30,"total_tokens":150,)"
      R"("prompt_tokens_details":{"cached_tokens":20}}})");
}

std::string tool_stream() {
  std::string s = chunk(R"({"role":"assistant","content":""})");
  s += chunk(R"({"content":"Checking"})");
  s += chunk(R"({"content":" now."})");
  s += chunk(
      R"({"tool_calls":[{"index":0,"id":"call_A","type":"function","function":{"name":"get_weather","arguments":""}}]})");
  for (const char* p : {R"({\"loc)", R"(ation\": \"Par)", R"(is\"})"})
    s +=
        chunk(std::string(R"({"tool_calls":[{"index":0,"function":{"arguments":")") + p + "\"}}]}");
  s += chunk(
      R"({"tool_calls":[{"index":1,"id":"call_B","type":"function","function":{"name":"now","arguments":"{}"}}]})");
  s += chunk("{}", R"("tool_calls")");
  s += usage_chunk();
  s += "data: [DONE]\n\n";
  return s;
}

struct message {
  std::string id, text, stop;
  std::vector<std::string> tool_ids, tool_names, tool_inputs;
  std::int64_t input = -1, output = -1, cache_read = -1;
  bool stopped = false, error = false;
  std::string error_type;
  int pings = 0;
};

// Reads the events like a strict Anthropic SDK would, checking the sequence.
message read_message(const std::string& out) {
  message m;
  simdjson::dom::parser p;
  bool started = false, delta_seen = false;
  std::int64_t open = -1, next = 0;
  std::string kind;
  for (const auto& ev : test::read_sse(out)) {
    simdjson::dom::element e;
    EXPECT_FALSE(p.parse(ev.data).get(e)) << ev.data;
    std::string_view type = e["type"];
    EXPECT_EQ(ev.name, type) << "event name matches data type";
    EXPECT_FALSE(m.stopped) << "nothing after message_stop";
    if (type == "error") {
      m.error = true;
      m.error_type = std::string_view(e["error"]["type"]);
      continue;
    }
    if (type == "message_start") {
      EXPECT_FALSE(started);
      started = true;
      m.id = std::string_view(e["message"]["id"]);
      EXPECT_EQ(std::string_view(e["message"]["model"]), "fast");
      EXPECT_EQ(int64_t(e["message"]["usage"]["input_tokens"]), 0);
      continue;
    }
    EXPECT_TRUE(started) << "message_start first";
    if (type == "ping") {
      ++m.pings;
    } else if (type == "content_block_start") {
      EXPECT_EQ(open, -1) << "previous block closed";
      open = int64_t(e["index"]);
      EXPECT_EQ(open, next++);
      kind = std::string_view(e["content_block"]["type"]);
      if (kind == "tool_use") {
        m.tool_ids.emplace_back(std::string_view(e["content_block"]["id"]));
        m.tool_names.emplace_back(std::string_view(e["content_block"]["name"]));
        m.tool_inputs.emplace_back();
      }
    } else if (type == "content_block_delta") {
      EXPECT_EQ(int64_t(e["index"]), open);
      std::string_view dt = e["delta"]["type"];
      if (kind == "text") {
        EXPECT_EQ(dt, "text_delta");
        m.text += std::string_view(e["delta"]["text"]);
      } else {
        EXPECT_EQ(dt, "input_json_delta");
        m.tool_inputs.back() += std::string_view(e["delta"]["partial_json"]);
      }
    } else if (type == "content_block_stop") {
      EXPECT_EQ(int64_t(e["index"]), open);
      open = -1;
    } else if (type == "message_delta") {
      EXPECT_EQ(open, -1);
      delta_seen = true;
      m.stop = std::string_view(e["delta"]["stop_reason"]);
      m.input = int64_t(e["usage"]["input_tokens"]);
      m.output = int64_t(e["usage"]["output_tokens"]);
      m.cache_read = int64_t(e["usage"]["cache_read_input_tokens"]);
    } else if (type == "message_stop") {
      EXPECT_TRUE(delta_seen);
      m.stopped = true;
    } else {
      ADD_FAILURE() << "unexpected event " << type;
    }
  }
  return m;
}

TEST(AnthropicStreamIn, GoldenTextStream) {
  std::string in = chunk(R"({"role":"assistant","content":""})") + chunk(R"({"content":"Hello"})") +
                   chunk("{}", R"("stop")") + usage_chunk() + "data: [DONE]\n\n";
  openai_stream_to_anthropic t("fast");
  auto r = test::run_stream(t, in, {});
  EXPECT_EQ(
      r.out,
      "event: message_start\ndata: "
      "{\"type\":\"message_start\",\"message\":{\"id\":\"chatcmpl-123\",\"type\":\"message\","
      "\"role\":\"assistant\",\"model\":\"fast\",\"content\":[],\"stop_reason\":null,\"stop_"
      "sequence\":null,"
      "\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}\n\n"
      "event: content_block_start\ndata: "
      "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":"
      "\"\"}}\n\n"
      "event: content_block_delta\ndata: "
      "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
      "\"Hello\"}}\n\n"
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
      "event: message_delta\ndata: "
      "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
      "\"usage\":{\"input_tokens\":100,\"cache_creation_input_tokens\":0,\"cache_read_input_"
      "tokens\":20,\"output_tokens\":30}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  EXPECT_EQ(r.terminal, 1);
  EXPECT_EQ(r.usage.prompt_tokens, 120);
  EXPECT_EQ(r.usage.completion_tokens, 30);
}

TEST(AnthropicStreamIn, TextThenTwoToolCalls) {
  openai_stream_to_anthropic t("fast");
  auto m = read_message(test::run_stream(t, tool_stream(), {}).out);
  EXPECT_EQ(m.text, "Checking now.");
  ASSERT_EQ(m.tool_ids.size(), 2u);
  EXPECT_EQ(m.tool_ids[0], "call_A");
  EXPECT_EQ(m.tool_names[0], "get_weather");
  EXPECT_EQ(m.tool_inputs[0], R"({"location": "Paris"})");
  EXPECT_EQ(m.tool_ids[1], "call_B");
  EXPECT_EQ(m.tool_inputs[1], "{}");
  EXPECT_EQ(m.stop, "tool_use");
  EXPECT_EQ(m.input, 100);
  EXPECT_EQ(m.cache_read, 20);
  EXPECT_EQ(m.output, 30);
  EXPECT_TRUE(m.stopped);
}

TEST(AnthropicStreamIn, EverySplitAndRandomSplitsGiveTheSameOutput) {
  const std::string in = tool_stream();
  openai_stream_to_anthropic whole("fast");
  const std::string want = test::run_stream(whole, in, {}).out;
  for (std::size_t i = 0; i <= in.size(); ++i) {
    openai_stream_to_anthropic t("fast");
    auto r = test::run_stream(t, in, {i});
    ASSERT_EQ(r.out, want) << "split at " << i;
    ASSERT_EQ(r.terminal, 1);
  }
  std::mt19937 rng(7);
  for (int n = 0; n < 300; ++n) {
    std::vector<std::size_t> cuts(rng() % 40);
    for (auto& c : cuts) c = rng() % (in.size() + 1);
    std::sort(cuts.begin(), cuts.end());
    openai_stream_to_anthropic t("fast");
    ASSERT_EQ(test::run_stream(t, in, cuts).out, want) << "run " << n;
  }
}

TEST(AnthropicStreamIn, ArgumentsIn20FragmentsConcatenateToValidJson) {
  const std::string args = R"({"cmd":"echo \"hi\" \\ done","files":["a b.txt","ç.md"],"n":42})";
  std::string in = chunk(
      R"({"role":"assistant","tool_calls":[{"index":0,"id":"call_Z","type":"function","function":{"name":"bash","arguments":""}}]})");
  std::size_t from = 0;
  int pieces = 0;
  for (int k = 1; k <= 20; ++k) {
    std::size_t to = args.size() * k / 20;
    while (to < args.size() && (static_cast<unsigned char>(args[to]) & 0xC0) == 0x80) ++to;
    if (to <= from) continue;
    in += chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":)" +
                ob::proxy::json::json_string(args.substr(from, to - from)) + "}}]}");
    from = to;
    ++pieces;
  }
  ASSERT_EQ(pieces, 20);
  in += chunk("{}", R"("tool_calls")") + "data: [DONE]\n\n";
  openai_stream_to_anthropic t("fast");
  auto m = read_message(test::run_stream(t, in, {}).out);
  ASSERT_EQ(m.tool_inputs.size(), 1u);
  EXPECT_EQ(m.tool_inputs[0], args);
  EXPECT_TRUE(test::valid_json(m.tool_inputs[0]));
}

TEST(AnthropicStreamIn, ErrorChunkBecomesAnthropicErrorEvent) {
  std::string in =
      chunk(R"({"content":"Hi"})") +
      sse("",
          R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})") +
      "data: [DONE]\n\n";
  openai_stream_to_anthropic t("fast");
  auto r = test::run_stream(t, in, {});
  EXPECT_TRUE(r.error);
  EXPECT_EQ(r.terminal, 1);
  auto m = read_message(r.out);
  EXPECT_TRUE(m.error);
  EXPECT_EQ(m.error_type, "rate_limit_error");
  EXPECT_FALSE(m.stopped);
}

TEST(AnthropicStreamIn, InterleavedParallelArgumentsAreAnError) {
  std::string in =
      chunk(R"({"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{"}}]})") +
      chunk(R"({"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"{"}}]})") +
      chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"}"}}]})") + "data: [DONE]\n\n";
  openai_stream_to_anthropic t("fast");
  auto r = test::run_stream(t, in, {});
  EXPECT_TRUE(r.error);
  EXPECT_EQ(r.out.find("message_stop"), std::string::npos);
}

// Runs `in` through the translator: a whole message whose tool_use blocks are `want`
// (id, name, input), in order, and whose stop_reason is tool_use.
struct tool_want {
  const char *id, *name, *input;
};
void expect_tool_calls(const std::string& in, const std::vector<tool_want>& want) {
  openai_stream_to_anthropic t("fast");
  auto r = test::run_stream(t, in, {});
  EXPECT_FALSE(r.error) << r.out;
  auto m = read_message(r.out);
  ASSERT_EQ(m.tool_ids.size(), want.size()) << r.out;
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(m.tool_ids[i], want[i].id) << i;
    EXPECT_EQ(m.tool_names[i], want[i].name) << i;
    EXPECT_EQ(m.tool_inputs[i], want[i].input) << i;
  }
  EXPECT_EQ(m.stop, "tool_use");
}

// Providers that send tool calls without "index" (Gemini's OpenAI-compatible API, some vLLM
// and Ollama parsers): a call with another id is the next call, one without an id continues.
TEST(AnthropicStreamIn, ToolCallsWithoutIndexAreToldApartByTheirIds) {
  const std::string together =
      chunk(R"({"role":"assistant","tool_calls":[{"id":"a","type":"function","function":)"
            R"({"name":"f","arguments":"{\"x\":1}"}},{"id":"b","type":"function","function":)"
            R"({"name":"g","arguments":"{\"y\":2}"}}]})") +
      chunk("{}", R"("stop")") + "data: [DONE]\n\n";
  const std::string apart =
      chunk(R"({"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{\"x\""}}]})") +
      chunk(R"({"tool_calls":[{"function":{"arguments":":1}"}}]})") +
      chunk(R"({"tool_calls":[{"id":"b","function":{"name":"g","arguments":"{\"y\":2}"}}]})") +
      chunk("{}", R"("tool_calls")") + "data: [DONE]\n\n";
  // Anthropic's clients loop while stop_reason is tool_use: a provider's "stop" after tool
  // calls must not end the loop.
  for (const auto& in : {together, apart})
    expect_tool_calls(in, {{"a", "f", R"({"x":1})"}, {"b", "g", R"({"y":2})"}});
}

// Providers that send index 0 for every parallel call: a delta naming another id is another
// call; deltas without an id continue the call of their index.
TEST(AnthropicStreamIn, ToolCallsSharingAnIndexAreToldApartByTheirIds) {
  const std::string in =
      chunk(
          R"({"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{\"x\""}}]})") +
      chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]})") +
      chunk(R"({"tool_calls":[{"index":0,"id":"b","function":{"name":"g","arguments":"{}"}}]})") +
      chunk("{}", R"("tool_calls")") + "data: [DONE]\n\n";
  expect_tool_calls(in, {{"a", "f", R"({"x":1})"}, {"b", "g", "{}"}});
}

// A call's deltas after another block closed it cannot be told as Anthropic's sequential
// blocks: an error, as for interleaved indexes (never a second block with the same id).
TEST(AnthropicStreamIn, ToolCallResumedAfterTextIsAnError) {
  for (const char* resume : {R"({"tool_calls":[{"id":"a","function":{"arguments":"}"}}]})",
                             R"({"tool_calls":[{"function":{"arguments":"}"}}]})"}) {
    const std::string in =
        chunk(R"({"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{"}}]})") +
        chunk(R"({"content":"x"})") + chunk(resume) + "data: [DONE]\n\n";
    openai_stream_to_anthropic t("fast");
    auto r = test::run_stream(t, in, {});
    EXPECT_TRUE(r.error) << resume << "\n" << r.out;
    EXPECT_EQ(r.out.find("message_stop"), std::string::npos) << r.out;
  }
}

TEST(AnthropicStreamIn, StopWithoutToolCallsStaysEndTurn) {
  openai_stream_to_anthropic t("fast");
  auto m = read_message(
      test::run_stream(
          t, chunk(R"({"content":"hi"})") + chunk("{}", R"("stop")") + "data: [DONE]\n\n", {})
          .out);
  EXPECT_EQ(m.stop, "end_turn");
}

TEST(AnthropicStreamIn, FinishWithoutDone) {
  openai_stream_to_anthropic t("fast");
  std::string out;
  t.on_event("", R"({"id":"x","choices":[{"delta":{"content":"a"},"finish_reason":null}]})", out);
  EXPECT_FALSE(t.finish(out).terminal);  // no finish_reason yet: incomplete
  t.on_event("", R"({"id":"x","choices":[{"delta":{},"finish_reason":"length"}]})", out);
  EXPECT_TRUE(t.finish(out).terminal);
  auto m = read_message(out);
  EXPECT_EQ(m.stop, "max_tokens");
  EXPECT_TRUE(m.stopped);
}

// Keep-alives: the provider's comments become a comment before message_start (all an
// Anthropic stream may carry before it) and Anthropic's ping after it; none is a data event.
TEST(AnthropicStreamIn, CommentsBecomeACommentThenPings) {
  openai_stream_to_anthropic t("fast");
  std::string in = ": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\n" +
                   chunk(R"({"role":"assistant","content":""})") + ": x\n\n" +
                   chunk(R"({"content":"Hi"})") + chunk("{}", R"("stop")") + "data: [DONE]\n\n" +
                   ": after the end\n\n";
  auto r = test::run_stream(t, in, {});
  EXPECT_EQ(r.out.rfind(": ping\n\n: ping\n\nevent: message_start\n", 0), 0u) << r.out;
  auto m = read_message(r.out);
  EXPECT_EQ(m.pings, 1);
  EXPECT_EQ(m.text, "Hi");
  EXPECT_TRUE(m.stopped);
  EXPECT_EQ(r.out.find("ping", r.out.find("message_stop")), std::string::npos)
      << "nothing after the end";
}

// A reasoning phase sends nothing an Anthropic client can show (no signature for a thinking
// block): a ping on its first delta and every 16th after keeps the connection busy.
TEST(AnthropicStreamIn, ReasoningDeltasSendPings) {
  openai_stream_to_anthropic t("fast");
  std::string in = chunk(R"({"role":"assistant","content":""})");
  for (int i = 0; i < 40; ++i)
    in += chunk(i % 2 ? R"({"content":null,"reasoning_content":"step"})"
                      : R"({"reasoning":"step"})");  // OpenRouter's field
  in += chunk(R"({"content":"Answer"})");
  for (int i = 0; i < 3; ++i) in += chunk(R"({"reasoning_content":"more"})");
  in += chunk("{}", R"("stop")") + "data: [DONE]\n\n";
  auto r = test::run_stream(t, in, {});
  auto m = read_message(r.out);
  EXPECT_EQ(m.pings, 3 + 1);  // deltas 1, 17 and 33; then 1 after the text
  EXPECT_EQ(m.text, "Answer");
  EXPECT_EQ(r.out.find("step"), std::string::npos);
  // The pings come before the text block.
  EXPECT_LT(r.out.rfind("event: ping", r.out.find("content_block_start")),
            r.out.find("content_block_start"));
}

TEST(AnthropicStreamIn, DoneAloneStillMakesAWholeMessage) {
  openai_stream_to_anthropic t("fast");
  std::string out;
  EXPECT_TRUE(t.on_event("", "[DONE]", out).terminal);
  auto m = read_message(out);
  EXPECT_TRUE(m.stopped);
  EXPECT_EQ(m.stop, "end_turn");
}

}  // namespace
}  // namespace ob::dialect::anthropic
