// Outbound stream: Anthropic events -> chat.completion.chunk events, through the SSE framer at
// every split point of the upstream bytes and at random ones.
#include <gtest/gtest.h>

#include <random>

#include "dialect/anthropic/dom.hpp"
#include "dialect/anthropic/translate.hpp"
#include "helpers.hpp"

namespace ob::dialect::anthropic {
namespace {

using test::sse;

// The streaming reference's tool-use example (text, then a tool_use block at index 1), with a
// ping and a thinking block added.
std::string tool_events(int arg_pieces = 0) {
  std::string s;
  s += sse(
      "message_start",
      R"({"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message",)"
      R"("role":"assistant","model":"claude-sonnet-4-5","stop_sequence":null,"usage":{"input_tokens":472,)"
      R"("output_tokens":2,"cache_read_input_tokens":100,"cache_creation_input_tokens":0},"content":[],"stop_reason":null}})");
  s += sse(
      "content_block_start",
      R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}})");
  s += sse(
      "content_block_delta",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Weather tool."}})");
  s += sse(
      "content_block_delta",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}})");
  s += sse("content_block_stop", R"({"type":"content_block_stop","index":0})");
  s += sse("content_block_start",
           R"({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})");
  s += sse("ping", R"({"type": "ping"})");
  s += sse(
      "content_block_delta",
      R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Okay, let's check"}})");
  s += sse(
      "content_block_delta",
      R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":" the weather:"}})");
  s += sse("content_block_stop", R"({"type":"content_block_stop","index":1})");
  s += sse("content_block_start",
           R"({"type":"content_block_start","index":2,"content_block":{"type":"tool_use",)"
           R"("id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}})");
  s += sse(
      "content_block_delta",
      R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}})");
  if (arg_pieces == 0) {
    for (const char* p :
         {R"({\"location\":)", R"( \"San Francisco, CA\", \"unit\": \"fahrenheit\"})"})
      s += sse(
          "content_block_delta",
          std::string(
              R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":")") +
              p + "\"}}");
  }
  s += sse("content_block_stop", R"({"type":"content_block_stop","index":2})");
  s += sse(
      "message_delta",
      R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}})");
  s += sse("message_stop", R"({"type":"message_stop"})");
  return s;
}

struct assembled {
  std::string content, reasoning, finish;
  std::vector<std::string> ids, names, args;
  bool done = false, usage_chunk = false, error = false;
  std::int64_t prompt = -1, completion = -1, cached = -1;
  int chunks = 0;
};

// Reads the client's SSE: every event must be valid JSON (or [DONE] last).
assembled assemble(const std::string& out) {
  assembled a;
  simdjson::dom::parser p;
  for (const auto& ev : test::read_sse(out)) {
    EXPECT_FALSE(a.done) << "event after [DONE]";
    EXPECT_TRUE(ev.name.empty());
    if (ev.data == "[DONE]") {
      a.done = true;
      continue;
    }
    simdjson::dom::element e;
    EXPECT_FALSE(p.parse(ev.data).get(e)) << ev.data;
    if (e["error"].error() == simdjson::SUCCESS) {
      a.error = true;
      continue;
    }
    ++a.chunks;
    EXPECT_EQ(std::string_view(e["object"]), "chat.completion.chunk");
    EXPECT_EQ(std::string_view(e["model"]), "fast");
    simdjson::dom::array choices = e["choices"];
    if (choices.size() == 0) {
      a.usage_chunk = true;
      a.prompt = int64_t(e["usage"]["prompt_tokens"]);
      a.completion = int64_t(e["usage"]["completion_tokens"]);
      a.cached = int64_t(e["usage"]["prompt_tokens_details"]["cached_tokens"]);
      continue;
    }
    simdjson::dom::element c = choices.at(0);
    std::string_view fr;
    if (!c["finish_reason"].get(fr)) a.finish = fr;
    simdjson::dom::element d = c["delta"];
    std::string_view s;
    if (!d["content"].get(s)) a.content += s;
    if (!d["reasoning_content"].get(s)) a.reasoning += s;
    simdjson::dom::array calls;
    if (!d["tool_calls"].get(calls)) {
      for (simdjson::dom::element call : calls) {
        std::size_t i = uint64_t(call["index"]);
        if (i >= a.args.size()) {
          EXPECT_EQ(i, a.args.size()) << "tool call indexes count tool calls";
          a.args.resize(i + 1);
          a.ids.resize(i + 1);
          a.names.resize(i + 1);
          EXPECT_FALSE(call["id"].get(s)) << "first delta carries the id";
          a.ids[i] = s;
          EXPECT_FALSE(call["function"]["name"].get(s)) << "first delta carries the name";
          a.names[i] = s;
        } else {
          EXPECT_TRUE(call["id"].error()) << "later deltas carry arguments only";
        }
        if (!call["function"]["arguments"].get(s)) a.args[i] += s;
      }
    }
  }
  return a;
}

