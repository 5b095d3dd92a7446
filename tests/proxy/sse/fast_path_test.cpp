// claim_plain_events (the fast path for plain same-shape events) must never change what the
// relay produces: generated streams are fp_relayed in random splits with the fast path on and off
// and the bytes out, each event's report and the data event count must be identical.
#include <gtest/gtest.h>

#include <random>

#include "proxy/sse/rewrite.hpp"
#include "scan_variants.hpp"
#include "streams.hpp"

namespace ob::proxy::sse {
namespace {

struct fp_relayed {
  std::string out;
  std::vector<event_info> reports;  // one per event, in order (a claimed event reports nothing)
  int data_events = 0;
  int claimed = 0;
};

// What the exchange does for a pass-through stream (exchange::on_stream_bytes).
fp_relayed fp_relay(std::string_view input, const std::vector<std::size_t>& cuts,
                    bool strip_usage) {
  json::model_finder finder;
  framer f;
  stream_shape shape;
  usage_strip strip;
  strip.reset(strip_usage);
  fp_relayed r;
  auto on_event = [&](const event& ev) {
    r.reports.push_back(rewrite_event(ev, finder, "\"grp\"", r.out, &shape, &strip));
    if (ev.has_data) ++r.data_events;
  };
  auto claim = [&](std::string_view rest) {
    const int before = r.data_events;
    const std::size_t n = claim_plain_events(rest, shape, &strip, "\"grp\"", r.out, r.data_events);
    r.claimed += r.data_events - before;
    r.reports.resize(r.reports.size() + static_cast<std::size_t>(r.data_events - before));
    return n;
  };
  std::size_t pos = 0;
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    const std::size_t end = i < cuts.size() ? cuts[i] : input.size();
    const std::string piece(input.substr(pos, end - pos));  // its own allocation (ASan)
    f.feed(piece, on_event, claim);
    pos = end;
  }
  f.finish(on_event);
  return r;
}

std::string fp_content(std::mt19937& rng) {
  static const char* const words[] = {"hello",
                                      " ",
                                      "model",
                                      "usage",
                                      "error",
                                      "type",
                                      "response",
                                      "\\\"",
                                      "\\\\",
                                      "\\n",
                                      "\\r",
                                      "\\t",
                                      "\\u00e9",
                                      "\\u006dodel",
                                      "\\u0022",
                                      "\xC3\xA9",
                                      "\\\"model\\\":\\\"x\\\"",
                                      "\\\"usage\\\":{",
                                      "\\\"error\\\":null",
                                      "data: ",
                                      "}",
                                      "{",
                                      ",",
                                      "\\\"type\\\""};
  std::uniform_int_distribution<int> n(0, 12), w(0, std::size(words) - 1);
  std::string s;
  for (int i = n(rng); i > 0; --i) s += words[w(rng)];
  return s;
}

std::string fp_chunk(std::string_view model, std::string_view delta, std::string_view tail) {
  return R"({"id":"chatcmpl-7","object":"chat.completion.chunk","created":1741569952,"model":")" +
         std::string(model) + R"(","choices":[{"index":0,"delta":)" + std::string(delta) +
         R"(,"finish_reason":null}])" + std::string(tail) + "}";
}

// One event, its lines ended by `eol`.
std::string fp_event(std::mt19937& rng, std::string_view eol) {
  const auto data = [&](std::string_view json) {
    return "data: " + std::string(json) + std::string(eol) + std::string(eol);
  };
  const std::string content = R"({"content":")" + fp_content(rng) + "\"}";
  switch (std::uniform_int_distribution<int>(0, 29)(rng)) {
    case 0:
      return data("[DONE]");
    case 1:
      return ": ping" + std::string(eol) + std::string(eol);
    case 2:
      return "event: message" + std::string(eol) + "id: 7" + std::string(eol) +
             data(fp_chunk("gpt-4o", content, ""));
    case 3:  // one chunk over two data lines
      return R"(data: {"id":"chatcmpl-7","object":"chat.completion.chunk",)" + std::string(eol) +
             data(R"("created":1741569952,"model":"gpt-4o","choices":[]})");
    case 4:  // a usage-only chunk
      return data(
          R"({"id":"chatcmpl-7","object":"chat.completion.chunk","created":1741569952,)"
          R"("model":"gpt-4o","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,)"
          R"("total_tokens":8}})");
    case 5:
      return data(fp_chunk("gpt-4o", content, R"(,"usage":null)"));
    case 6:
      return data(fp_chunk("gpt-4o", content,
                           R"(,"usage":{"prompt_tokens":1,"completion_tokens":2,)"
                           R"("total_tokens":3})"));
    case 7:
      return data(R"({"error":{"message":"overloaded","type":"server_error"}})");
    case 8:
      return data(fp_chunk("other-model", content, ""));
    case 9:  // a model on a second data line, then bytes that only look like that event
      return R"(data: {"id":"x",)" + std::string(eol) + data(R"("model":"m","choices":[]})") +
             R"(data: {"id":"x",)" + "\n" + R"("model":"m","choices":[]})" + "\n\n";
    case 10:
      return "data:" + fp_chunk("gpt-4o", content, "") + std::string(eol) + std::string(eol);
    case 11:
      return "data: " + fp_chunk("gpt-4o", content, "") + std::string(eol);  // no blank line yet
    case 13:  // two top-level models (the last one wins in a parse)
      return data(R"({"id":"chatcmpl-7","model":"gpt-4o","model":"x","choices":[{"delta":)" +
                  content + "}]}") +
             data(R"({"id":"chatcmpl-7","model":"gpt-4o","model":"x","choices":[]})");
    case 12:
      return "retry: 10" + std::string(eol) + data(fp_chunk("gpt-4o", content, ""));
    default:
      return data(fp_chunk("gpt-4o", content, ""));
  }
}

