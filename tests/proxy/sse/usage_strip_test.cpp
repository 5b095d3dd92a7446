// Removing the usage-only chunk the gateway caused by injecting include_usage: for recorded-style
// streams cut at every byte and at random, the client output of the inject+strip path must equal,
// byte for byte, the output for the same stream without the usage chunk, and the usage must
// still be read.
#include <gtest/gtest.h>

#include <random>

#include "proxy/sse/rewrite.hpp"
#include "streams.hpp"

namespace ob::proxy::sse {
namespace {

using test::chat_chunk;
using test::replace_all;

const std::string usage_chunk =
    "data: {\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":\"chat.completion."
    "chunk\",\"created\":1741569952,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],"
    "\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":10,\"total_tokens\":29,"
    "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":"
    "{\"reasoning_tokens\":0}}}\n\n";

// A stream as a list of events; `injected` marks the events that exist only because of the
// injection (the client must not see them).
struct piece {
  std::string bytes;
  bool injected = false;
};

struct stream_case {
  const char* name;
  std::vector<piece> pieces;
  std::int64_t prompt = -1, completion = -1;  // the usage the gateway must read
  std::string upstream() const {
    std::string s;
    for (const auto& p : pieces) s += p.bytes;
    return s;
  }
  std::string without_injection() const {
    std::string s;
    for (const auto& p : pieces)
      if (!p.injected) s += p.bytes;
    return s;
  }
};

std::vector<piece> openai_chat(bool usage_null_everywhere) {
  auto chunk = [&](std::string_view delta, std::string_view finish) {
    std::string c = chat_chunk(delta, finish);
    if (usage_null_everywhere) c = replace_all(c, "}]}\n\n", "}],\"usage\":null}\n\n");
    return piece{c};
  };
  std::vector<piece> v{chunk(R"({"role":"assistant","content":"","refusal":null})", "null")};
  for (const char* w : {"Hello", "!", " How", " can", " I", " help?"})
    v.push_back(chunk(std::string(R"({"content":")") + w + "\"}", "null"));
  v.push_back(chunk("{}", "\"stop\""));
  v.push_back(piece{usage_chunk, true});
  v.push_back(piece{"data: [DONE]\n\n"});
  return v;
}

std::vector<piece> line_endings(std::vector<piece> v, std::string_view eol) {
  for (auto& p : v) p.bytes = replace_all(p.bytes, "\n", eol);
  return v;
}

std::vector<piece> with_comments(std::vector<piece> v) {
  std::vector<piece> out;
  for (auto& p : v) {
    out.push_back(piece{": ping\n\n"});
    out.push_back(p);
  }
  out.push_back(piece{": bye\n\n"});
  return out;
}

std::vector<piece> completions_stream() {
  const std::string head =
      R"(data: {"id":"cmpl-9","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct",)";
  return {{head + R"("choices":[{"text":"Hi","index":0,"logprobs":null,"finish_reason":null}]})"
                  "\n\n"},
          {head + R"("choices":[{"text":"!","index":0,"logprobs":null,"finish_reason":"stop"}]})"
                  "\n\n"},
          {head + R"("choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,)"
                  R"("total_tokens":5}})"
                  "\n\n",
           true},
          {"data: [DONE]\n\n"}};
}

std::vector<stream_case> cases() {
  std::vector<stream_case> v;
  v.push_back({"openai", openai_chat(false), 19, 10});
  v.push_back({"usage null on every chunk", openai_chat(true), 19, 10});
  v.push_back({"crlf", line_endings(openai_chat(false), "\r\n"), 19, 10});
  v.push_back({"cr", line_endings(openai_chat(true), "\r"), 19, 10});
  v.push_back({"comments", with_comments(openai_chat(false)), 19, 10});
  v.push_back({"crlf comments", line_endings(with_comments(openai_chat(true)), "\r\n"), 19, 10});
  v.push_back({"completions", completions_stream(), 3, 2});
  v.push_back({"two usage chunks, crlf",
               line_endings({{chat_chunk(R"({"content":"a"})", "null")},
                             {usage_chunk, true},
                             {usage_chunk, true},
                             {"data: [DONE]\n\n"}},
                            "\r\n"),
               19, 10});
  // Kept: usage on the last content chunk (choices not empty), and an empty-choices chunk
  // without usage (Azure's prompt_filter_results).
  v.push_back({"usage on a content chunk",
               {{chat_chunk(R"({"content":"a"})", "null")},
                {replace_all(chat_chunk("{}", "\"stop\""), "}]}\n\n",
                             "}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1}}\n\n")},
                {"data: [DONE]\n\n"}},
               4,
               1});
  v.push_back({"empty choices without usage",
               {{R"(data: {"choices":[],"created":0,"id":"","model":"","object":"",)"
                 R"("prompt_filter_results":[{"prompt_index":0}]})"
                 "\n\n"},
                {chat_chunk(R"({"content":"a"})", "null")},
                {usage_chunk, true},
                {"data: [DONE]\n\n"}},
               19,
               10});
  return v;
}

struct run_result {
  std::string out;
  std::int64_t prompt = -1, completion = -1;
  int dropped = 0;
};

run_result run(std::string_view input, const std::vector<std::size_t>& cuts, bool strip_on,
               bool with_shape) {
  json::model_finder finder;
  framer f;
  stream_shape shape;
  usage_strip strip;
  strip.reset(strip_on);
  run_result r;
  auto on_event = [&](const event& ev) {
    event_info info =
        rewrite_event(ev, finder, "\"grp\"", r.out, with_shape ? &shape : nullptr, &strip);
    if (info.usage.present()) r.prompt = info.usage.prompt_tokens;
    if (info.usage.present()) r.completion = info.usage.completion_tokens;
    r.dropped += info.dropped;
  };
  std::size_t pos = 0;
  for (std::size_t c : cuts) {
    const std::string part(input.substr(pos, c - pos));  // own allocation: ASan sees stale views
    f.feed(part, on_event);
    pos = c;
  }
  const std::string last(input.substr(pos));
  f.feed(last, on_event);
  f.finish(on_event);
  return r;
}

int injected_count(const stream_case& c) {
  int n = 0;
  for (const auto& p : c.pieces) n += p.injected;
  return n;
}

void check(const stream_case& c, const std::vector<std::size_t>& cuts, bool with_shape) {
  const std::string input = c.upstream();
  const run_result expected = run(c.without_injection(), {}, false, with_shape);
  const run_result got = run(input, cuts, true, with_shape);
  ASSERT_EQ(got.out, expected.out);
  EXPECT_EQ(got.prompt, c.prompt);
  EXPECT_EQ(got.completion, c.completion);
  EXPECT_EQ(got.dropped, injected_count(c));
}

TEST(usage_strip, EveryCutPosition) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    const std::string input = c.upstream();
    for (bool shape : {true, false}) {
      check(c, {}, shape);
      for (std::size_t at = 1; at < input.size(); ++at) {
        SCOPED_TRACE(at);
        check(c, {at}, shape);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(usage_strip, RandomSplits) {
  std::mt19937 rng(7);
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    const std::string input = c.upstream();
    for (int i = 0; i < 300; ++i) {
      const auto cuts = test::random_cuts(input.size(), rng, i % 2 ? 4 : 300);
      check(c, cuts, i % 3 != 0);
      if (HasFatalFailure()) return;
    }
  }
}

// A client that asked for usage gets every event unchanged (only the model rewritten).
TEST(usage_strip, DisabledKeepsTheUsageChunk) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    const std::string input = c.upstream();
    const run_result plain = run(input, {}, false, true);
    const run_result no_strip_state = [&] {
      json::model_finder finder;
      framer f;
      stream_shape shape;
      run_result r;
      f.feed(input, [&](const event& ev) { rewrite_event(ev, finder, "\"grp\"", r.out, &shape); });
      f.finish([&](const event& ev) { rewrite_event(ev, finder, "\"grp\"", r.out, &shape); });
      return r;
    }();
    EXPECT_EQ(plain.out, no_strip_state.out);
    EXPECT_EQ(plain.dropped, 0);
    EXPECT_EQ(plain.prompt, c.prompt);
    if (injected_count(c) > 0) {
      EXPECT_NE(plain.out.find("\"choices\":[]"), std::string::npos);
    }
  }
}

