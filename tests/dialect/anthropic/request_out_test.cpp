// Outbound request: OpenAI chat completions -> Anthropic Messages, one golden per mapping rule
// (docs/ANTHROPIC.md, "Outbound request"), and the table of refused parameters.
#include <gtest/gtest.h>

#include "dialect/anthropic/request_fast.hpp"
#include "dialect/anthropic/translate.hpp"
#include "helpers.hpp"

namespace ob::dialect::anthropic {
namespace {

// The general (DOM) translator's result for the same body.
request_result general(std::string_view body, std::int64_t default_max = 1024) {
  outbound_options o;
  o.target_model = "claude-sonnet-4-5";
  o.default_max_tokens = default_max;
  o.general_only = true;
  return openai_request_to_anthropic(body, o);
}

void expect_same(const request_result& a, const request_result& b) {
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.stream, b.stream);
  EXPECT_EQ(a.include_usage, b.include_usage);
  EXPECT_EQ(a.error.status, b.error.status);
  EXPECT_EQ(a.error.param, b.error.param);
  EXPECT_EQ(a.error.message, b.error.message);
  EXPECT_EQ(a.error.code, b.error.code);
  EXPECT_EQ(a.error_body, b.error_body);
}

// The translation as the gateway runs it (the single pass when the body has the common shape),
// checked against the general translator: every case of this file compares the two.
request_result tr_out(std::string_view body, std::int64_t default_max = 1024) {
  outbound_options o;
  o.target_model = "claude-sonnet-4-5";
  o.default_max_tokens = default_max;
  request_result r = openai_request_to_anthropic(body, o);
  expect_same(r, general(body, default_max));
  return r;
}

// Whether the single pass took the body (else the general translator did).
bool single(std::string_view body) {
  outbound_options o;
  o.target_model = "claude-sonnet-4-5";
  o.default_max_tokens = 1024;
  std::string out = "kept";
  request_result r;
  bool took = detail::single_pass(body, o, out, r);
  if (!took) {
    EXPECT_EQ(out, "kept");  // untouched when it declines
  }
  return took;
}

std::string ok_out(std::string_view body) {
  auto r = tr_out(body);
  EXPECT_FALSE(r.failed()) << r.error_body;
  EXPECT_TRUE(test::valid_json(r.body)) << r.body;
  return r.body;
}

TEST(AnthropicRequestOut, MinimalChatGetsTargetModelAndDefaultMaxTokens) {
  EXPECT_EQ(ok_out(R"({"model":"fast","messages":[{"role":"user","content":"Hello"}]})"),
            R"({"model":"claude-sonnet-4-5","max_tokens":1024,)"
            R"("messages":[{"role":"user","content":"Hello"}]})");
}

TEST(AnthropicRequestOut, MaxCompletionTokensWinsOverMaxTokens) {
  EXPECT_EQ(
      ok_out(
          R"({"model":"m","max_tokens":10,"max_completion_tokens":20,"messages":[{"role":"user","content":"x"}]})"),
      R"({"model":"claude-sonnet-4-5","max_tokens":20,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(
      ok_out(R"({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"x"}]})"),
      R"({"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"x"}]})");
}

TEST(AnthropicRequestOut, SystemAndDeveloperMessagesAreHoisted) {
  EXPECT_EQ(
      ok_out(R"({"model":"m","messages":[{"role":"system","content":"Be brief."},)"
             R"({"role":"user","content":"Hi"},{"role":"developer","content":[{"type":"text",)"
             R"("text":"Use French."}]}]})"),
      R"({"model":"claude-sonnet-4-5","max_tokens":1024,"system":[{"type":"text",)"
      R"("text":"Be brief."},{"type":"text","text":"Use French."}],)"
      R"("messages":[{"role":"user","content":"Hi"}]})");
  EXPECT_EQ(ok_out(R"({"model":"m","messages":[{"role":"system","content":"S"},)"
                   R"({"role":"user","content":"Hi"}]})"),
            R"({"model":"claude-sonnet-4-5","max_tokens":1024,"system":"S",)"
            R"("messages":[{"role":"user","content":"Hi"}]})");
}