TEST(AnthropicStreamOut, GoldenTextStream) {
  std::string in =
      sse("message_start",
          R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",)"
          R"("model":"claude","content":[],"stop_reason":null,"usage":{"input_tokens":25,"output_tokens":1}}})") +
      sse("content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})") +
      sse("ping", R"({"type": "ping"})") +
      sse("content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}})") +
      sse("content_block_stop", R"({"type":"content_block_stop","index":0})") +
      sse("message_delta",
          R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}})") +
      sse("message_stop", R"({"type":"message_stop"})");
  anthropic_stream_to_openai t("fast", true, 1700000000);
  auto r = test::run_stream(t, in, {});
  const std::string head =
      R"(data: {"id":"msg_1","object":"chat.completion.chunk","created":1700000000,"model":"fast",)";
  EXPECT_EQ(
      r.out,
      head +
          R"("choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]})"
          "\n\n"
          ": ping\n\n" +  // Anthropic's ping: a comment (an OpenAI stream has no ping event)
          head +
          R"("choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]})"
          "\n\n" +
          head +
          R"("choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]})"
          "\n\n" +
          head +
          R"("choices":[],"usage":{"prompt_tokens":25,"completion_tokens":15,"total_tokens":40,)"
          R"("prompt_tokens_details":{"cached_tokens":0}}})"
          "\n\n"
          "data: [DONE]\n\n");
  EXPECT_EQ(r.terminal, 1);
  EXPECT_EQ(r.usage.prompt_tokens, 25);
  EXPECT_EQ(r.usage.completion_tokens, 15);
  EXPECT_EQ(r.usage.total_tokens, 40);
}

