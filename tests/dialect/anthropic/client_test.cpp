// The Anthropic Messages API as a client dialect (dialect/client.hpp,
// src/dialect/anthropic/client.cpp): path choice, requests per target API, answers and streams
// back, the gateway's own errors.
#include "dialect/anthropic/client.hpp"

#include <gtest/gtest.h>

#include "helpers.hpp"

namespace ob::dialect::anthropic {
namespace {

constexpr std::string_view body =
    R"({"model":"claude","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"Hi"}]})";

request_in input(std::string_view target, std::string_view b = body) {
  request_in in;
  in.method = "POST";
  in.target = target;
  in.body = b;
  in.model = "gpt-4o";
  return in;
}

// Feeds `up` (SSE bytes) event by event through `t`; returns the client bytes and the last info.
std::string feed(client_translator& t, std::string_view up, event_info* last = nullptr,
                 int* terminals = nullptr) {
  std::string out;
  ob::proxy::sse::framer f;
  auto on = [&](const ob::proxy::sse::event& ev) {
    auto i = t.translate_event(ev, out);
    if (terminals && i.terminal) ++*terminals;
    if (last) *last = i;
  };
  f.feed(up, on);
  f.finish(on);
  return out;
}

TEST(MessagesClient, ChosenByPathOnly) {
  EXPECT_NE(client_codec_for_path("/v1/messages"), nullptr);
  EXPECT_NE(client_codec_for_path("/v1/messages/count_tokens"), nullptr);
  EXPECT_EQ(client_codec_for_path("/v1/chat/completions"), nullptr);
  EXPECT_EQ(client_codec_for_path("/v1/messages/"), nullptr);
  EXPECT_EQ(client_codec_for_path("/v1/messagesx"), nullptr);
  EXPECT_EQ(client_codec_for_path("/v1/messages/batches"), nullptr);
  EXPECT_EQ(client_codec_for_path(""), nullptr);
}

TEST(MessagesClient, AnthropicTargetPassesThrough) {
  const auto* c = messages_codec_instance();
  client_request_out out;
  ASSERT_TRUE(c->encode_request(input("/v1/messages"), api::anthropic, out).ok());
  EXPECT_TRUE(out.passthrough);
  EXPECT_FALSE(out.local);
  client_request_out ct;
  ASSERT_TRUE(c->encode_request(input("/v1/messages/count_tokens"), api::anthropic, ct).ok());
  EXPECT_TRUE(ct.passthrough);
}

TEST(MessagesClient, OpenAITargetGetsChatCompletions) {
  const auto* c = messages_codec_instance();
  client_request_out out;
  ASSERT_TRUE(c->encode_request(input("/v1/messages?beta=true"), api::openai, out).ok());
  EXPECT_FALSE(out.passthrough);
  EXPECT_EQ(out.req.target, "/v1/chat/completions");
  EXPECT_NE(out.req.body.find(R"("model":"gpt-4o")"), std::string::npos) << out.req.body;
  EXPECT_NE(out.req.body.find(R"({"role":"system","content":"Be brief."})"), std::string::npos)
      << out.req.body;

  client_request_out s;
  std::string stream_body =
      R"({"model":"claude","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"Hi"}]})";
  ASSERT_TRUE(c->encode_request(input("/v1/messages", stream_body), api::azure, s).ok());
  EXPECT_TRUE(s.req.stream);
  EXPECT_NE(s.req.body.find(R"("stream_options":{"include_usage":true})"), std::string::npos)
      << s.req.body;

  client_request_out bad;
  auto r = c->encode_request(
      input("/v1/messages", R"({"model":"claude","max_tokens":8,"top_k":3,"messages":[]})"),
      api::openai, bad);
  EXPECT_EQ(r.status, codec_status::bad_request);
  EXPECT_FALSE(r.message.empty());
}

TEST(MessagesClient, CountTokensEstimatedForOtherTargets) {
  const auto* c = messages_codec_instance();
  client_request_out out;
  ASSERT_TRUE(c->encode_request(input("/v1/messages/count_tokens"), api::openai, out).ok());
  EXPECT_TRUE(out.local);
  EXPECT_EQ(out.req.body, R"({"input_tokens":)" + std::to_string((body.size() + 3) / 4) + "}");
  EXPECT_EQ(estimate_tokens(""), 0);
  EXPECT_EQ(estimate_tokens("abcde"), 2);
}

