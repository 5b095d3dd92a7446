// Inbound answer: chat.completion / OpenAI error -> Anthropic message / error.
#include <gtest/gtest.h>

#include "dialect/anthropic/translate.hpp"
#include "helpers.hpp"

namespace ob::dialect::anthropic {
namespace {

TEST(AnthropicAnswerIn, TextCompletion) {
  // The chat completions reference's example answer.
  auto r = openai_answer_to_anthropic(
      200,
      R"({"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,)"
      R"("model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there.",)"
      R"("refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1117,)"
      R"("completion_tokens":46,"total_tokens":1163,"prompt_tokens_details":{"cached_tokens":1000,"audio_tokens":0}}})",
      "claude-via-gpt");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(
      r.body,
      R"({"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","type":"message","role":"assistant",)"
      R"("model":"claude-via-gpt","content":[{"type":"text","text":"Hi there."}],"stop_reason":"end_turn",)"
      R"("stop_sequence":null,"usage":{"input_tokens":117,"cache_creation_input_tokens":0,)"
      R"("cache_read_input_tokens":1000,"output_tokens":46}})");
  EXPECT_EQ(r.usage.prompt_tokens, 1117);
  EXPECT_EQ(r.usage.completion_tokens, 46);
}

TEST(AnthropicAnswerIn, ToolCallsAndFinishReasons) {
  auto r = openai_answer_to_anthropic(
      200,
      R"({"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[)"
      R"({"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Boston, MA\"}"}},)"
      R"({"id":"call_bad","type":"function","function":{"name":"f","arguments":"{broken"}}]},)"
      R"("finish_reason":"tool_calls"}],"usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99}})",
      "g");
  EXPECT_EQ(
      r.body,
      R"({"id":"c1","type":"message","role":"assistant","model":"g","content":[)"
      R"({"type":"tool_use","id":"call_abc","name":"get_weather","input":{"location":"Boston, MA"}},)"
      R"({"type":"tool_use","id":"call_bad","name":"f","input":{}}],"stop_reason":"tool_use",)"
      R"("stop_sequence":null,"usage":{"input_tokens":82,"cache_creation_input_tokens":0,)"
      R"("cache_read_input_tokens":0,"output_tokens":17}})");
  const std::pair<const char*, const char*> table[] = {{"stop", "end_turn"},
                                                       {"length", "max_tokens"},
                                                       {"tool_calls", "tool_use"},
                                                       {"content_filter", "refusal"},
                                                       {"function_call", "tool_use"}};
  for (auto [fr, want] : table) {
    auto a = openai_answer_to_anthropic(
        200,
        std::string(R"({"choices":[{"message":{"content":"x"},"finish_reason":")") + fr + "\"}]}",
        "g");
    EXPECT_NE(a.body.find(std::string(R"("stop_reason":")") + want + "\""), std::string::npos)
        << a.body;
  }
}

// Some OpenAI-compatible providers end a turn that called tools with "stop": still tool_use
// (Anthropic's clients loop while stop_reason is tool_use).
TEST(AnthropicAnswerIn, ToolCallsEndedWithStopAreToolUse) {
  auto r = openai_answer_to_anthropic(
      200,
      R"({"id":"c","choices":[{"message":{"tool_calls":[{"id":"k","function":{"name":"now","arguments":"{}"}}]},"finish_reason":"stop"}]})",
      "g");
  EXPECT_NE(r.body.find(R"("stop_reason":"tool_use")"), std::string::npos) << r.body;
}

// A tool call without "arguments" (an empty view with a null data pointer reached simdjson's
// memcpy: undefined behaviour found by the fuzzer; the sanitizer build of this test catches it).
TEST(AnthropicAnswerIn, ToolCallWithoutArgumentsGetsEmptyInput) {
  auto r = openai_answer_to_anthropic(
      200,
      R"({"id":"c","choices":[{"message":{"tool_calls":[{"id":"k","function":{"name":"now"}}]},"finish_reason":"tool_calls"}]})",
      "g");
  EXPECT_NE(r.body.find(R"({"type":"tool_use","id":"k","name":"now","input":{}})"),
            std::string::npos)
      << r.body;
}

TEST(AnthropicAnswerIn, Errors) {
  const std::tuple<int, const char*, int> table[] = {
      {400, "invalid_request_error", 400}, {401, "authentication_error", 401},
      {403, "permission_error", 403},      {404, "not_found_error", 404},
      {429, "rate_limit_error", 429},      {500, "api_error", 500},
      {503, "overloaded_error", 503},      {302, "api_error", 502},
  };
  for (auto [status, type, want] : table) {
    auto r = openai_answer_to_anthropic(
        status,
        R"({"error":{"message":"Nope \"x\"","type":"invalid_request_error","param":null,"code":null}})",
        "g");
    EXPECT_EQ(r.status, want);
    EXPECT_EQ(r.body, std::string(R"({"type":"error","error":{"type":")") + type +
                          R"(","message":"Nope \"x\""}})");
  }
  auto g = openai_answer_to_anthropic(200, "not json", "g");
  EXPECT_EQ(g.status, 502);
  EXPECT_TRUE(test::valid_json(g.body));
}

}  // namespace
}  // namespace ob::dialect::anthropic