TEST(AnthropicStreamOut, ToolUseThinkingAndUsage) {
  anthropic_stream_to_openai t("fast", true, 1);
  auto r = test::run_stream(t, tool_events(), {});
  auto a = assemble(r.out);
  EXPECT_EQ(a.content, "Okay, let's check the weather:");
  EXPECT_EQ(a.reasoning, "Weather tool.");
  ASSERT_EQ(a.args.size(), 1u);  // content block 2 is tool call 0
  EXPECT_EQ(a.ids[0], "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
  EXPECT_EQ(a.names[0], "get_weather");
  EXPECT_EQ(a.args[0], R"({"location": "San Francisco, CA", "unit": "fahrenheit"})");
  EXPECT_EQ(a.finish, "tool_calls");
  EXPECT_TRUE(a.usage_chunk);
  EXPECT_EQ(a.prompt, 572);
  EXPECT_EQ(a.completion, 89);
  EXPECT_EQ(a.cached, 100);
  EXPECT_TRUE(a.done);
  EXPECT_EQ(r.usage.prompt_tokens, 572);
}

TEST(AnthropicStreamOut, NoUsageChunkUnlessAsked) {
  anthropic_stream_to_openai t("fast", false, 1);
  auto r = test::run_stream(t, tool_events(), {});
  auto a = assemble(r.out);
  EXPECT_FALSE(a.usage_chunk);
  EXPECT_TRUE(a.done);
  EXPECT_EQ(r.usage.completion_tokens, 89);  // still reported for accounting
}

TEST(AnthropicStreamOut, EverySplitPointGivesTheSameOutput) {
  const std::string in = tool_events();
  anthropic_stream_to_openai whole("fast", true, 1);
  const std::string want = test::run_stream(whole, in, {}).out;
  for (std::size_t i = 0; i <= in.size(); ++i) {
    anthropic_stream_to_openai t("fast", true, 1);
    auto r = test::run_stream(t, in, {i});
    ASSERT_EQ(r.out, want) << "split at " << i;
    ASSERT_EQ(r.terminal, 1);
  }
}

TEST(AnthropicStreamOut, RandomSplitsGiveTheSameOutput) {
  const std::string in = tool_events();
  anthropic_stream_to_openai whole("fast", true, 1);
  const std::string want = test::run_stream(whole, in, {}).out;
  std::mt19937 rng(42);
  for (int n = 0; n < 300; ++n) {
    std::vector<std::size_t> cuts(rng() % 40);
    for (auto& c : cuts) c = rng() % (in.size() + 1);
    std::sort(cuts.begin(), cuts.end());
    anthropic_stream_to_openai t("fast", true, 1);
    ASSERT_EQ(test::run_stream(t, in, cuts).out, want) << "run " << n;
  }
}

// Tool arguments in 20 input_json_delta fragments, cut inside escapes and multi-byte
// characters: the client's concatenated arguments are the same valid JSON.
TEST(AnthropicStreamOut, ArgumentsIn20FragmentsConcatenateToValidJson) {
  const std::string args =
      R"({"query":"caf\u00e9 \"quoted\" \\ back","path":"C:\\tmp\\x","n":[1,2,3],"t":"été 日本"})";
  std::string in = sse(
      "message_start",
      R"({"type":"message_start","message":{"id":"m","usage":{"input_tokens":3,"output_tokens":1}}})");
  in += sse(
      "content_block_start",
      R"({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_9","name":"search","input":{}}})");
  // 20 pieces cut at byte positions (inside escapes too), never inside a UTF-8 character:
  // partial_json is a JSON string, so a real fragment is always whole characters.
  int pieces = 0;
  std::size_t from = 0;
  for (int k = 1; k <= 20; ++k) {
    std::size_t to = args.size() * k / 20;
    while (to < args.size() && (static_cast<unsigned char>(args[to]) & 0xC0) == 0x80) ++to;
    if (to <= from) continue;
    std::string lit = ob::proxy::json::json_string(args.substr(from, to - from));
    in += sse(
        "content_block_delta",
        R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":)" +
            lit + "}}");
    from = to;
    ++pieces;
  }
  ASSERT_EQ(pieces, 20);
  in += sse("content_block_stop", R"({"type":"content_block_stop","index":0})");
  in += sse(
      "message_delta",
      R"({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":30}})");
  in += sse("message_stop", R"({"type":"message_stop"})");
  for (std::size_t cut = 0; cut <= in.size(); cut += 7) {
    anthropic_stream_to_openai t("fast", false, 1);
    auto a = assemble(test::run_stream(t, in, {cut}).out);
    ASSERT_EQ(a.args.size(), 1u);
    ASSERT_EQ(a.args[0], args);
    ASSERT_TRUE(test::valid_json(a.args[0]));
    EXPECT_EQ(a.finish, "tool_calls");
  }
}

TEST(AnthropicStreamOut, ToolWithoutInputGetsEmptyObjectAndIndexesCountToolCalls) {
  std::string in = sse("message_start", R"({"type":"message_start","message":{"id":"m"}})");
  for (int b = 0; b < 3; ++b) {
    in +=
        sse("content_block_start", R"({"type":"content_block_start","index":)" + std::to_string(b) +
                                       R"(,"content_block":{"type":"tool_use","id":"t)" +
                                       std::to_string(b) + R"(","name":"now","input":{}}})");
    in += sse("content_block_stop",
              R"({"type":"content_block_stop","index":)" + std::to_string(b) + "}");
  }
  in += sse("message_stop", R"({"type":"message_stop"})");
  anthropic_stream_to_openai t("fast", false, 1);
  auto a = assemble(test::run_stream(t, in, {}).out);
  ASSERT_EQ(a.args.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a.ids[i], "t" + std::to_string(i));
    EXPECT_EQ(a.args[i], "{}");
  }
  EXPECT_TRUE(a.done);
}

TEST(AnthropicStreamOut, MidStreamErrorEndsWithErrorEventAndNoDone) {
  std::string in =
      sse("message_start", R"({"type":"message_start","message":{"id":"m"}})") +
      sse("content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})") +
      sse("content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}})") +
      sse("error",
          R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})") +
      sse("message_stop", R"({"type":"message_stop"})");
  anthropic_stream_to_openai t("fast", true, 1);
  auto r = test::run_stream(t, in, {});
  EXPECT_TRUE(r.error);
  EXPECT_EQ(r.terminal, 1);
  auto a = assemble(r.out);
  EXPECT_TRUE(a.error);
  EXPECT_FALSE(a.done);
  EXPECT_EQ(a.content, "Hel");
  EXPECT_NE(
      r.out.find(
          R"(data: {"error":{"message":"Overloaded","type":"upstream_error","code":"overloaded_error"}})"),
      std::string::npos)
      << r.out;
}

