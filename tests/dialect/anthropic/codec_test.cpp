// The Anthropic codec behind the dialect interface (dialect/codec.hpp). Built once that
// interface is in the tree (see src/dialect/anthropic/codec.cpp).
#if __has_include("dialect/codec.hpp")

#include "dialect/anthropic/codec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "helpers.hpp"

namespace ob::dialect::anthropic {
namespace {

TEST(AnthropicCodec, EncodesChatRequestsAndRefusesOtherPaths) {
  const codec* c = codec_instance();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->kind(), api::anthropic);
  request_in in;
  in.method = "POST";
  in.target = "/v1/chat/completions?x=1";
  in.body = R"({"model":"fast","messages":[{"role":"user","content":"Hi"}],"stream":true})";
  in.model = "claude-sonnet-4-5";
  request_out out;
  ASSERT_TRUE(c->encode_request(in, out).ok());
  EXPECT_EQ(out.target, "/v1/messages");
  EXPECT_EQ(out.headers, "");  // anthropic-version is a fixed header of the target
  EXPECT_TRUE(out.stream);
  EXPECT_EQ(
      out.body,
      R"({"model":"claude-sonnet-4-5","max_tokens":4096,"messages":[{"role":"user","content":"Hi"}],"stream":true})");

  in.body = R"({"model":"fast","messages":[{"role":"user","content":"x"}],"temperature":1.7})";
  auto bad = c->encode_request(in, out);
  EXPECT_EQ(bad.status, codec_status::bad_request);
  EXPECT_EQ(bad.param, "temperature");

  in.target = "/v1/embeddings";
  EXPECT_EQ(c->encode_request(in, out).status, codec_status::unsupported);
}

TEST(AnthropicCodec, TranslatesAnswersAndStreams) {
  const codec* c = codec_instance();
  request_in in;
  in.target = "/v1/chat/completions";
  in.body =
      R"({"model":"fast","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}})";
  in.model = "claude";
  auto t = c->new_translator(in, true, "fast");
  std::string out;
  ob::proxy::sse::framer f;
  std::string up =
      test::sse(
          "message_start",
          R"({"type":"message_start","message":{"id":"m","usage":{"input_tokens":3,"output_tokens":1}}})") +
      test::sse(
          "content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})") +
      test::sse(
          "content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})") +
      test::sse(
          "message_delta",
          R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}})") +
      test::sse("message_stop", R"({"type":"message_stop"})");
  // Per upstream event: the client events written and what they mean for the exchange.
  std::vector<event_info> infos;
  f.feed(up,
         [&](const ob::proxy::sse::event& ev) { infos.push_back(t->translate_event(ev, out)); });
  ASSERT_EQ(infos.size(), 5u);
  // -; role (the role chunk waits for the first event after message_start); content; finish;
  // usage chunk + [DONE]
  const int want_events[] = {0, 1, 1, 1, 2};
  int events = 0;
  for (std::size_t i = 0; i < infos.size(); ++i) {
    EXPECT_EQ(infos[i].events, want_events[i]) << i;
    EXPECT_EQ(infos[i].terminal, i == 4) << i;
    EXPECT_FALSE(infos[i].error) << i;
    events += infos[i].events;
  }
  EXPECT_EQ(infos[4].usage.completion_tokens, 2);
  EXPECT_EQ(t->finish(out).events, 0);
  // Whole events, as many as reported, each naming the group (not the target's model).
  std::size_t n = 0, named = 0;
  for (std::size_t at = 0; (at = out.find("data: ", at)) != std::string::npos; at += 6) ++n;
  for (std::size_t at = 0; (at = out.find(R"("model":"fast")", at)) != std::string::npos; ++at)
    ++named;
  EXPECT_EQ(n, static_cast<std::size_t>(events));
  EXPECT_EQ(named, n - 1) << out;  // every chunk but [DONE]
  EXPECT_EQ(out.find("claude"), std::string::npos) << out;
  EXPECT_TRUE(out.ends_with("data: [DONE]\n\n"));
  EXPECT_NE(out.find(R"("choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2)"),
            std::string::npos)
      << out;
  EXPECT_EQ(t->usage().prompt_tokens, 3);
  EXPECT_EQ(t->usage().completion_tokens, 2);

  auto b = c->new_translator(in, false, "fast");
  std::string body;
  EXPECT_TRUE(
      b->translate_body(
           200,
           R"({"type":"message","id":"m","content":[{"type":"text","text":"x"}],"usage":{"input_tokens":1,"output_tokens":1}})",
           body)
          .ok());
  EXPECT_NE(body.find(R"("content":"x")"), std::string::npos);
  EXPECT_EQ(b->usage().total_tokens, 2);
  body.clear();
  EXPECT_EQ(b->translate_body(200, "<html>", body).status, codec_status::bad_answer);
}