TEST(AnthropicRequestOut, ContentPartsAndImages) {
  EXPECT_EQ(
      ok_out(
          R"({"model":"m","messages":[{"role":"user","content":[)"
          R"({"type":"text","text":"What is this?"},)"
          R"({"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0K","detail":"high"}},)"
          R"({"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}}]}]})"),
      R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user",)"
      R"("content":[{"type":"text","text":"What is this?"},{"type":"image","source":)"
      R"({"type":"base64","media_type":"image/png","data":"iVBORw0K"}},{"type":"image",)"
      R"("source":{"type":"url","url":"https://example.com/cat.jpg"}}]}]})");
}

TEST(AnthropicRequestOut, ToolsAndToolChoice) {
  std::string tools =
      R"("tools":[{"type":"function","function":{"name":"get_weather","description":"Weather",)"
      R"("parameters":{"type":"object","properties":{"location":{"type":"string"}},)"
      R"("required":["location"]}}}])";
  std::string want_tools =
      R"("tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object",)"
      R"("properties":{"location":{"type":"string"}},"required":["location"]}}])";
  auto with = [&](std::string_view extra) {
    return ok_out(R"({"model":"m","messages":[{"role":"user","content":"x"}],)" + tools +
                  std::string(extra) + "}");
  };
  std::string base =
      R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],)";
  EXPECT_EQ(with(""), base + want_tools + "}");
  EXPECT_EQ(with(R"(,"tool_choice":"auto")"),
            base + want_tools + R"(,"tool_choice":{"type":"auto"}})");
  EXPECT_EQ(with(R"(,"tool_choice":"none")"),
            base + want_tools + R"(,"tool_choice":{"type":"none"}})");
  EXPECT_EQ(with(R"(,"tool_choice":"required")"),
            base + want_tools + R"(,"tool_choice":{"type":"any"}})");
  EXPECT_EQ(with(R"(,"tool_choice":{"type":"function","function":{"name":"get_weather"}})"),
            base + want_tools + R"(,"tool_choice":{"type":"tool","name":"get_weather"}})");
  EXPECT_EQ(
      with(R"(,"parallel_tool_calls":false)"),
      base + want_tools + R"(,"tool_choice":{"type":"auto","disable_parallel_tool_use":true}})");
  EXPECT_EQ(
      with(R"(,"tool_choice":"required","parallel_tool_calls":false)"),
      base + want_tools + R"(,"tool_choice":{"type":"any","disable_parallel_tool_use":true}})");
  // A tool without parameters gets an empty object schema.
  EXPECT_EQ(
      ok_out(
          R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"now"}}]})"),
      base + R"("tools":[{"name":"now","input_schema":{"type":"object","properties":{}}}]})");
}

TEST(AnthropicRequestOut, AssistantToolCallsAndMergedToolResults) {
  EXPECT_EQ(
      ok_out(
          R"({"model":"m","messages":[{"role":"user","content":"Weather in Paris and Rome?"},)"
          R"({"role":"assistant","content":"Checking.","tool_calls":[)"
          R"({"id":"call_1","type":"function","function":{"name":"w","arguments":"{\"city\":\"Paris\"}"}},)"
          R"({"id":"call_2","type":"function","function":{"name":"w","arguments":"{\"city\":\"Rome\"}"}}]},)"
          R"({"role":"tool","tool_call_id":"call_1","content":"18C"},)"
          R"({"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"21C"}]},)"
          R"({"role":"user","content":"Thanks"}]})"),
      R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[)"
      R"({"role":"user","content":"Weather in Paris and Rome?"},)"
      R"({"role":"assistant","content":[{"type":"text","text":"Checking."},)"
      R"({"type":"tool_use","id":"call_1","name":"w","input":{"city":"Paris"}},)"
      R"({"type":"tool_use","id":"call_2","name":"w","input":{"city":"Rome"}}]},)"
      R"({"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"18C"},)"
      R"({"type":"tool_result","tool_use_id":"call_2","content":[{"type":"text","text":"21C"}]}]},)"
      R"({"role":"user","content":"Thanks"}]})");
}