TEST(MessagesClient, PassthroughStreamRewritesModelAndReadsUsage) {
  const auto* c = messages_codec_instance();
  auto t = c->new_translator(input("/v1/messages"), api::anthropic, "claude");
  std::string up =
      test::sse(
          "message_start",
          R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4","content":[],"usage":{"input_tokens":9,"cache_read_input_tokens":3,"output_tokens":1}}})") +
      test::sse(
          "content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})") +
      test::sse(
          "content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})") +
      test::sse("content_block_stop", R"({"type":"content_block_stop","index":0})") +
      test::sse(
          "message_delta",
          R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":12}})") +
      test::sse("message_stop", R"({"type":"message_stop"})");
  event_info last;
  int terminals = 0;
  std::string out = feed(*t, up, &last, &terminals);
  auto ev = test::read_sse(out);
  ASSERT_EQ(ev.size(), 6u) << out;
  EXPECT_EQ(ev[0].name, "message_start");
  EXPECT_EQ(
      ev[0].data,
      R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"usage":{"input_tokens":9,"cache_read_input_tokens":3,"output_tokens":1}}})");
  // Everything after message_start is copied byte for byte.
  EXPECT_EQ(out.substr(out.find("event: content_block_start")),
            up.substr(up.find("event: content_block_start")));
  EXPECT_TRUE(last.terminal);
  EXPECT_EQ(terminals, 1);
  EXPECT_EQ(t->usage().prompt_tokens, 12);
  EXPECT_EQ(t->usage().completion_tokens, 12);
  EXPECT_EQ(t->usage().total_tokens, 24);
}

