// The stream_shape shortcut must never change what rewrite_event produces: every stream below
// is rewritten with and without a shape and the outputs and event_info must be identical.
#include <gtest/gtest.h>

#include <random>

#include "proxy/sse/rewrite.hpp"
#include "scan_variants.hpp"
#include "streams.hpp"

namespace ob::proxy::sse {
namespace {

struct result {
  std::string out;
  std::vector<event_info> infos;
  std::vector<std::string> events;  // each event's output
};

result rewrite_all(std::string_view input, bool with_shape, int* skipped = nullptr) {
  json::model_finder finder;
  framer f;
  stream_shape shape;
  result r;
  auto on_event = [&](const event& ev) {
    auto before = r.out.size();
    r.infos.push_back(rewrite_event(ev, finder, "\"grp\"", r.out, with_shape ? &shape : nullptr));
    r.events.push_back(r.out.substr(before));
  };
  f.feed(input, on_event);
  f.finish(on_event);
  if (skipped) *skipped = 0;
  return r;
}

void expect_same(std::string_view input, const char* what) {
  auto plain = rewrite_all(input, false);
  auto shaped = rewrite_all(input, true);
  ASSERT_EQ(plain.out, shaped.out) << what;
  ASSERT_EQ(plain.infos.size(), shaped.infos.size()) << what;
  for (std::size_t i = 0; i < plain.infos.size(); ++i) {
    const auto& a = plain.infos[i];
    const auto& b = shaped.infos[i];
    EXPECT_EQ(a.done, b.done) << what << " event " << i;
    EXPECT_EQ(a.terminal, b.terminal) << what << " event " << i;
    EXPECT_EQ(a.error, b.error) << what << " event " << i;
    EXPECT_EQ(a.usage.prompt_tokens, b.usage.prompt_tokens) << what << " event " << i;
    EXPECT_EQ(a.usage.completion_tokens, b.usage.completion_tokens) << what << " event " << i;
    EXPECT_EQ(a.usage.total_tokens, b.usage.total_tokens) << what << " event " << i;
  }
}

std::string chunk(std::string_view tail) {
  return "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
         "\"model\":\"real\"" +
         std::string(tail) + "}\n\n";
}

// Every test runs with each variant of the byte scan behind the shape check.
class RewriteShape : public test::scan_variants {};

INSTANTIATE_TEST_SUITE_P(Scans, RewriteShape, test::every_scan(), test::scan_name);

TEST_P(RewriteShape, RecordedStreamsAreIdentical) {
  expect_same(test::chat_stream(), "chat");
  expect_same(test::responses_stream(), "responses");
  expect_same(test::crlf_stream(), "crlf");
  expect_same(test::cr_stream(), "cr");
  expect_same(test::keepalive_stream(), "keepalive");
  expect_same(test::multiline_stream(), "multiline");
  expect_same(test::unterminated_stream(), "unterminated");
  expect_same(test::mixed_endings_stream(), "mixed");
}

TEST_P(RewriteShape, KeysAfterThePrefixForceTheParse) {
  std::string s = chunk(",\"choices\":[]");
  s += chunk(",\"choices\":[],\"usage\":null");  // null usage: same shape
  s += chunk(",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}");
  s += chunk(",\"error\":null");
  s += chunk(",\"error\":{\"message\":\"boom\"}");
  s += chunk(",\"type\":\"error\"");
  s += chunk(",\"model\":\"second\"");  // duplicate top-level model: both rewritten
  s += chunk(",\"mod\\u0065l\":\"escaped\"");
  s += chunk(",\"response\":{\"model\":\"nested\"}");
  s += chunk(",\"choices\":[{\"delta\":{\"content\":\"a \\\"model\\\" word\"}}]");
  s += chunk(",\"x\":\"model\"");  // a value that reads like a key: parse anyway, same result
  s += "data: "
       "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"other\"}\n\n";
  s +=
      "data: "
      "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"real\"\n\n";  // cut
  s += "data: [DONE]\n\n";
  expect_same(s, "adversarial");
  auto shaped = rewrite_all(s, true);
  EXPECT_EQ(shaped.infos[2].usage.prompt_tokens, 3);
  EXPECT_TRUE(shaped.infos[4].error);
  EXPECT_TRUE(shaped.infos[5].terminal);
  EXPECT_NE(shaped.out.find("\"model\":\"grp\",\"model\":\"grp\""), std::string::npos);
}

// The shape check tests 16 bytes at a time: a key that matters must be caught wherever it
// falls relative to those blocks (first byte, last byte, straddling two blocks, in the
// overlapping last block). The pad moves each key through every alignment.
TEST_P(RewriteShape, KeysAtEveryAlignmentForceTheParse) {
  const std::string keys[] = {
      ",\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}",
      ",\"error\":{\"message\":\"boom\"}",
      ",\"type\":\"error\"",
      ",\"model\":\"second\"",
      ",\"model\":\"x\"",  // short keys end an event inside its last 16 bytes
      ",\"error\":1",
      ",\"mod\\u0065l\":\"escaped\"",
      ",\"response\":{\"model\":\"nested\"}"};
  for (const auto& key : keys) {
    for (std::size_t pad = 0; pad < 40; ++pad) {
      std::string s = chunk(",\"choices\":[]");  // the shape
      s += chunk(",\"p\":\"" + std::string(pad, 'x') + "\"" + key);
      s += chunk(key + ",\"p\":\"" + std::string(pad, 'x') + "\"");
      s += "data: [DONE]\n\n";
      const std::string what = key + " pad " + std::to_string(pad);
      expect_same(s, what.c_str());
      auto shaped = rewrite_all(s, true);
      auto plain = rewrite_all(s, false);
      ASSERT_EQ(shaped.events, plain.events) << what;
    }
  }
}

TEST_P(RewriteShape, SeededMutationsAreIdentical) {
  std::mt19937 rng(20261127);
  const std::string base = test::chat_stream() + test::responses_stream();
  const std::string alphabet = "{}[]\":,\\u0 \nmodelusagerrortyperesponsenull";
  for (int round = 0; round < 3000; ++round) {
    std::string s = base;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      std::size_t pos = rng() % s.size();
      switch (rng() % 3) {
        case 0:
          s[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          s.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
        default:
          s.erase(pos, 1 + rng() % 8);
          break;
      }
      if (s.empty()) s = base;
    }
    auto plain = rewrite_all(s, false);
    auto shaped = rewrite_all(s, true);
    ASSERT_EQ(plain.infos.size(), shaped.infos.size()) << "round " << round;
    for (std::size_t i = 0; i < plain.infos.size(); ++i) {
      ASSERT_EQ(plain.infos[i].terminal, shaped.infos[i].terminal) << "round " << round;
      ASSERT_EQ(plain.infos[i].error, shaped.infos[i].error) << "round " << round;
      ASSERT_EQ(plain.infos[i].usage.total_tokens, shaped.infos[i].usage.total_tokens);
    }
    // The one allowed difference, per event: an event whose JSON breaks after its model value
    // is passed through unchanged by the parse but still gets the model rewritten by the shape
    // path (the client never sees the real model). Nothing else may differ.
    for (std::size_t i = 0; i < plain.events.size(); ++i) {
      if (plain.events[i] == shaped.events[i]) continue;
      auto normalized = test::replace_all(plain.events[i], "\"model\":\"gpt-4o-mini-2024-07-18\"",
                                          "\"model\":\"grp\"");
      ASSERT_EQ(normalized, shaped.events[i]) << "round " << round << " event " << i;
    }
  }
}

}  // namespace
}  // namespace ob::proxy::sse