// The shape fast path must never swallow the usage chunk: its prefix (up to the model value)
// is byte-identical to the content chunks' before it.
TEST(usage_strip, ShapeFastPathNeverSkipsTheUsageChunk) {
  json::model_finder finder;
  framer f;
  stream_shape shape;
  usage_strip strip;
  strip.reset(true);
  std::string out;
  std::vector<event_info> infos;
  const std::string input = stream_case{"openai", openai_chat(false)}.upstream();
  const std::size_t usage_at = input.find(usage_chunk);
  auto on_event = [&](const event& ev) {
    infos.push_back(rewrite_event(ev, finder, "\"grp\"", out, &shape, &strip));
  };
  f.feed(input.substr(0, usage_at), on_event);
  ASSERT_FALSE(shape.prefix.empty());  // the fast path is armed for the next chunk
  ASSERT_EQ(usage_chunk.compare(0, shape.prefix.size() + 6, "data: " + shape.prefix), 0);
  f.feed(input.substr(usage_at), on_event);
  ASSERT_EQ(infos.size(), 10u);
  EXPECT_TRUE(infos[8].dropped);
  EXPECT_EQ(infos[8].usage.total_tokens, 29);
  EXPECT_TRUE(infos[9].done);
  EXPECT_EQ(out.find("usage"), std::string::npos);
  // The same usage chunk with blanks in odd places, or its key escaped, is still seen.
  for (std::string variant : {replace_all(usage_chunk, "\"usage\":", "\"usage\" : "),
                              replace_all(usage_chunk, "\"usage\":", "\"\\u0075sage\":"),
                              replace_all(usage_chunk, "\"choices\":[]", "\"choices\":[ ]")}) {
    SCOPED_TRACE(variant);
    out.clear();
    f.feed(chat_chunk(R"({"content":"a"})", "null") + variant,
           [&](const event& ev) { rewrite_event(ev, finder, "\"grp\"", out, &shape, &strip); });
    EXPECT_EQ(out, replace_all(chat_chunk(R"({"content":"a"})", "null"),
                               "\"gpt-4o-mini-2024-07-18\"", "\"grp\""));
  }
}

}  // namespace
}  // namespace ob::proxy::sse