TEST(MessagesClient, PassthroughErrorEventIsTerminal) {
  const auto* c = messages_codec_instance();
  auto t = c->new_translator(input("/v1/messages"), api::anthropic, "claude");
  event_info last;
  std::string out = feed(
      *t,
      test::sse("error",
                R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"),
      &last);
  EXPECT_TRUE(last.terminal);
  EXPECT_TRUE(last.error);
  EXPECT_NE(out.find("overloaded_error"), std::string::npos);
}

// message_start and the pings after it are held back (reported as held, nothing written)
// until the next event: an error there is then the stream's first counted event (the exchange
// fails over), and the held bytes go out in front of whatever comes next.
TEST(MessagesClient, PassthroughHoldsMessageStartUntilTheNextEvent) {
  const auto* c = messages_codec_instance();
  const std::string start = test::sse(
      "message_start",
      R"({"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4","usage":{"input_tokens":9}}})");
  const std::string ping = test::sse("ping", R"({"type": "ping"})");
  const std::string error = test::sse(
      "error", R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
  for (bool then_error : {true, false}) {
    auto t = c->new_translator(input("/v1/messages"), api::anthropic, "claude");
    std::vector<event_info> infos;
    std::string out;
    ob::proxy::sse::framer f;
    auto on = [&](const ob::proxy::sse::event& ev) {
      infos.push_back(t->translate_event(ev, out));
    };
    f.feed(start + ping, on);
    ASSERT_EQ(infos.size(), 2u);
    EXPECT_TRUE(infos[0].held);
    EXPECT_TRUE(infos[1].held);
    EXPECT_EQ(out, "");
    f.feed(
        then_error
            ? error
            : test::sse(
                  "content_block_start",
                  R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"),
        on);
    ASSERT_EQ(infos.size(), 3u);
    EXPECT_FALSE(infos[2].held);
    EXPECT_EQ(infos[2].error, then_error);
    auto ev = test::read_sse(out);
    ASSERT_EQ(ev.size(), 3u) << out;
    EXPECT_EQ(ev[0].name, "message_start");
    EXPECT_NE(ev[0].data.find(R"("model":"claude")"), std::string::npos) << ev[0].data;
    EXPECT_EQ(ev[1].name, "ping");
    EXPECT_EQ(ev[2].name, then_error ? "error" : "content_block_start");
  }
  // A stream that ends right after message_start: finish() lets the held bytes out.
  auto t = c->new_translator(input("/v1/messages"), api::anthropic, "claude");
  std::string out = feed(*t, start);
  EXPECT_EQ(out, "");
  t->finish(out);
  EXPECT_EQ(test::read_sse(out).size(), 1u) << out;
  // ... also when its last event lacked its blank line: ended, so that an error event the
  // exchange appends stays an event of its own.
  t = c->new_translator(input("/v1/messages"), api::anthropic, "claude");
  out = feed(*t, start + R"(event: ping
data: {"type": "ping"})");
  t->finish(out);
  out += "event: error\ndata: {}\n\n";
  auto ev = test::read_sse(out);
  ASSERT_EQ(ev.size(), 3u) << out;
  EXPECT_EQ(ev[1].data, R"({"type": "ping"})");
  EXPECT_EQ(ev[2].name, "error");
}

// The exchange stops waiting (timeouts.stream_hold: a long prefill): release_held lets the held
// bytes out; pings after it go out as they come and still do not count (held), until the next
// event; a message_start after the release is not held either.
TEST(MessagesClient, PassthroughReleaseLetsHeldBytesOutAndPingsThrough) {
  const auto* c = messages_codec_instance();
  const std::string start = test::sse(
      "message_start",
      R"({"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4","usage":{"input_tokens":9}}})");
  const std::string ping = test::sse("ping", R"({"type": "ping"})");
  auto t = c->new_translator(input("/v1/messages"), api::anthropic, "claude");
  std::vector<event_info> infos;
  std::string out;
  ob::proxy::sse::framer f;
  auto on = [&](const ob::proxy::sse::event& ev) { infos.push_back(t->translate_event(ev, out)); };
  f.feed(start + ping, on);
  EXPECT_EQ(out, "");
  const auto held = t->held_size();
  EXPECT_GT(held, ping.size());
  t->release_held(out);
  EXPECT_EQ(out.size(), held);
  EXPECT_EQ(t->held_size(), 0u);
  auto ev = test::read_sse(out);
  ASSERT_EQ(ev.size(), 2u) << out;
  EXPECT_EQ(ev[0].name, "message_start");
  EXPECT_NE(ev[0].data.find(R"("model":"claude")"), std::string::npos) << ev[0].data;
  f.feed(ping, on);
  ASSERT_EQ(infos.size(), 3u);
  EXPECT_TRUE(infos[2].held);  // written, not counted
  EXPECT_EQ(test::read_sse(out).size(), 3u) << out;
  EXPECT_EQ(t->held_size(), 0u);
  f.feed(
      test::sse(
          "content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"),
      on);
  ASSERT_EQ(infos.size(), 4u);
  EXPECT_FALSE(infos[3].held);  // the stream's first counted event
  EXPECT_EQ(test::read_sse(out).size(), 4u) << out;

  // Released before message_start (comments came first): it goes out at once, uncounted.
  t = c->new_translator(input("/v1/messages"), api::anthropic, "claude");
  infos.clear();
  out.clear();
  t->release_held(out);
  EXPECT_EQ(out, "");
  f.feed(start + ping, on);
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_TRUE(infos[0].held);
  EXPECT_TRUE(infos[1].held);
  EXPECT_EQ(t->held_size(), 0u);
  ev = test::read_sse(out);
  ASSERT_EQ(ev.size(), 2u) << out;
  EXPECT_NE(ev[0].data.find(R"("model":"claude")"), std::string::npos) << ev[0].data;
}

// A comment between message_start and its pings (a proxy's keep-alive) is no event either: the
// ping after it is still held, so an error after them is the stream's first counted event.
TEST(MessagesClient, PassthroughCommentAfterMessageStartKeepsHolding) {
  const auto* c = messages_codec_instance();
  auto t = c->new_translator(input("/v1/messages"), api::anthropic, "claude");
  std::vector<event_info> infos;
  std::string out;
  ob::proxy::sse::framer f;
  auto on = [&](const ob::proxy::sse::event& ev) { infos.push_back(t->translate_event(ev, out)); };
  f.feed(test::sse("message_start",
                   R"({"type":"message_start","message":{"id":"m","model":"claude-sonnet-4"}})") +
             ": keep-alive\n\n" + test::sse("ping", R"({"type": "ping"})"),
         on);
  ASSERT_EQ(infos.size(), 3u);
  for (const auto& i : infos) EXPECT_TRUE(i.held);
  EXPECT_EQ(out, "");
  f.feed(
      test::sse("error", R"({"type":"error","error":{"type":"overloaded_error","message":"x"}})"),
      on);
  ASSERT_EQ(infos.size(), 4u);
  EXPECT_FALSE(infos[3].held);
  EXPECT_TRUE(infos[3].error);
  EXPECT_NE(out.find(": keep-alive"), std::string::npos) << out;
}

// An OpenAI-dialect target's keep-alive comments (OpenRouter's through a long prefill) reach
// the client, in the exchange's payload, as client bytes the stream hold may release; they
// are no data event, so the first chunk still decides failover.
TEST(MessagesClient, TranslatedCommentsAreKeepAlivesNotEvents) {
  const auto* c = messages_codec_instance();
  auto t = c->new_translator(input("/v1/messages"), api::openai, "fast");
  std::vector<event_info> infos;
  std::string out;
  ob::proxy::sse::framer f;
  auto on = [&](const ob::proxy::sse::event& ev) { infos.push_back(t->translate_event(ev, out)); };
  f.feed(": OPENROUTER PROCESSING\n\n\n", on);  // and a blank event
  EXPECT_EQ(out, ": ping\n\n");
  ASSERT_EQ(infos.size(), 2u);
  for (const auto& i : infos) EXPECT_FALSE(i.terminal || i.error || i.held || i.usage.present());
  EXPECT_EQ(t->held_size(), 0u);
  f.feed(R"(data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})"
         "\n\n: OPENROUTER PROCESSING\n\n",
         on);
  EXPECT_NE(out.find("event: message_start\n"), std::string::npos) << out;
  EXPECT_TRUE(out.ends_with("event: ping\ndata: {\"type\": \"ping\"}\n\n")) << out;
}

TEST(MessagesClient, PassthroughBufferedReadsUsageKeepsBytes) {
  const auto* c = messages_codec_instance();
  auto t = c->new_translator(input("/v1/messages"), api::anthropic, "claude");
  std::string answer =
      R"({"id":"m","type":"message","model":"claude-sonnet-4","content":[],"usage":{"input_tokens":5,"output_tokens":7,"cache_creation_input_tokens":2}})";
  std::string out;
  ASSERT_TRUE(t->translate_body(200, answer, out).ok());
  EXPECT_EQ(out, answer);  // the exchange rewrites the top-level model
  EXPECT_EQ(t->client_status(529), 529);
  EXPECT_EQ(t->usage().prompt_tokens, 7);
  EXPECT_EQ(t->usage().completion_tokens, 7);
}

TEST(MessagesClient, OpenAIStreamBecomesMessagesEvents) {
  const auto* c = messages_codec_instance();
  auto t = c->new_translator(input("/v1/messages"), api::openai, "claude");
  std::string chunk = R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o",)";
  std::string up =
      "data: " + chunk + R"("choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})" +
      "\n\n" + "data: " + chunk + R"("choices":[{"index":0,"delta":{"content":"Hi"}}]})" + "\n\n" +
      "data: " + chunk + R"("choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})" + "\n\n" +
      "data: " + chunk +
      R"("choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}})" +
      "\n\ndata: [DONE]\n\n";
  event_info last;
  int terminals = 0;
  std::string out = feed(*t, up, &last, &terminals);
  auto ev = test::read_sse(out);
  ASSERT_GE(ev.size(), 4u) << out;
  EXPECT_EQ(ev.front().name, "message_start");
  EXPECT_NE(ev.front().data.find(R"("model":"claude")"), std::string::npos) << ev.front().data;
  EXPECT_EQ(ev.back().name, "message_stop");
  EXPECT_EQ(ev[ev.size() - 2].name, "message_delta");
  EXPECT_NE(ev[ev.size() - 2].data.find(R"("output_tokens":12)"), std::string::npos);
  EXPECT_TRUE(last.terminal);
  EXPECT_EQ(terminals, 1);
  EXPECT_EQ(t->usage().completion_tokens, 12);
}

