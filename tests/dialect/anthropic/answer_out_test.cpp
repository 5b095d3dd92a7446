// Outbound answer: Anthropic message / error -> chat.completion / OpenAI error.
#include <gtest/gtest.h>

#include "dialect/anthropic/translate.hpp"
#include "helpers.hpp"

namespace ob::dialect::anthropic {
namespace {

TEST(AnthropicAnswerOut, TextMessage) {
  // The Messages API reference's example answer.
  auto r = anthropic_answer_to_openai(
      200,
      R"({"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant",)"
      R"("model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hi! My name is Claude."}],)"
      R"("stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2095,"output_tokens":503,)"
      R"("cache_creation_input_tokens":100,"cache_read_input_tokens":1000}})",
      "fast", 1700000000);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(
      r.body,
      R"({"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","object":"chat.completion","created":1700000000,)"
      R"("model":"fast","choices":[{"index":0,"message":{"role":"assistant",)"
      R"("content":"Hi! My name is Claude.","refusal":null},"logprobs":null,)"
      R"("finish_reason":"stop"}],"usage":{"prompt_tokens":3195,"completion_tokens":503,)"
      R"("total_tokens":3698,"prompt_tokens_details":{"cached_tokens":1000}}})");
  EXPECT_EQ(r.usage.prompt_tokens, 3195);
  EXPECT_EQ(r.usage.completion_tokens, 503);
  EXPECT_EQ(r.usage.total_tokens, 3698);
}

TEST(AnthropicAnswerOut, ToolUseAndThinking) {
  auto r = anthropic_answer_to_openai(
      200,
      R"({"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[)"
      R"({"type":"thinking","thinking":"Need weather.","signature":"sig"},)"
      R"({"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"location":"San Francisco, CA"}}],)"
      R"("stop_reason":"tool_use","usage":{"input_tokens":10,"output_tokens":5}})",
      "fast", 1);
  EXPECT_EQ(
      r.body,
      R"({"id":"msg_1","object":"chat.completion","created":1,"model":"fast","choices":[)"
      R"({"index":0,"message":{"role":"assistant","content":null,"reasoning_content":"Need weather.",)"
      R"("tool_calls":[{"id":"toolu_01A","type":"function","function":{"name":"get_weather",)"
      R"("arguments":"{\"location\":\"San Francisco, CA\"}"}}],"refusal":null},"logprobs":null,)"
      R"("finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5,)"
      R"("total_tokens":15,"prompt_tokens_details":{"cached_tokens":0}}})");
}

TEST(AnthropicAnswerOut, StopReasons) {
  const std::pair<const char*, const char*> table[] = {
      {"end_turn", "stop"},
      {"stop_sequence", "stop"},
      {"max_tokens", "length"},
      {"tool_use", "tool_calls"},
      {"refusal", "content_filter"},
      {"pause_turn", "stop"},
      {"model_context_window_exceeded", "length"},
  };
  for (auto [in, want] : table) {
    auto r = anthropic_answer_to_openai(
        200,
        std::string(R"({"type":"message","content":[{"type":"text","text":"x"}],"stop_reason":")") +
            in + "\"}",
        "g", 0);
    EXPECT_NE(r.body.find(std::string(R"("finish_reason":")") + want + "\""), std::string::npos)
        << in << " " << r.body;
  }
}

TEST(AnthropicAnswerOut, ErrorsMapToOpenAIShapeAndStatus) {
  struct row {
    int status;
    const char* type;
    int want_status;
    const char* want_type;
    const char* want_code;
  };
  const row rows[] = {
      {400, "invalid_request_error", 400, "invalid_request_error", "invalid_request_error"},
      {401, "authentication_error", 401, "authentication_error", "invalid_api_key"},
      {403, "permission_error", 403, "permission_error", "permission_error"},
      {404, "not_found_error", 404, "invalid_request_error", "not_found"},
      {413, "request_too_large", 413, "invalid_request_error", "request_too_large"},
      {429, "rate_limit_error", 429, "rate_limit_error", "rate_limit_exceeded"},
      {500, "api_error", 500, "server_error", "api_error"},
      {529, "overloaded_error", 503, "server_error", "overloaded_error"},
  };
  for (const auto& w : rows) {
    SCOPED_TRACE(w.status);
    std::string body = std::string(R"({"type":"error","error":{"type":")") + w.type +
                       R"(","message":"It \"broke\""}})";
    auto r = anthropic_answer_to_openai(w.status, body, "g", 0);
    EXPECT_EQ(r.status, w.want_status);
    EXPECT_EQ(r.body, std::string(R"({"error":{"message":"It \"broke\"","type":")") + w.want_type +
                          R"(","param":null,"code":")" + w.want_code + "\"}}");
  }
  auto html = anthropic_answer_to_openai(502, "<html>bad gateway</html>", "g", 0);
  EXPECT_EQ(html.status, 502);
  EXPECT_TRUE(test::valid_json(html.body));
  auto garbage = anthropic_answer_to_openai(200, "{\"type\":\"nope\"}", "g", 0);
  EXPECT_EQ(garbage.status, 502);
  EXPECT_NE(garbage.body.find("upstream_bad_response"), std::string::npos);
}

}  // namespace
}  // namespace ob::dialect::anthropic