TEST(AnthropicRequestOut, AssistantWithoutContentOrCallsIsLeftOutAndEmptyArgumentsAreAnObject) {
  EXPECT_EQ(
      ok_out(R"({"model":"m","messages":[{"role":"assistant","content":null},)"
             R"({"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function",)"
             R"("function":{"name":"now","arguments":""}}]}]})"),
      R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"assistant",)"
      R"("content":[{"type":"tool_use","id":"c","name":"now","input":{}}]}]})");
}

TEST(AnthropicRequestOut, SamplingStopStreamAndUser) {
  EXPECT_EQ(
      ok_out(
          R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":0.5,"top_p":0.9,"stop":"END",)"
          R"("stream":true,"stream_options":{"include_usage":true},"user":"u-42"})"),
      R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"temperature":0.5,)"
      R"("top_p":0.9,"stop_sequences":["END"],"stream":true,"metadata":{"user_id":"u-42"}})");
  auto r = tr_out(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(
      ok_out(R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a","b"]})"),
      R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"stop_sequences":["a","b"]})");
  EXPECT_EQ(
      ok_out(R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":1})"),
      R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"temperature":1})");
}

TEST(AnthropicRequestOut, NeutralValuesAndNoEffectParametersAreDropped) {
  EXPECT_EQ(
      ok_out(
          R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":1,"logprobs":false,"frequency_penalty":0,)"
          R"("presence_penalty":0,"response_format":{"type":"text"},"store":true,)"
          R"("metadata":{"a":"b"},"service_tier":"auto","seed":null,"modalities":["text"],)"
          R"("logit_bias":{},"top_logprobs":null,"prompt_cache_key":"k"})"),
      R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}]})");
}

TEST(AnthropicRequestOut, StringsAreEscapedNotConcatenated) {
  std::string body =
      ok_out(R"({"model":"m","messages":[{"role":"user","content":"a\"b\\c\n\u0001 é"}]})");
  EXPECT_NE(body.find(R"("a\"b\\c\n\u0001 é")"), std::string::npos) << body;
}

// Every refused parameter: 400, OpenAI error shape, param naming the field.
struct refusal_case {
  const char* name;
  const char* body;
  const char* param;
};