TEST(AnthropicStreamOut, MalformedEventsBecomeAnErrorEvent) {
  const char* bad[] = {
      "{not json",
      R"({"type":"content_block_delta","index":5,"delta":{"type":"input_json_delta","partial_json":"x"}})",
      R"({"type":"content_block_start","content_block":{"type":"text"}})",
  };
  for (const char* b : bad) {
    std::string in = sse("message_start", R"({"type":"message_start","message":{"id":"m"}})") +
                     sse("content_block_delta", b) +
                     sse("message_stop", R"({"type":"message_stop"})");
    anthropic_stream_to_openai t("fast", false, 1);
    auto r = test::run_stream(t, in, {});
    EXPECT_TRUE(r.error) << b;
    EXPECT_EQ(r.terminal, 1) << b;
    EXPECT_EQ(r.out.find("[DONE]"), std::string::npos);
  }
}

// Keep-alives through a long prefill: pings (before the role chunk too) and comments become
// comments, which are no client event (the exchange may release them before the first one);
// nothing follows the stream's end.
TEST(AnthropicStreamOut, PingsAndCommentsBecomeCommentsAndNoEvents) {
  anthropic_stream_to_openai t("fast", false, 1);
  std::string out;
  auto r = t.on_event("message_start",
                      R"({"type":"message_start","message":{"id":"m","usage":{"input_tokens":3}}})",
                      out);
  EXPECT_EQ(out, "");
  EXPECT_EQ(r.events, 0);
  r = t.on_event("ping", R"({"type": "ping"})", out);
  EXPECT_EQ(out, ": ping\n\n");
  EXPECT_EQ(r.events, 0);
  r = t.on_event("", R"({"type":"ping"})", out);  // the type read from the data
  EXPECT_EQ(out, ": ping\n\n: ping\n\n");
  EXPECT_EQ(r.events, 0);
  t.keep_alive(out);  // a provider's comment
  EXPECT_EQ(out, ": ping\n\n: ping\n\n: ping\n\n");
  out.clear();
  r = t.on_event(
      "content_block_delta",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})", out);
  EXPECT_EQ(r.events, 2);  // the role chunk, the text
  r = t.on_event("message_stop", R"({"type":"message_stop"})", out);
  EXPECT_EQ(r.terminal, true);
  out.clear();
  t.on_event("ping", R"({"type": "ping"})", out);
  t.keep_alive(out);
  EXPECT_EQ(out, "");
}

TEST(AnthropicStreamOut, UnknownEventsAndCommentsAreIgnored) {
  std::string in = ": comment\n\n" +
                   sse("message_start", R"({"type":"message_start","message":{"id":"m"}})") +
                   sse("future_event", R"({"type":"future_event","x":1})") + sse("ping", "") +
                   sse("message_stop", R"({"type":"message_stop"})");
  anthropic_stream_to_openai t("fast", false, 1);
  auto r = test::run_stream(t, in, {});
  EXPECT_FALSE(r.error);
  auto a = assemble(r.out);
  EXPECT_TRUE(a.done);
  EXPECT_EQ(a.finish, "stop");
}