TEST(MessagesClient, OpenAIErrorAnswerKeepsStatusInAnthropicShape) {
  const auto* c = messages_codec_instance();
  auto t = c->new_translator(input("/v1/messages"), api::openai, "claude");
  std::string out;
  ASSERT_TRUE(t->translate_body(
                   500,
                   R"({"error":{"message":"boom","type":"server_error","param":null,"code":null}})",
                   out)
                  .ok());
  EXPECT_EQ(t->client_status(500), 500);
  EXPECT_NE(out.find(R"("type":"error")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("api_error")"), std::string::npos) << out;

  std::string broken;
  EXPECT_EQ(t->translate_body(200, "not json", broken).status, codec_status::bad_answer);
}

TEST(MessagesClient, GatewayErrorsInAnthropicShape) {
  const auto* c = messages_codec_instance();
  struct row {
    int status;
    std::string_view type;
  };
  for (auto [status, type] :
       {row{400, "invalid_request_error"}, row{401, "authentication_error"},
        row{403, "permission_error"}, row{404, "not_found_error"},
        row{413, "invalid_request_error"}, row{429, "rate_limit_error"}, row{500, "api_error"},
        row{502, "api_error"}, row{503, "overloaded_error"}, row{504, "api_error"}}) {
    std::string out;
    c->append_error_body(out, status, "why \"quoted\"");
    EXPECT_EQ(out, R"({"type":"error","error":{"type":")" + std::string(type) +
                       R"(","message":"why \"quoted\""}})")
        << status;
  }
  std::string ev;
  c->append_error_event(ev, 502, "broke");
  EXPECT_EQ(ev,
            "event: error\ndata: "
            R"({"type":"error","error":{"type":"api_error","message":"broke"}})"
            "\n\n");
}

}  // namespace
}  // namespace ob::dialect::anthropic