const refusal_case refusals[] = {
    {"n above one", R"({"messages":[{"role":"user","content":"x"}],"n":2})", "n"},
    {"logprobs", R"({"messages":[{"role":"user","content":"x"}],"logprobs":true})", "logprobs"},
    {"top_logprobs", R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":3})",
     "top_logprobs"},
    {"json_schema",
     R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}})",
     "response_format"},
    {"json_object",
     R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})",
     "response_format"},
    {"audio",
     R"({"messages":[{"role":"user","content":"x"}],"audio":{"voice":"alloy","format":"wav"}})",
     "audio"},
    {"modalities audio",
     R"({"messages":[{"role":"user","content":"x"}],"modalities":["text","audio"]})", "modalities"},
    {"frequency_penalty", R"({"messages":[{"role":"user","content":"x"}],"frequency_penalty":0.5})",
     "frequency_penalty"},
    {"presence_penalty", R"({"messages":[{"role":"user","content":"x"}],"presence_penalty":-1})",
     "presence_penalty"},
    {"logit_bias", R"({"messages":[{"role":"user","content":"x"}],"logit_bias":{"50256":-100}})",
     "logit_bias"},
    {"seed", R"({"messages":[{"role":"user","content":"x"}],"seed":7})", "seed"},
    {"reasoning_effort",
     R"({"messages":[{"role":"user","content":"x"}],"reasoning_effort":"high"})",
     "reasoning_effort"},
    {"web_search_options",
     R"({"messages":[{"role":"user","content":"x"}],"web_search_options":{}})",
     "web_search_options"},
    {"functions", R"({"messages":[{"role":"user","content":"x"}],"functions":[{"name":"f"}]})",
     "functions"},
    {"unknown key", R"({"messages":[{"role":"user","content":"x"}],"frobnicate":1})", "frobnicate"},
    {"temperature above 1", R"({"messages":[{"role":"user","content":"x"}],"temperature":1.5})",
     "temperature"},
    {"temperature negative", R"({"messages":[{"role":"user","content":"x"}],"temperature":-0.1})",
     "temperature"},
    {"top_p above 1", R"({"messages":[{"role":"user","content":"x"}],"top_p":2})", "top_p"},
    {"max_tokens zero", R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})",
     "max_tokens"},
    {"max_completion_tokens fraction",
     R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":1.5})",
     "max_completion_tokens"},
    {"messages missing", R"({"model":"m"})", "messages"},
    {"stop number", R"({"messages":[{"role":"user","content":"x"}],"stop":5})", "stop"},
    {"stop of whitespace only", R"({"messages":[{"role":"user","content":"x"}],"stop":"\n"})",
     "stop"},
    {"a stop sequence of whitespace only",
     R"({"messages":[{"role":"user","content":"x"}],"stop":["END"," \t"]})", "stop"},
    {"bad arguments",
     R"({"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{not json"}}]}]})",
     "messages[0].tool_calls[0].function.arguments"},
    {"arguments not an object",
     R"({"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]})",
     "messages[0].tool_calls[0].function.arguments"},
    {"audio input part",
     R"({"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]})",
     "messages[0].content[0].type"},
    {"file part",
     R"({"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"f"}}]}]})",
     "messages[0].content[0].type"},
    {"image not base64",
     R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]})",
     "messages[0].content[0].image_url.url"},
    {"image type",
     R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,abc"}}]}]})",
     "messages[0].content[0].image_url.url"},
    {"image scheme",
     R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]})",
     "messages[0].content[0].image_url.url"},
    {"function role", R"({"messages":[{"role":"function","name":"f","content":"x"}]})",
     "messages[0].role"},
    {"non-function tool",
     R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"code_interpreter"}]})",
     "tools[0].type"},
    {"bad tool_choice", R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"})",
     "tool_choice"},
    {"legacy function_call",
     R"({"messages":[{"role":"assistant","content":"x","function_call":{"name":"f","arguments":"{}"}}]})",
     "messages[0].function_call"},
    {"duplicate key",
     R"({"messages":[{"role":"user","content":"x"}],"temperature":0.1,"temperature":0.2})",
     "temperature"},
    {"invalid json", R"({"messages":[)", ""},
};

TEST(AnthropicRequestOut, RefusedParametersTable) {
  for (const auto& c : refusals) {
    SCOPED_TRACE(c.name);
    auto r = tr_out(c.body);
    ASSERT_TRUE(r.failed()) << r.body;
    EXPECT_EQ(r.error.status, 400);
    EXPECT_EQ(r.error.param, c.param);
    EXPECT_TRUE(r.body.empty());
    simdjson::dom::parser p;
    simdjson::dom::element e;
    ASSERT_FALSE(p.parse(r.error_body).get(e)) << r.error_body;
    std::string_view type, msg;
    ASSERT_FALSE(e["error"]["type"].get(type));
    ASSERT_FALSE(e["error"]["message"].get(msg));
    EXPECT_EQ(type, "invalid_request_error");
    EXPECT_FALSE(msg.empty());
    if (*c.param) {
      std::string_view param;
      ASSERT_FALSE(e["error"]["param"].get(param)) << r.error_body;
      EXPECT_EQ(param, c.param);
    }
  }
}