// Plain text deltas in Anthropic's compact layout skip the DOM parse: whatever the text, the
// output must be byte for byte what the DOM path writes (reached here through a space after a
// colon, which the fast path does not take).
TEST(AnthropicStreamOut, TextDeltaFastPathWritesWhatTheDomPathWrites) {
  const std::string texts[] = {"Hello",
                               "",
                               " spaces and punctuation: ,.;!?()[]{}<>/#",
                               "caf\xc3\xa9 \xe6\xa8\xa1 \xf0\x9f\x98\x80",
                               "\x7f",
                               R"(quote \" inside)",
                               R"(back\\slash)",
                               R"(new\nline)",
                               R"(\u00e9 escaped)",
                               "raw \x01 control",
                               "bad utf-8 \xff",
                               "overlong \xc0\xaf",
                               std::string(300, 'x')};
  for (const std::string& t : texts) {
    for (const char* index : {"0", "7", "12345", "01"}) {
      auto stream = [&](bool compact) {
        std::string data = std::string(compact ? R"({"type":"content_block_delta","index":)"
                                               : R"({"type": "content_block_delta","index":)") +
                           index + R"(,"delta":{"type":"text_delta","text":")" + t + R"("}})";
        anthropic_stream_to_openai x("fast", false, 1700000000);
        std::string out;
        x.on_event("message_start",
                   R"({"type":"message_start","message":{"id":"msg_1","model":"m"}})", out);
        x.on_event(
            "content_block_start",
            R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})",
            out);
        x.on_event("content_block_delta", data, out);
        x.on_event("content_block_delta", data, out);
        x.on_event("message_stop", R"({"type":"message_stop"})", out);
        return out;
      };
      EXPECT_EQ(stream(true), stream(false)) << "text " << t << " index " << index;
    }
  }
  // Without message_start, the role chunk still comes first.
  anthropic_stream_to_openai x("fast", false, 1700000000);
  std::string out;
  x.on_event(
      "content_block_delta",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})", out);
  EXPECT_NE(out.find(R"({"role":"assistant","content":""})"), std::string::npos) << out;
  EXPECT_LT(out.find(R"("role")"), out.find(R"({"content":"Hi"})")) << out;
}

// The fast path checks a text 8 bytes at a time: a byte that needs care (escape, control byte,
// non-ASCII, invalid UTF-8) must be seen at every position of every length, in every word and
// in the overlapping last one.
TEST(AnthropicStreamOut, TextDeltaFastPathSeesSpecialBytesAtEveryPosition) {
  const std::string specials[] = {R"(\")",  R"(\\)", R"(\n)", R"(\b)",     R"(\f)",     R"(\r)",
                                  R"(\t)",  R"(\/)", R"(\x)", R"(\u00e9)", R"(\u001F)", R"(\\")",
                                  R"(\\\)", "\x01",  "\x1f",  "\x7f",      "\xc3\xa9",  "\xff",
                                  "\"",     "\\",    "\n\\n"};
  auto stream = [](const std::string& t, bool compact) {
    std::string data = std::string(compact ? R"({"type":"content_block_delta","index":)"
                                           : R"({"type": "content_block_delta","index":)") +
                       R"(0,"delta":{"type":"text_delta","text":")" + t + R"("}})";
    anthropic_stream_to_openai x("fast", false, 1700000000);
    std::string out;
    x.on_event("message_start", R"({"type":"message_start","message":{"id":"msg_1","model":"m"}})",
               out);
    x.on_event("content_block_delta", data, out);
    return out;
  };
  for (const std::string& special : specials) {
    for (std::size_t len = 0; len <= 40; ++len) {
      for (std::size_t at = 0; at <= len; ++at) {
        std::string t = std::string(at, 'a') + special + std::string(len - at, 'b');
        ASSERT_EQ(stream(t, true), stream(t, false))
            << "special " << special << " at " << at << " of " << len;
      }
    }
  }
}

// content_block_start of an empty text, content_block_stop and message_stop in the compact
// layout skip the parse too: the same bytes as the DOM path (spaced layout), whatever the index
// (a tool block without input gets its "{}" arguments at its stop; an index the DOM path
// refuses gives the same error event).
TEST(AnthropicStreamOut, SmallEventFastPathsWriteWhatTheDomPathWrites) {
  for (const char* index : {"0", "1", "2", "01", "123456789", "1234567890", "-1", "1.0", ""}) {
    for (bool with_start : {true, false}) {
      auto stream = [&](bool compact) {
        std::string sep = compact ? "" : " ";
        anthropic_stream_to_openai x("fast", true, 1700000000);
        std::string out;
        if (with_start)
          x.on_event("message_start",
                     R"({"type":"message_start","message":{"id":"msg_1","model":"m"}})", out);
        x.on_event("content_block_start",
                   R"({"type":)" + sep + R"("content_block_start","index":)" + index +
                       R"(,"content_block":{"type":"text","text":""}})",
                   out);
        x.on_event(
            "content_block_delta",
            R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})",
            out);
        x.on_event("content_block_start",
                   R"({"type":"content_block_start","index":1,"content_block":{"type":"tool_use",)"
                   R"("id":"toolu_1","name":"f","input":{}}})",
                   out);
        x.on_event("content_block_stop",
                   R"({"type":)" + sep + R"("content_block_stop","index":)" + index + "}", out);
        x.on_event("message_stop", R"({"type":)" + sep + R"("message_stop"})", out);
        return out;
      };
      std::string compact = stream(true);
      EXPECT_EQ(compact, stream(false)) << "index " << index;
      if (std::string_view(index) == "1") {
        EXPECT_NE(compact.find(R"("arguments":"{}")"), std::string::npos) << compact;
        EXPECT_TRUE(compact.ends_with("data: [DONE]\n\n")) << compact;
      }
    }
  }
  // Without any event before it, message_stop still gets the role chunk first.
  anthropic_stream_to_openai x("fast", false, 1700000000);
  std::string out;
  x.on_event("message_stop", R"({"type":"message_stop"})", out);
  EXPECT_LT(out.find(R"("role":"assistant")"), out.find("[DONE]")) << out;
}