std::string fp_stream(std::mt19937& rng) {
  std::string s;
  if (rng() % 8 == 0) s += "\xEF\xBB\xBF";
  const int mode = static_cast<int>(rng() % 4);  // LF, CRLF, CR, mixed
  static const std::string_view eols[] = {"\n", "\r\n", "\r"};
  const int events = 1 + static_cast<int>(rng() % 30);
  for (int i = 0; i < events; ++i) {
    const std::string_view eol =
        mode < 3 ? eols[mode] : (rng() % 6 == 0 ? eols[1 + rng() % 2] : eols[0]);
    s += fp_event(rng, eol);
  }
  if (rng() % 3 == 0) s += "data: [DONE]\n\n";
  if (rng() % 5 == 0) s += "data: {\"model\":\"gpt-4o\"";  // cut by end of stream
  return s;
}

void fp_expect_same(const fp_relayed& a, const fp_relayed& b, const std::string& what) {
  ASSERT_EQ(a.out, b.out) << what;
  ASSERT_EQ(a.data_events, b.data_events) << what;
  ASSERT_EQ(a.reports.size(), b.reports.size()) << what;
  for (std::size_t i = 0; i < a.reports.size(); ++i) {
    const auto& x = a.reports[i];
    const auto& y = b.reports[i];
    ASSERT_EQ(x.done, y.done) << what << " event " << i;
    ASSERT_EQ(x.terminal, y.terminal) << what << " event " << i;
    ASSERT_EQ(x.error, y.error) << what << " event " << i;
    ASSERT_EQ(x.dropped, y.dropped) << what << " event " << i;
    ASSERT_EQ(x.usage.prompt_tokens, y.usage.prompt_tokens) << what << " event " << i;
    ASSERT_EQ(x.usage.completion_tokens, y.usage.completion_tokens) << what << " event " << i;
    ASSERT_EQ(x.usage.total_tokens, y.usage.total_tokens) << what << " event " << i;
  }
}

// Each test runs with each variant of the byte scan; the fast path is switched back on after.
class FastPath : public test::scan_variants {
 protected:
  void TearDown() override {
    test::scan_variants::TearDown();
    detail::use_fast_path(true);
  }
};

INSTANTIATE_TEST_SUITE_P(Scans, FastPath, test::every_scan(), test::scan_name);

void fp_check(std::string_view input, const std::vector<std::size_t>& cuts, bool strip,
              const std::string& what, int* claimed) {
  detail::use_fast_path(false);
  const fp_relayed general = fp_relay(input, cuts, strip);
  detail::use_fast_path(true);
  const fp_relayed fast = fp_relay(input, cuts, strip);
  ASSERT_EQ(general.claimed, 0) << what;
  fp_expect_same(general, fast, what);
  *claimed += fast.claimed;
}

TEST_P(FastPath, GeneratedStreamsRelayIdentically) {
  std::mt19937 rng(20261130);
  int claimed = 0;
  for (int n = 0; n < 1000; ++n) {
    const std::string input = fp_stream(rng);
    for (int split = 0; split < 4; ++split) {
      std::vector<std::size_t> cuts;
      if (split == 1) {
        for (std::size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
      } else if (split > 1) {
        cuts = test::random_cuts(input.size(), rng, split == 2 ? 40 : 700);
      }
      for (bool strip : {false, true}) {
        fp_check(input, cuts, strip,
                 "stream " + std::to_string(n) + " split " + std::to_string(split) + " strip " +
                     std::to_string(strip) + ": " + input,
                 &claimed);
        if (HasFatalFailure()) return;
      }
    }
  }
  EXPECT_GT(claimed, 4000);  // the fast path did run
}

TEST_P(FastPath, RecordedStreamsRelayIdentically) {
  const std::string streams[] = {
      test::chat_stream(),          test::crlf_stream(),      test::cr_stream(),
      test::keepalive_stream(),     test::multiline_stream(), test::unterminated_stream(),
      test::mixed_endings_stream(), test::responses_stream()};
  std::mt19937 rng(7);
  int claimed = 0;
  for (const auto& input : streams) {
    for (int split = 0; split < 20; ++split) {
      const auto cuts = split == 0 ? std::vector<std::size_t>{}
                                   : test::random_cuts(input.size(), rng, 1 + split * 20);
      for (bool strip : {false, true}) {
        fp_check(input, cuts, strip, input, &claimed);
        if (HasFatalFailure()) return;
      }
    }
  }
  EXPECT_GT(claimed, 0);
}

// The common case, spelled out: after the first chunk, every chunk of one shape is claimed,
// and what comes out is the stream with each model replaced.
TEST_P(FastPath, ClaimsEveryChunkAfterTheFirst) {
  const std::string input = test::chat_stream();
  const fp_relayed r = fp_relay(input, {}, true);
  EXPECT_EQ(r.claimed, 9);  // 8 content chunks and the finish chunk; not the usage chunk
  std::string expected = test::replace_all(input, "\"gpt-4o-mini-2024-07-18\"", "\"grp\"");
  const std::size_t usage = expected.rfind("data: ", expected.find("\"usage\":{"));
  expected.erase(usage, expected.find("\n\n", usage) + 2 - usage);  // removed by usage_strip
  EXPECT_EQ(r.out, expected);
  EXPECT_EQ(r.data_events, 12);
}

}  // namespace
}  // namespace ob::proxy::sse
