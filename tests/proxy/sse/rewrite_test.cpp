// Per-event model rewrite over whole recorded streams, and event classification.
#include "proxy/sse/rewrite.hpp"

#include <gtest/gtest.h>

#include <random>

#include "streams.hpp"

namespace ob::proxy::sse {
namespace {

constexpr std::string_view group = R"("fast")";

struct rewritten {
  std::string out;
  std::vector<event_info> infos;
};

rewritten rewrite_stream(std::string_view input, const std::vector<std::size_t>& cuts = {}) {
  framer f;
  json::model_finder finder;
  rewritten r;
  auto on_event = [&](const event& ev) {
    r.infos.push_back(rewrite_event(ev, finder, group, r.out));
  };
  std::size_t pos = 0;
  for (std::size_t c : cuts) {
    f.feed(input.substr(pos, c - pos), on_event);
    pos = c;
  }
  f.feed(input.substr(pos), on_event);
  f.finish(on_event);
  return r;
}

rewritten rewrite_text(std::string_view input) {
  return rewrite_stream(input);
}

TEST(rewrite_event, ChatStreamEveryChunkRewritten) {
  const std::string input = test::chat_stream();
  const rewritten r = rewrite_text(input);
  EXPECT_EQ(r.out, test::replace_all(input, R"("gpt-4o-mini-2024-07-18")", group));
  ASSERT_EQ(r.infos.size(), 12u);
  for (std::size_t i = 0; i < 10; ++i) {
    EXPECT_FALSE(r.infos[i].terminal) << i;
    EXPECT_FALSE(r.infos[i].usage.present()) << i;
  }
  EXPECT_EQ(r.infos[10].usage.prompt_tokens, 19);
  EXPECT_EQ(r.infos[10].usage.completion_tokens, 10);
  EXPECT_EQ(r.infos[10].usage.total_tokens, 29);
  EXPECT_FALSE(r.infos[10].terminal);
  EXPECT_TRUE(r.infos[11].done);
  EXPECT_TRUE(r.infos[11].terminal);
  EXPECT_FALSE(r.infos[11].error);
}

TEST(rewrite_event, ResponsesStreamNestedModelRewritten) {
  const std::string input = test::responses_stream(5);
  const rewritten r = rewrite_text(input);
  EXPECT_EQ(r.out, test::replace_all(input, R"("gpt-4.1-2025-04-14")", group));
  ASSERT_EQ(r.infos.size(), 8u);
  for (std::size_t i = 0; i + 1 < r.infos.size(); ++i) EXPECT_FALSE(r.infos[i].terminal);
  const event_info& done = r.infos.back();
  EXPECT_TRUE(done.terminal);
  EXPECT_FALSE(done.done);
  EXPECT_FALSE(done.error);
  EXPECT_EQ(done.usage.prompt_tokens, 36);
  EXPECT_EQ(done.usage.completion_tokens, 87);
  EXPECT_EQ(done.usage.total_tokens, 123);
}

TEST(rewrite_event, CrlfAndCrStreams) {
  const std::string crlf = test::crlf_stream();
  EXPECT_EQ(rewrite_text(crlf).out, test::replace_all(crlf, R"("gpt-4o-mini-2024-07-18")", group));
  const std::string cr = test::cr_stream();
  EXPECT_EQ(rewrite_text(cr).out, test::replace_all(cr, R"("gpt-4.1-2025-04-14")", group));
}

TEST(rewrite_event, OutputIndependentOfSplits) {
  const std::string streams[] = {test::chat_stream(),      test::responses_stream(),
                                 test::crlf_stream(),      test::cr_stream(),
                                 test::multiline_stream(), test::unterminated_stream()};
  std::mt19937 rng(7);
  for (const std::string& input : streams) {
    const std::string want = rewrite_text(input).out;
    for (std::size_t cut = 0; cut <= input.size(); cut += 7)
      ASSERT_EQ(rewrite_stream(input, {cut}).out, want) << cut;
    for (int run = 0; run < 50; ++run)
      ASSERT_EQ(rewrite_stream(input, test::random_cuts(input.size(), rng, 40)).out, want);
  }
}

TEST(rewrite_event, UnchangedEvents) {
  for (const char* input :
       {"data: [DONE]\n\n", "data: hello model\n\n", ": ping\n\n",
        "data: [1,{\"model\":\"x\"}]\n\n", "data: {\"a\":1}\n\n", "data: {\"model\":\"x\"\n\n",
        "event: message\n\n", "\n", "data: {\"model\":null}\n\n",
        "data: {\"choices\":[{\"model\":\"x\"}]}\n\n", "data:\n\n"}) {
    EXPECT_EQ(rewrite_text(input).out, input) << input;
  }
}

// Events with more "model" strings than answer_info::max_models, through the stream shape
// cache as the gateway runs them (the shape copies the spans): the first max_models are
// rewritten in every event, the rest pass through, nothing is written out of bounds.
TEST(rewrite_event, MoreModelKeysThanRoomWithShape) {
  constexpr int room = json::answer_info::max_models;
  std::string models;
  for (int i = 0; i < room + 2; ++i) models += ",\"model\":\"m" + std::to_string(i) + "\"";
  const std::string top = "data: {\"id\":1" + models + ",\"n\":1}\n\n";
  const std::string nested =
      "data: {\"type\":\"response.created\",\"response\":{\"id\":1" + models + "}}\n\n";
  for (const std::string& ev_text : {top, nested}) {
    framer f;
    json::model_finder finder;
    stream_shape shape;
    std::string out;
    auto on_event = [&](const event& ev) { rewrite_event(ev, finder, group, out, &shape); };
    for (int k = 0; k < 3; ++k) f.feed(ev_text, on_event);  // 2nd and 3rd may use the shape
    f.finish(on_event);
    std::string one = ev_text;
    for (int i = room - 1; i >= 0; --i) {
      const std::string m = "\"m" + std::to_string(i) + "\"";
      one.replace(one.find(m), m.size(), group);
    }
    EXPECT_EQ(out, one + one + one) << ev_text;
  }
}

// A final chunk with zero token counts (a cached or empty answer): usage present, all 0.
TEST(rewrite_event, ZeroUsageCounts) {
  const rewritten r = rewrite_text(
      "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":0,"
      "\"completion_tokens\":0,\"total_tokens\":0}}\n\n"
      "data: {\"type\":\"response.completed\",\"response\":{\"model\":\"m\",\"usage\":"
      "{\"input_tokens\":0,\"output_tokens\":0,\"total_tokens\":0}}}\n\n");
  ASSERT_EQ(r.infos.size(), 2u);
  for (const event_info& info : r.infos) {
    EXPECT_TRUE(info.usage.present());
    EXPECT_EQ(info.usage.prompt_tokens, 0);
    EXPECT_EQ(info.usage.completion_tokens, 0);
    EXPECT_EQ(info.usage.total_tokens, 0);
  }
}

TEST(rewrite_event, MultiLineJsonDataSplicedInPlace) {
  const std::string input =
      "id: 7\ndata: {\"id\":1,\r\ndata:\"model\" : \"gpt-4o\",\ndata: \"x\":2,\n"
      "data:   \"usage\":{\"prompt_tokens\":3}}\n\n";
  const rewritten r = rewrite_text(input);
  EXPECT_EQ(r.out, test::replace_all(input, R"("gpt-4o")", group));
  ASSERT_EQ(r.infos.size(), 1u);
  EXPECT_EQ(r.infos[0].usage.prompt_tokens, 3);
}

TEST(rewrite_event, EscapedModelValueAndKey) {
  const rewritten r = rewrite_text("data: {\"mod\\u0065l\":\"a\\\"b\",\"n\":1}\n\n");
  EXPECT_EQ(r.out, "data: {\"mod\\u0065l\":\"fast\",\"n\":1}\n\n");
}

TEST(rewrite_event, TerminalAndErrorDetection) {
  struct row {
    std::string input;
    bool terminal, error;
  };
  const row rows[] = {
      {"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n", true, true},
      {"data: {\"error\":null,\"model\":\"m\"}\n\n", false, false},
      {"event: error\ndata: {\"type\":\"error\",\"code\":\"x\",\"message\":\"m\"}\n\n", true, true},
      {"data: {\"type\":\"error\",\"message\":\"m\"}\n\n", true, true},
      {"event: response.failed\ndata: "
       "{\"type\":\"response.failed\",\"response\":{\"error\":{}}}\n\n",
       true, true},
      {"event: response.incomplete\ndata: {\"type\":\"response.incomplete\"}\n\n", true, false},
      {"event: response.completed\ndata: not json\n\n", true, false},
      {"event: error\n\n", true, true},
      {"data: {\"type\":\"response.output_text.done\"}\n\n", false, false},
      // The last events of streams without [DONE]: transcriptions, images, speech.
      {"data: {\"type\":\"transcript.text.done\",\"text\":\"hi\",\"usage\":{\"type\":"
       "\"tokens\",\"input_tokens\":14,\"output_tokens\":4,\"total_tokens\":18}}\n\n",
       true, false},
      {"data: {\"type\":\"transcript.text.delta\",\"delta\":\"hi\"}\n\n", false, false},
      {"event: image_generation.completed\ndata: {\"type\":\"image_generation.completed\","
       "\"b64_json\":\"AA==\"}\n\n",
       true, false},
      {"data: {\"type\":\"image_generation.partial_image\",\"b64_json\":\"AA==\"}\n\n", false,
       false},
      {"data: {\"type\":\"image_edit.completed\",\"b64_json\":\"AA==\"}\n\n", true, false},
      {"data: {\"type\":\"speech.audio.done\",\"usage\":{\"input_tokens\":5}}\n\n", true, false},
  };
  for (const row& r : rows) {
    const rewritten got = rewrite_text(r.input);
    ASSERT_EQ(got.infos.size(), 1u) << r.input;
    EXPECT_EQ(got.infos[0].terminal, r.terminal) << r.input;
    EXPECT_EQ(got.infos[0].error, r.error) << r.input;
    EXPECT_EQ(got.out, test::replace_all(r.input, R"("model":"m")", R"("model":"fast")"));
  }
}

TEST(rewrite_event, ErrorEventWriterParsesAsJson) {
  const std::pair<std::string, std::string> cases[] = {
      {"upstream closed the connection", ""},
      {"bad \"quote\" \\ and\nnewline\t\x01", "upstream_timeout"},
      {"invalid utf-8 \xff\xfe", "x"},
      {"", ""},
  };
  simdjson::dom::parser p;
  for (const auto& [message, code] : cases) {
    std::string out;
    append_error_event(out, message, "upstream_error", code);
    const rewritten r = rewrite_text(out);
    ASSERT_EQ(r.infos.size(), 1u);
    EXPECT_TRUE(r.infos[0].terminal);
    EXPECT_TRUE(r.infos[0].error);
    EXPECT_EQ(r.out, out);
    ASSERT_EQ(out.substr(0, 6), "data: ");
    ASSERT_EQ(out.substr(out.size() - 2), "\n\n");
    simdjson::dom::element doc;
    ASSERT_EQ(p.parse(out.substr(6, out.size() - 8)).get(doc), simdjson::SUCCESS) << out;
    simdjson::dom::object err;
    ASSERT_EQ(doc["error"].get(err), simdjson::SUCCESS);
    EXPECT_EQ(err.size(), 3u);
    std::string_view m, t;
    ASSERT_EQ(err["message"].get(m), simdjson::SUCCESS);
    if (message.find('\xff') == std::string::npos) {
      EXPECT_EQ(m, message);
    }
    ASSERT_EQ(err["type"].get(t), simdjson::SUCCESS);
    EXPECT_EQ(t, "upstream_error");
    if (code.empty()) {
      EXPECT_TRUE(err["code"].is_null());
    } else {
      std::string_view c;
      ASSERT_EQ(err["code"].get(c), simdjson::SUCCESS);
      EXPECT_EQ(c, code);
    }
  }
}

}  // namespace
}  // namespace ob::proxy::sse
