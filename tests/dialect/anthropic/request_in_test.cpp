// Inbound request: Anthropic Messages -> OpenAI chat completions.
#include <gtest/gtest.h>

#include "dialect/anthropic/translate.hpp"
#include "helpers.hpp"

namespace ob::dialect::anthropic {
namespace {

request_result tr(std::string_view body, bool mct = false) {
  inbound_options o;
  o.target_model = "gpt-4o";
  o.max_completion_tokens = mct;
  return anthropic_request_to_openai(body, o);
}

std::string ok(std::string_view body, bool mct = false) {
  auto r = tr(body, mct);
  EXPECT_FALSE(r.failed()) << r.error_body;
  EXPECT_TRUE(test::valid_json(r.body)) << r.body;
  return r.body;
}

TEST(AnthropicRequestIn, BasicMessage) {
  // The Messages API reference's first example.
  EXPECT_EQ(
      ok(R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello, world"}]})"),
      R"({"model":"gpt-4o","messages":[{"role":"user","content":"Hello, world"}],"max_tokens":1024})");
  EXPECT_EQ(ok(R"({"model":"c","max_tokens":5,"messages":[]})", true),
            R"({"model":"gpt-4o","messages":[],"max_completion_tokens":5})");
}

TEST(AnthropicRequestIn, SystemBlocksSamplingStopStreamAndUser) {
  EXPECT_EQ(
      ok(R"({"model":"c","max_tokens":10,"system":[{"type":"text","text":"You are Claude Code.",)"
         R"("cache_control":{"type":"ephemeral"}},{"type":"text","text":"Be terse."}],)"
         R"("messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"temperature":0.2,)"
         R"("top_p":0.9,"stop_sequences":["\n\nHuman:"],"stream":true,"metadata":{"user_id":"u1"},)"
         R"("thinking":{"type":"enabled","budget_tokens":2000},)"
         R"("context_management":{"edits":[{"type":"clear_tool_uses_20250919"}]}})"),
      R"({"model":"gpt-4o","messages":[{"role":"system","content":"You are Claude Code.\nBe terse."},)"
      R"({"role":"user","content":[{"type":"text","text":"hi"}]}],"max_tokens":10,"temperature":0.2,)"
      R"("top_p":0.9,"stop":["\n\nHuman:"],"stream":true,"stream_options":{"include_usage":true},)"
      R"("user":"u1"})");
  EXPECT_TRUE(tr(R"({"max_tokens":1,"messages":[],"stream":true})").stream);
}

TEST(AnthropicRequestIn, ImagesToolsAndToolTurns) {
  EXPECT_EQ(
      ok(R"({"model":"c","max_tokens":100,"tools":[{"name":"get_weather","description":"Get weather",)"
         R"("input_schema":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}],)"
         R"("tool_choice":{"type":"any","disable_parallel_tool_use":true},"messages":[)"
         R"({"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}},)"
         R"({"type":"image","source":{"type":"url","url":"https://e.com/a.jpg"}},{"type":"text","text":"Weather?"}]},)"
         R"({"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"text","text":"Let me check."},)"
         R"({"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"location":"SF"}}]},)"
         R"({"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"15C"}]},)"
         R"({"type":"text","text":"And tomorrow?"}]}]})"),
      R"({"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}},)"
      R"({"type":"image_url","image_url":{"url":"https://e.com/a.jpg"}},{"type":"text","text":"Weather?"}]},)"
      R"({"role":"assistant","content":"Let me check.","tool_calls":[{"id":"toolu_1","type":"function",)"
      R"("function":{"name":"get_weather","arguments":"{\"location\":\"SF\"}"}}]},)"
      R"({"role":"tool","tool_call_id":"toolu_1","content":"15C"},)"
      R"({"role":"user","content":[{"type":"text","text":"And tomorrow?"}]}],"max_tokens":100,)"
      R"("tools":[{"type":"function","function":{"name":"get_weather","description":"Get weather",)"
      R"("parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}}],)"
      R"("tool_choice":"required","parallel_tool_calls":false})");
}

TEST(AnthropicRequestIn, ToolChoices) {
  const std::pair<const char*, const char*> table[] = {
      {R"({"type":"auto"})", R"("tool_choice":"auto")"},
      {R"({"type":"any"})", R"("tool_choice":"required")"},
      {R"({"type":"none"})", R"("tool_choice":"none")"},
      {R"({"type":"tool","name":"f"})",
       R"("tool_choice":{"type":"function","function":{"name":"f"}})"},
  };
  for (auto [in, want] : table) {
    std::string body = ok(
        std::string(
            R"({"max_tokens":1,"messages":[],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":)") +
        in + "}");
    EXPECT_NE(body.find(want), std::string::npos) << body;
  }
}

// OpenAI refuses a tool_choice without tools (400): with no tools it is left out (it says
// nothing then), and a bad one is still refused.
TEST(AnthropicRequestIn, ToolChoiceWithoutToolsIsLeftOut) {
  for (const char* tools : {"", R"("tools":[],)"}) {
    std::string body = ok(std::string(R"({"max_tokens":1,"messages":[],)") + tools +
                          R"("tool_choice":{"type":"auto"}})");
    EXPECT_EQ(body.find("tool_choice"), std::string::npos) << body;
    EXPECT_EQ(body.find("parallel_tool_calls"), std::string::npos) << body;
  }
}

TEST(AnthropicRequestIn, RefusalsInAnthropicShape) {
  const std::pair<const char*, const char*> table[] = {
      {R"({"max_tokens":1,"messages":[],"top_k":5})", "top_k"},
      {R"({"max_tokens":1,"messages":[],"tool_choice":{"type":"sometimes"}})", "tool_choice.type"},
      {R"({"max_tokens":1,"messages":[],"mcp_servers":[{}]})", "mcp_servers"},
      {R"({"max_tokens":1,"messages":[],"unknown_thing":1})", "unknown_thing"},
      {R"({"max_tokens":1,"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]})",
       "tools[0].type"},
      {R"({"max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{}}]}]})",
       "messages[0].content[0].type"},
      {R"({"max_tokens":1,"messages":[{"role":"system","content":"x"}]})", "messages[0].role"},
      {R"({"max_tokens":0,"messages":[]})", "max_tokens"},
      {R"({"max_tokens":1})", "messages"},
      {"[1,2]", ""},
  };
  for (auto [body, param] : table) {
    SCOPED_TRACE(body);
    auto r = tr(body);
    ASSERT_TRUE(r.failed());
    EXPECT_EQ(r.error.status, 400);
    EXPECT_EQ(r.error.param, param);
    EXPECT_TRUE(r.error_body.starts_with(
        R"({"type":"error","error":{"type":"invalid_request_error","message":")"))
        << r.error_body;
    EXPECT_TRUE(test::valid_json(r.error_body));
  }
}

}  // namespace
}  // namespace ob::dialect::anthropic