// No more content blocks than the translator keeps track of, in either layout.
TEST(AnthropicStreamOut, TooManyBlocksEndTheStreamInEitherLayout) {
  for (const char* type : {R"("type":"content_block_start")", R"("type": "content_block_start")"}) {
    anthropic_stream_to_openai x("fast", false, 1700000000);
    std::string out;
    event_result r;
    int n = 0;
    for (; n < 5000 && !r.terminal; ++n)
      r = x.on_event("content_block_start",
                     std::string("{") + type + R"(,"index":)" + std::to_string(n) +
                         R"(,"content_block":{"type":"text","text":""}})",
                     out);
    EXPECT_TRUE(r.error) << type;
    EXPECT_EQ(n, 4097) << type;
    EXPECT_NE(out.find("too many content blocks"), std::string::npos) << type;
  }
}

// input_json_delta in the compact layout skips the parse as text deltas do: a fragment of
// tool input (full of \" escapes) gives the bytes of the DOM path whatever it holds, and
// fragments for a block that is not a tool, or no block, give the same error.
TEST(AnthropicStreamOut, ToolInputFastPathWritesWhatTheDomPathWrites) {
  const std::string parts[] = {R"({\"location\": \"San Francisco, CA\"})",
                               "",
                               R"(\"caf\u00e9\")",
                               R"(a\/b)",
                               "caf\xc3\xa9 \xf0\x9f\x98\x80",
                               "bad \xff",
                               R"(\n\t\r\b\f\\)",
                               R"(bare " quote)",
                               "raw \x01",
                               R"(trailing \)",
                               std::string(300, 'x')};
  for (const std::string& part : parts) {
    for (const char* index : {"1", "0", "3", "01"}) {
      auto stream = [&](bool compact) {
        std::string data = std::string(compact ? R"({"type":"content_block_delta","index":)"
                                               : R"({"type": "content_block_delta","index":)") +
                           index + R"(,"delta":{"type":"input_json_delta","partial_json":")" +
                           part + R"("}})";
        anthropic_stream_to_openai x("fast", false, 1700000000);
        std::string out;
        x.on_event("message_start",
                   R"({"type":"message_start","message":{"id":"msg_1","model":"m"}})", out);
        x.on_event(
            "content_block_start",
            R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})",
            out);
        x.on_event("content_block_start",
                   R"({"type":"content_block_start","index":1,"content_block":{"type":"tool_use",)"
                   R"("id":"toolu_1","name":"f","input":{}}})",
                   out);
        x.on_event("content_block_delta", data, out);
        x.on_event("content_block_delta", data, out);
        x.on_event("content_block_stop", R"({"type":"content_block_stop","index":1})", out);
        x.on_event("message_stop", R"({"type":"message_stop"})", out);
        return out;
      };
      EXPECT_EQ(stream(true), stream(false)) << "part " << part << " index " << index;
    }
  }
}

// The translators share one parser per thread; a big event must not leave its buffers there.
TEST(AnthropicStreamOut, BigEventDoesNotStayInTheThreadParser) {
  anthropic_stream_to_openai x("fast", false, 1700000000);
  std::string out;
  x.on_event("content_block_delta",
             R"({"type": "content_block_delta","index":0,"delta":{"type":"text_delta","text":")" +
                 std::string(300 * 1024, 'x') + R"("}})",
             out);
  EXPECT_NE(out.find(std::string(1000, 'x')), std::string::npos);
  EXPECT_LE(detail::thread_parser().capacity(), 64u * 1024);
}

}  // namespace
}  // namespace ob::dialect::anthropic