// renew_translator resets the previous attempt's translator in place (no allocation) and it
// then writes exactly what a new one writes: nothing of the earlier stream (its id, the block
// list, usage, the end seen, a body's status) carries over; include_usage comes from the
// encoded request.
TEST(AnthropicCodec, RenewedTranslatorIsReusedAndStartsAfresh) {
  const codec* c = codec_instance();
  request_in in;
  in.target = "/v1/chat/completions";
  in.model = "claude";
  auto encode = [&](std::string_view body) {
    in.body = body;
    request_out enc;
    EXPECT_TRUE(c->encode_request(in, enc).ok());
    return enc;
  };
  const std::string first =
      test::sse("message_start",
                R"({"type":"message_start","message":{"id":"m1","usage":{"input_tokens":3}}})") +
      test::sse(
          "content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}})") +
      test::sse(
          "content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}})") +
      test::sse(
          "message_delta",
          R"({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":5}})") +
      test::sse("message_stop", R"({"type":"message_stop"})");
  const std::string second =
      test::sse("message_start",
                R"({"type":"message_start","message":{"id":"m2","usage":{"input_tokens":1}}})") +
      test::sse(
          "content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})") +
      test::sse(
          "content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})") +
      test::sse("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn"}})");
  auto run = [](answer_translator& t, std::string_view up) {
    std::string out;
    ob::proxy::sse::framer f;
    f.feed(up, [&](const ob::proxy::sse::event& ev) { t.translate_event(ev, out); });
    t.finish(out);
    return out;
  };

  request_out with_usage = encode(
      R"({"model":"fast","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_TRUE(with_usage.include_usage);
  std::unique_ptr<answer_translator> t;
  c->renew_translator(t, in, with_usage, true, "fast");
  ASSERT_NE(t, nullptr);
  std::string body;
  t->translate_body(529, R"({"type":"error","error":{"type":"overloaded_error","message":"x"}})",
                    body);
  EXPECT_EQ(t->client_status(529), 503);
  std::string a = run(*t, first);
  EXPECT_EQ(a, run(*c->new_translator(in, true, "fast"), first));
  EXPECT_NE(a.find(R"("usage":{)"), std::string::npos) << a;  // include_usage was asked

  request_out plain =
      encode(R"({"model":"fast","messages":[{"role":"user","content":"x"}],"stream":true})");
  EXPECT_FALSE(plain.include_usage);
  answer_translator* before = t.get();
  c->renew_translator(t, in, plain, true, "other");
  EXPECT_EQ(t.get(), before);  // reused
  EXPECT_EQ(t->client_status(529), 529);
  EXPECT_FALSE(t->usage().present());
  std::string b = run(*t, second);
  EXPECT_EQ(b, run(*c->new_translator(in, true, "other"), second));
  EXPECT_EQ(b.find("m1"), std::string::npos) << b;
  EXPECT_EQ(b.find(R"("usage":{)"), std::string::npos) << b;
  EXPECT_EQ(b.find("[DONE]"), std::string::npos) << b;  // no message_stop in this one
  EXPECT_EQ(t->usage().prompt_tokens, 1);
}

// An error event is reported as such, with the events before it in the same call (the
// exchange fails over only when the first client event of the answer is an error).
TEST(AnthropicCodec, StreamErrorsAreReportedWithTheEventsBeforeThem) {
  const codec* c = codec_instance();
  request_in in;
  in.target = "/v1/chat/completions";
  in.body = R"({"model":"fast","messages":[{"role":"user","content":"x"}],"stream":true})";
  in.model = "claude";
  auto feed = [](answer_translator& t, const std::string& up, std::string& out) {
    std::vector<event_info> infos;
    ob::proxy::sse::framer f;
    f.feed(up,
           [&](const ob::proxy::sse::event& ev) { infos.push_back(t.translate_event(ev, out)); });
    return infos;
  };
  struct row {
    const char* name;
    std::string up;
    int events;  // written by the last upstream event
    const char* first_data;
  };
  const row rows[] = {
      {"error first",
       test::sse("error",
                 R"({"type":"error","error":{"type":"overloaded_error","message":"busy"}})"),
       1, R"(data: {"error")"},
      {"malformed first", test::sse("message_start", "{nope"), 1, R"(data: {"error")"},
      // Anthropic's overloaded_error after accepting the stream: still the first client event
      // (the exchange fails over), the role chunk not written yet.
      {"error after start and a ping",
       test::sse("message_start", R"({"type":"message_start","message":{"id":"m"}})") +
           test::sse("ping", R"({"type":"ping"})") +
           test::sse("error",
                     R"({"type":"error","error":{"type":"overloaded_error","message":"busy"}})"),
       1,
       ": ping\n\n"
       R"(data: {"error")"},  // the ping a comment, no client event
      {"error after the first block",
       test::sse("message_start", R"({"type":"message_start","message":{"id":"m"}})") +
           test::sse(
               "content_block_start",
               R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})") +
           test::sse("error",
                     R"({"type":"error","error":{"type":"overloaded_error","message":"busy"}})"),
       1, R"(data: {"id")"},
  };
  for (const auto& r : rows) {
    auto t = c->new_translator(in, true, "fast");
    std::string out;
    auto infos = feed(*t, r.up, out);
    ASSERT_FALSE(infos.empty()) << r.name;
    const auto& last = infos.back();
    EXPECT_TRUE(last.error) << r.name;
    EXPECT_TRUE(last.terminal) << r.name;
    EXPECT_EQ(last.events, r.events) << r.name;
    EXPECT_TRUE(out.starts_with(r.first_data)) << r.name << ": " << out;
    EXPECT_NE(out.find(R"(data: {"error")"), std::string::npos) << r.name;
    EXPECT_EQ(t->finish(out).events, 0) << r.name;
  }
}

}  // namespace
}  // namespace ob::dialect::anthropic

#endif