// The single pass (request_fast.cpp) takes the common shape and declines everything else, which
// the general translator then handles: each case says which path ran and what came out (a golden
// body, or the refused param), and tr_out() checks both paths agree byte for byte.
struct path_case {
  const char* name;
  std::string body;
  bool single;             // the single pass took it
  const char* expect;      // the translated body, or nullptr: refused
  const char* param = "";  // the refused field
};

const path_case path_cases[] = {
    {"the benchmark's shape",
     R"({"model":"g","messages":[{"role":"system","content":"Be brief."},{"role":"user",)"
     R"("content":"Hi"}],"temperature":0.2,"max_tokens":256,"stream":true})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":256,"system":"Be brief.","messages":[)"
     R"({"role":"user","content":"Hi"}],"temperature":0.2,"stream":true})"},
    {"keys in another order, spaces and newlines",
     "{ \"stream\" : false ,\n \"messages\" : [ { \"content\" : \"Hi\" , \"role\" : \"user\" } ] ,"
     "\n\t\"model\":\"g\", \"max_completion_tokens\": 20 , \"max_tokens\": 5 }\n",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":20,"messages":[{"role":"user","content":"Hi"}]})"},
    {"escapes are rewritten as the writer writes them",
     R"({"model":"g","messages":[{"role":"user","content":"a\"b\\c\n\u0001 \u00e9 \/ é"}]})", true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user",)"
     R"("content":"a\"b\\c\n\u0001 é / é"}]})"},
    {"escaped keys and role",
     R"({"mod\u0065l":"g","m\u0065ssages":[{"r\u006fle":"us\u0065r","content":"x"}]})", true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}]})"},
    {"several system texts, an empty one left out, an empty assistant turn left out",
     R"({"model":"g","messages":[{"role":"system","content":"A"},{"role":"developer","content":""},)"
     R"({"role":"user","content":"Hi"},{"role":"assistant","content":""},)"
     R"({"role":"assistant","content":"Yes"},{"role":"system","content":"B"}]})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"system":[{"type":"text","text":"A"},)"
     R"({"type":"text","text":"B"}],"messages":[{"role":"user","content":"Hi"},)"
     R"({"role":"assistant","content":[{"type":"text","text":"Yes"}]}]})"},
    {"one empty system text is kept",
     R"({"model":"g","messages":[{"role":"system","content":""},{"role":"user","content":"x"}]})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"system":"","messages":[{"role":"user","content":"x"}]})"},
    {"numbers as simdjson re-serializes them",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"temperature":1e-1,"top_p":-0,"max_tokens":3.0E2})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":300,"messages":[{"role":"user","content":"x"}],"temperature":0.1,"top_p":0})"},
    {"integral temperature, top_p with trailing zeros",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"temperature":0,"top_p":0.50})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"temperature":0,"top_p":0.5})"},
    // Newer Claude models refuse temperature and top_p together: beside the other, the neutral
    // one (top_p 1, temperature 1) is left out, on both paths.
    {"top_p 1 beside a temperature is left out",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"temperature":0.7,"top_p":1})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"temperature":0.7})"},
    {"top_p 1.0 beside temperature 1: the temperature stays",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"top_p":1.0,"temperature":1})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"temperature":1})"},
    {"temperature 1 beside a top_p below 1 is left out",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"temperature":1,"top_p":0.9})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"top_p":0.9})"},
    {"top_p 1 alone stays", R"({"model":"g","messages":[{"role":"user","content":"x"}],"top_p":1})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"top_p":1})"},
    {"the general path leaves out the same",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"stop":"END","temperature":0.2,"top_p":1})",
     false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"temperature":0.2,)"
     R"("stop_sequences":["END"]})"},
    {"user and stream options",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"user":"u\"1","stream":true,"stream_options":{"include_usage":false}})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"stream":true,)"
     R"("metadata":{"user_id":"u\"1"}})"},
    {"model repeated (dropped each time)",
     R"({"model":"g","model":"h","messages":[{"role":"user","content":"x"}]})", true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}]})"},
    {"nine system messages: general path",
     R"({"model":"g","messages":[)" +
         [] {
           std::string m;
           for (int i = 0; i < 9; ++i)
             m += std::string(i ? "," : "") + R"({"role":"system","content":"S"})";
           return m + R"(,{"role":"user","content":"x"})";
         }() +
         "]}",
     false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"system":[{"type":"text","text":"S"},)"
     R"({"type":"text","text":"S"},{"type":"text","text":"S"},{"type":"text","text":"S"},)"
     R"({"type":"text","text":"S"},{"type":"text","text":"S"},{"type":"text","text":"S"},)"
     R"({"type":"text","text":"S"},{"type":"text","text":"S"}],"messages":[{"role":"user","content":"x"}]})"},
    {"text parts of user, system and assistant messages",
     R"({"model":"g","messages":[{"content":[{"text":"S1","type":"text"},{"type":"text","text":""}],)"
     R"("role":"system"},{"role":"user","content":[{"type":"text","text":"a"},)"
     R"({"type":"t\u0065xt","text":"b\n"}]},{"role":"assistant","content":[{"type":"text","text":""},)"
     R"({"type":"text","text":"c"}]},{"role":"assistant","content":[{"type":"text","text":""}]},)"
     R"({"role":"user","content":[]},{"role":"developer","content":[{"type":"text","text":"S2"}]}]})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"system":[{"type":"text","text":"S1"},)"
     R"({"type":"text","text":"S2"}],"messages":[{"role":"user","content":[{"type":"text","text":"a"},)"
     R"({"type":"text","text":"b\n"}]},{"role":"assistant","content":[{"type":"text","text":"c"}]},)"
     R"({"role":"user","content":[]}]})"},
    {"one system part is the system string",
     R"({"model":"g","messages":[{"role":"system","content":[{"type":"text","text":"S"}]},{"role":"user","content":"x"}]})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"system":"S","messages":[{"role":"user","content":"x"}]})"},
    {"an empty assistant parts array is left out",
     R"({"model":"g","messages":[{"role":"assistant","content":[]},{"role":"user","content":"x"}]})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}]})"},
    // Declined: the general translator answers.
    {"a part with another key",
     R"({"model":"g","messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]}]})",
     false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user",)"
     R"("content":[{"type":"text","text":"x"}]}]})"},
    {"an image part",
     R"({"model":"g","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://e.com/a.png"}}]}]})",
     false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":[)"
     R"({"type":"image","source":{"type":"url","url":"https://e.com/a.png"}}]}]})"},
    {"an assistant refusal part",
     R"({"model":"g","messages":[{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]}]})",
     false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"assistant",)"
     R"("content":[{"type":"text","text":"no"}]}]})"},
    {"nine parts",
     R"({"model":"g","messages":[{"role":"user","content":[)" +
         [] {
           std::string m;
           for (int i = 0; i < 9; ++i)
             m += std::string(i ? "," : "") + R"({"type":"text","text":"p"})";
           return m;
         }() +
         "]}]}",
     false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":[)"
     R"({"type":"text","text":"p"},{"type":"text","text":"p"},{"type":"text","text":"p"},)"
     R"({"type":"text","text":"p"},{"type":"text","text":"p"},{"type":"text","text":"p"},)"
     R"({"type":"text","text":"p"},{"type":"text","text":"p"},{"type":"text","text":"p"}]}]})"},
    {"a part without text",
     R"({"model":"g","messages":[{"role":"user","content":[{"type":"text"}]}]})", false, nullptr,
     "messages[0].content[0].text"},
    {"a system part of another type",
     R"({"model":"g","messages":[{"role":"system","content":[{"type":"image_url","image_url":"x"}]}]})",
     false, nullptr, "messages[0].content[0].type"},
    {"a message with a name",
     R"({"model":"g","messages":[{"role":"user","content":"x","name":"n"}]})", false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}]})"},
    {"a null value",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"temperature":null})", false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}]})"},
    {"a neutral value", R"({"model":"g","messages":[{"role":"user","content":"x"}],"n":1})", false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}]})"},
    {"a dropped key", R"({"model":"g","messages":[{"role":"user","content":"x"}],"store":false})",
     false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}]})"},
    {"model not a string", R"({"model":7,"messages":[{"role":"user","content":"x"}]})", false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}]})"},
    {"stream_options not an object",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"stream_options":1})", false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}]})"},
    {"a stop sequence", R"({"model":"g","messages":[{"role":"user","content":"x"}],"stop":"x"})",
     false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"stop_sequences":["x"]})"},
    {"a tool message",
     R"({"model":"g","messages":[{"role":"tool","tool_call_id":"c","content":"r"}]})", false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":[)"
     R"({"type":"tool_result","tool_use_id":"c","content":"r"}]}]})"},
    {"an integer of 19 digits",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"max_tokens":1000000000000000000})",
     false, nullptr, "max_tokens"},
    {"an integer beyond 64 bits",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"max_tokens":100000000000000000000})",
     false, nullptr, ""},
    // Found by the fuzzer: the portable On-Demand kernel misreads some long numbers.
    {"a number of 29 digits",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"top_p":0.55555555555555555000013499088})",
     false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"top_p":0.5555555555555556})"},
    {"an exponent of 8 digits",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"temperature":5e-71869901})", false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"temperature":0.0})"},
    {"17 digits and an exponent of 3",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"top_p":1.2345678901234567e-100})",
     true,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}],"top_p":1.2345678901234567e-100})"},
    {"a number out of range",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"temperature":1e400})", false,
     nullptr, ""},
    {"a leading zero",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"temperature":01})", false, nullptr,
     ""},
    {"trailing content", R"({"model":"g","messages":[{"role":"user","content":"x"}]} x)", false,
     nullptr, ""},
    {"a second root", R"({"model":"g","messages":[{"role":"user","content":"x"}]}{})", false,
     nullptr, ""},
    {"an unclosed array", R"({"model":"g","messages":[{"role":"user","content":"x"})", false,
     nullptr, ""},
    // Found by the fuzzer: On-Demand skipping an unread string followed by ':' takes it for a
    // key and reads on; the single pass reads every value, so it sees the missing comma.
    {"a string value followed by a colon",
     R"({"model":"","messages":[{"role":"system","content":"":[{""}}]}]})", false, nullptr, ""},
    {"a model followed by a colon",
     R"({"model":"g":[{"x"}],"messages":[{"role":"user","content":"x"}]})", false, nullptr, ""},
    {"an integer followed by a colon",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"max_tokens":5:[{"x"}]})", false,
     nullptr, ""},
    {"a bad atom", R"({"model":"g","messages":[{"role":"user","content":"x"}],"stream":tru})",
     false, nullptr, ""},
    {"a lone surrogate", R"({"model":"g","messages":[{"role":"user","content":"\ud800"}]})", false,
     nullptr, ""},
    {"a raw newline in a string",
     "{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"a\nb\"}]}", false, nullptr,
     ""},
    // Anthropic needs a turn besides the system prompt (OpenAI answers a system prompt alone).
    {"no message", R"({"model":"g","messages":[]})", false, nullptr, "messages"},
    {"a system prompt alone",
     R"({"model":"g","messages":[{"role":"system","content":"Write a haiku."}]})", false, nullptr,
     "messages"},
    {"system and developer texts alone, general path",
     R"({"model":"g","messages":[{"role":"system","content":[{"type":"text","text":"A"}]},)"
     R"({"role":"developer","content":"B"}],"tools":[{"type":"function","function":{"name":"f"}}]})",
     false, nullptr, "messages"},
    {"only an empty assistant turn",
     R"({"model":"g","messages":[{"role":"system","content":"S"},{"role":"assistant","content":""}]})",
     false, nullptr, "messages"},
    {"an earlier refusal is the one reported", R"({"model":"g","messages":[],"temperature":1.5})",
     false, nullptr, "temperature"},
    {"not an object", R"([1])", false, nullptr, ""},
    {"empty", "", false, nullptr, ""},
    {"temperature above 1",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"temperature":1.5})", false,
     nullptr, "temperature"},
    {"max_tokens fraction",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"max_tokens":2.5})", false, nullptr,
     "max_tokens"},
    // Beyond int64: refused before the integer test (whose cast would be undefined behaviour;
    // found by the fuzzer under UBSan), on both paths.
    {"max_tokens far beyond int64",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"max_tokens":7.7e85})", false,
     nullptr, "max_tokens"},
    {"max_tokens far beyond int64, general path",
     R"({"model":"g","messages":[{"role":"robot","content":"x"}],"max_tokens":7.7e85})", false,
     nullptr, "max_tokens"},
    {"max_tokens above 1e9",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"max_tokens":1000000001})", false,
     nullptr, "max_tokens"},
    {"duplicate messages",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"messages":[{"role":"user","content":"x"}]})",
     false, nullptr, "messages"},
    {"duplicate role", R"({"model":"g","messages":[{"role":"user","role":"user","content":"x"}]})",
     false,
     R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"x"}]})"},
    {"an unknown role", R"({"model":"g","messages":[{"role":"robot","content":"x"}]})", false,
     nullptr, "messages[0].role"},
    {"messages missing", R"({"model":"g"})", false, nullptr, "messages"},
    {"user not a string", R"({"model":"g","messages":[{"role":"user","content":"x"}],"user":1})",
     false, nullptr, "user"},
    {"stream not a boolean",
     R"({"model":"g","messages":[{"role":"user","content":"x"}],"stream":"yes"})", false, nullptr,
     "stream"},
};

