// The Anthropic codec behind the dialect interface (dialect/codec.hpp). Built once that
// interface is in the tree (see src/dialect/anthropic/codec.cpp).
#if __has_include("dialect/codec.hpp")

#include "dialect/anthropic/codec.hpp"

#include <gtest/gtest.h>

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

  in.body = R"({"model":"fast","messages":[],"temperature":1.7})";
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
      R"({"model":"fast","messages":[],"stream":true,"stream_options":{"include_usage":true}})";
  in.model = "claude";
  auto t = c->new_translator(in, true);
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
  f.feed(up,
         [&](const ob::proxy::sse::event& ev) { EXPECT_TRUE(t->translate_event(ev, out).ok()); });
  t->finish(out);
  EXPECT_TRUE(out.ends_with("data: [DONE]\n\n"));
  EXPECT_NE(out.find(R"("choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2)"),
            std::string::npos)
      << out;
  EXPECT_EQ(t->usage().prompt_tokens, 3);
  EXPECT_EQ(t->usage().completion_tokens, 2);

  auto b = c->new_translator(in, false);
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

}  // namespace
}  // namespace ob::dialect::anthropic

#endif