TEST(AnthropicRequestOut, SinglePassAndGeneralPathTable) {
  for (const auto& c : path_cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(single(c.body), c.single);
    auto r = tr_out(c.body);
    if (c.expect) {
      EXPECT_FALSE(r.failed()) << r.error_body;
      EXPECT_EQ(r.body, c.expect);
      EXPECT_TRUE(test::valid_json(r.body)) << r.body;
    } else {
      EXPECT_TRUE(r.failed()) << r.body;
      EXPECT_EQ(r.error.param, c.param);
    }
  }
}

// In place (the exchange's buffer has simdjson's padding) or from a copy: the same result; the
// output is appended to what the caller's string holds.
TEST(AnthropicRequestOut, SinglePassInPlaceAppends) {
  std::string body = R"({"model":"g","messages":[{"role":"user","content":"Hi"}],"stream":true})";
  const std::size_t size = body.size();
  body.append(simdjson::SIMDJSON_PADDING, '\0');
  outbound_options o;
  o.target_model = "m";
  o.body_capacity = body.size();
  std::string out = "x";
  request_result r = openai_request_to_anthropic(std::string_view(body.data(), size), o, out);
  EXPECT_FALSE(r.failed());
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(out, R"(x{"model":"m","max_tokens":4096,"messages":[{"role":"user","content":"Hi"}],)"
                 R"("stream":true})");
  // A refusal leaves the caller's string as it was.
  out = "x";
  r = openai_request_to_anthropic(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})",
                                  o, out);
  EXPECT_TRUE(r.failed());
  EXPECT_EQ(out, "x");
}

}  // namespace
}  // namespace ob::dialect::anthropic
