// SSE framing: semantics per the WHATWG event-stream rules, and split invariance: any way of
// cutting the input into feed() calls gives the same events and the same bytes back.
#include "proxy/sse/framer.hpp"

#include <gtest/gtest.h>

#include <random>

#include "streams.hpp"

namespace ob::proxy::sse {
namespace {

using test::recorded;

std::vector<recorded> whole(std::string_view input) {
  framer f;
  return test::feed_cuts(f, input, {});
}

std::string concat_raw(const std::vector<recorded>& v) {
  std::string s;
  for (const auto& r : v) s += r.raw;
  return s;
}

// Pieces of data found in raw at the places the event says.
void expect_pieces_consistent(const recorded& r) {
  for (const auto& p : r.pieces) {
    ASSERT_LE(p.raw_begin + p.size, r.raw.size());
    ASSERT_LE(p.data_begin + p.size, r.data.size());
    EXPECT_EQ(r.raw.substr(p.raw_begin, p.size), r.data.substr(p.data_begin, p.size));
  }
}

void expect_same_meaning(const std::vector<recorded>& want, const std::vector<recorded>& got,
                         const std::string& what) {
  auto a = test::meaningful(want), b = test::meaningful(got);
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(a[i].same_meaning(b[i])) << what << " event " << i << ": " << b[i].raw;
    expect_pieces_consistent(b[i]);
  }
}

struct named_stream {
  const char* name;
  std::string bytes;
};

std::vector<named_stream> all_streams() {
  return {{"chat", test::chat_stream()},
          {"responses", test::responses_stream()},
          {"crlf", test::crlf_stream()},
          {"cr", test::cr_stream()},
          {"keepalive", test::keepalive_stream()},
          {"multiline", test::multiline_stream()},
          {"unterminated", test::unterminated_stream()},
          {"mixed", test::mixed_endings_stream()}};
}

TEST(framer, EverySingleSplitPointGivesTheSameEventsAndBytes) {
  for (const auto& [name, input] : all_streams()) {
    const auto want = whole(input);
    ASSERT_EQ(concat_raw(want), input) << name;
    framer f;  // reused across runs: finish() resets it
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
      const auto got = test::feed_cuts(f, input, {cut});
      ASSERT_EQ(concat_raw(got), input) << name << " cut " << cut;
      expect_same_meaning(want, got, std::string(name) + " cut " + std::to_string(cut));
      if (HasFailure()) return;
    }
  }
}

TEST(framer, OneBytePieces) {
  for (const auto& [name, input] : all_streams()) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
    framer f;
    const auto got = test::feed_cuts(f, input, cuts);
    EXPECT_EQ(concat_raw(got), input) << name;
    expect_same_meaning(whole(input), got, name);
  }
}

TEST(framer, RandomPieces) {
  std::mt19937 rng(20240611);
  for (const auto& [name, input] : all_streams()) {
    const auto want = whole(input);
    framer f;
    for (int run = 0; run < 200; ++run) {
      const auto cuts = test::random_cuts(input.size(), rng, run % 2 ? 8 : 700);
      const auto got = test::feed_cuts(f, input, cuts);
      ASSERT_EQ(concat_raw(got), input) << name << " run " << run;
      expect_same_meaning(want, got, std::string(name) + " run " + std::to_string(run));
    }
  }
}

TEST(framer, ChatStreamEvents) {
  const auto ev = whole(test::chat_stream());
  ASSERT_EQ(ev.size(), 12u);
  for (std::size_t i = 0; i + 1 < ev.size(); ++i) {
    EXPECT_TRUE(ev[i].has_data);
    EXPECT_EQ(ev[i].data.front(), '{');
    EXPECT_EQ(ev[i].raw, "data: " + ev[i].data + "\n\n");
    EXPECT_TRUE(ev[i].type.empty());
  }
  EXPECT_NE(ev[10].data.find("\"choices\":[]"), std::string::npos);
  EXPECT_EQ(ev[11].data, "[DONE]");
}

TEST(framer, ResponsesStreamEventTypes) {
  const auto ev = whole(test::responses_stream(4));
  ASSERT_EQ(ev.size(), 7u);
  EXPECT_EQ(ev[0].type, "response.created");
  EXPECT_EQ(ev[1].type, "response.in_progress");
  for (int i = 2; i < 6; ++i) EXPECT_EQ(ev[i].type, "response.output_text.delta");
  EXPECT_EQ(ev[6].type, "response.completed");
  EXPECT_NE(ev[6].data.find("\"usage\":{\"input_tokens\":36"), std::string::npos);
}

TEST(framer, CrlfAndCrStreamsMatchLf) {
  const auto lf = whole(test::chat_stream());
  const auto crlf = whole(test::crlf_stream());
  ASSERT_EQ(lf.size(), crlf.size());
  for (std::size_t i = 0; i < lf.size(); ++i) EXPECT_TRUE(lf[i].same_meaning(crlf[i]));
  const auto lf_resp = whole(test::responses_stream(3));
  const auto cr = whole(test::cr_stream());
  ASSERT_EQ(lf_resp.size(), cr.size());
  for (std::size_t i = 0; i < cr.size(); ++i) EXPECT_TRUE(lf_resp[i].same_meaning(cr[i]));
}

TEST(framer, CommentOnlyEventsHaveNoData) {
  const auto ev = whole(test::keepalive_stream());
  ASSERT_EQ(ev.size(), 7u);
  EXPECT_EQ(ev[0].raw, ": ping\n\n");
  EXPECT_FALSE(ev[0].has_data);
  EXPECT_TRUE(ev[1].has_data);
  EXPECT_FALSE(ev[2].has_data);
  EXPECT_EQ(ev[4].raw, ":\n\n");
  EXPECT_EQ(ev[6].raw, ": keep-alive\ndata: [DONE]\n\n");
  EXPECT_EQ(ev[6].data, "[DONE]");
}

TEST(framer, MultiLineDataAndFields) {
  const auto ev = whole(test::multiline_stream());
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].id, "1");
  EXPECT_EQ(ev[0].type, "message");
  EXPECT_EQ(ev[0].data, "{\"model\":\"gpt-4o\",\n\"choices\":[],\n\"x\":1}");
  ASSERT_EQ(ev[0].pieces.size(), 3u);
  EXPECT_EQ(ev[1].data, "first\n\nthird");  // "data" without colon: an empty data line
  EXPECT_EQ(ev[2].data, "a\nb\nc");
  EXPECT_EQ(ev[2].raw, "data: a\r\ndata: b\rdata: c\n\r\n");
  EXPECT_EQ(ev[3].type, "");  // "event" without colon: empty type
  EXPECT_EQ(ev[3].data, " two spaces");
}

TEST(framer, RawOffsetMapsDataIntoRaw) {
  framer f;
  const std::string input = "event: x\ndata: ab\r\ndata:cd\n\n";
  int n = 0;
  f.feed(input, [&](const event& ev) {
    ++n;
    ASSERT_EQ(ev.data, "ab\ncd");
    EXPECT_EQ(ev.raw[ev.raw_offset(0)], 'a');
    EXPECT_EQ(ev.raw[ev.raw_offset(1)], 'b');
    EXPECT_EQ(ev.raw[ev.raw_offset(3)], 'c');
    EXPECT_EQ(ev.raw[ev.raw_offset(4)], 'd');
    EXPECT_EQ(ev.raw_offset(5), ev.raw.find("cd") + 2);  // end of data
  });
  EXPECT_EQ(n, 1);
}

TEST(framer, UnterminatedFinalEventDeliveredByFinish) {
  framer f;
  std::vector<recorded> got;
  f.feed(test::unterminated_stream(), [&](const event& ev) { got.push_back(test::record(ev)); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_GT(f.pending_bytes(), 0u);
  f.finish([&](const event& ev) { got.push_back(test::record(ev)); });
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].data, R"({"model":"m","usage":null})");
  EXPECT_EQ(f.pending_bytes(), 0u);
  int after = 0;
  f.finish([&](const event&) { ++after; });  // nothing left
  EXPECT_EQ(after, 0);
}

// is_comment: what a translated stream turns into its client's keep-alive.
TEST(framer, IsCommentOnCommentOnlyEvents) {
  std::vector<bool> got;
  framer f;
  auto note = [&](const event& ev) { got.push_back(is_comment(ev)); };
  // The first comment follows the stream's BOM (kept in raw, skipped for the fields).
  f.feed("\xEF\xBB\xBF: ping\n\n: a\nretry: 5\n\ndata: x\n\n: c\ndata: y\n\nevent: e\n\n", note);
  EXPECT_EQ(got, (std::vector<bool>{true, true, false, false, false}));
}

TEST(framer, MixedEndingsBomAndNul) {
  const auto ev = test::meaningful(whole(test::mixed_endings_stream()));
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].data, "bom");
  EXPECT_EQ(ev[1].data, "a");
  EXPECT_EQ(ev[2].data, "b");
  EXPECT_EQ(ev[3].data, "c");
  EXPECT_EQ(ev[4].data, std::string("nul\0id", 6));
  EXPECT_EQ(ev[4].id, "");  // an id containing NUL is ignored
}

TEST(framer, CrlfSplitBetweenCrAndLfAddsNoBlankLine) {
  framer f;
  std::vector<recorded> got;
  auto rec = [&](const event& ev) { got.push_back(test::record(ev)); };
  f.feed("data: x\r\n\r", rec);
  ASSERT_EQ(got.size(), 1u);  // delivered at once, no waiting for the LF
  EXPECT_EQ(got[0].raw, "data: x\r\n\r");
  f.feed("\ndata: y\r\n\r\n", rec);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].raw, "\ndata: y\r\n\r\n");
  EXPECT_EQ(got[1].data, "y");
}

TEST(framer, WholeEventsAreViewsOfTheFedBytes) {
  framer f;
  const std::string input = test::chat_stream();
  f.feed(input, [&](const event& ev) {
    EXPECT_GE(ev.raw.data(), input.data());
    EXPECT_LE(ev.raw.data() + ev.raw.size(), input.data() + input.size());
  });
  EXPECT_EQ(f.pending_bytes(), 0u);
}

TEST(framer, AfterASplitEventTheRestIsNotCopied) {
  framer f;
  const std::string first = "data: a";
  const std::string second = "bc\n\ndata: d\n\ndata: e";
  std::vector<bool> in_second;
  f.feed(first, [&](const event&) { FAIL(); });
  EXPECT_EQ(f.pending_bytes(), first.size());
  f.feed(second, [&](const event& ev) {
    in_second.push_back(ev.raw.data() >= second.data() &&
                        ev.raw.data() < second.data() + second.size());
  });
  EXPECT_EQ(in_second, (std::vector<bool>{false, true}));
  EXPECT_EQ(f.pending_bytes(), std::string("data: e").size());
}

TEST(framer, EmptyFeedsAndReset) {
  framer f;
  int n = 0;
  auto count = [&](const event&) { ++n; };
  f.feed("", count);
  f.feed("data: x", count);
  f.feed("", count);
  EXPECT_EQ(n, 0);
  f.reset();
  EXPECT_EQ(f.pending_bytes(), 0u);
  f.feed("data: y\n\n", [&](const event& ev) {
    ++n;
    EXPECT_EQ(ev.raw, "data: y\n\n");
  });
  EXPECT_EQ(n, 1);
}

TEST(framer, LongLineInTinyPiecesStaysLinear) {
  // 4 MB of data in 1 KB pieces: quadratic rescanning would take minutes.
  std::string input = "data: " + std::string(4u << 20, 'x') + "\n\n";
  std::vector<std::size_t> cuts;
  for (std::size_t p = 1024; p < input.size(); p += 1024) cuts.push_back(p);
  framer f;
  const auto got = test::feed_cuts(f, input, cuts);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data.size(), 4u << 20);
}

TEST(append_error_event, Shape) {
  std::string out;
  append_error_event(out, "upstream \"x\" failed\n");
  EXPECT_EQ(out,
            "data: {\"error\":{\"message\":\"upstream \\\"x\\\" failed\\n\",\"type\":"
            "\"upstream_error\",\"code\":null}}\n\n");
  out.clear();
  append_error_event(out, "m", "timeout", "upstream_timeout");
  EXPECT_EQ(out,
            "data: {\"error\":{\"message\":\"m\",\"type\":\"timeout\",\"code\":"
            "\"upstream_timeout\"}}\n\n");
}

// The claim hook is offered the unread bytes only at boundaries whose framing depends on nothing
// before them; what it takes is never delivered, and the rest is framed as without it.
struct claim_log {
  std::vector<std::string> offered, delivered;
  std::string take;  // claimed when offered bytes start with it
};

void feed_claiming(framer& f, std::string_view piece, claim_log& log) {
  f.feed(
      piece, [&](const event& ev) { log.delivered.emplace_back(ev.raw); },
      [&](std::string_view rest) -> std::size_t {
        log.offered.emplace_back(rest);
        std::size_t n = 0;  // takes every event it wants in a row, as claim_plain_events does
        while (!log.take.empty() && rest.substr(n).starts_with(log.take)) n += log.take.size();
        return n;
      });
}

TEST(framer, ClaimIsNotOfferedTheFirstLine) {
  framer f;
  claim_log log;
  feed_claiming(f,
                "\xEF\xBB\xBF"
                "data: a\n\ndata: b\n\n",
                log);
  EXPECT_EQ(log.offered, (std::vector<std::string>{"data: b\n\n"}));
  EXPECT_EQ(log.delivered.size(), 2u);
}

TEST(framer, ClaimIsNotOfferedAfterAPendingEventOrACrAtTheEnd) {
  framer f;
  claim_log log;
  feed_claiming(f, "data: a\n\nda", log);         // offered "da" after a
  feed_claiming(f, "ta: b\n\ndata: c\r\r", log);  // pending b: offered after it only
  feed_claiming(f, "\ndata: d\n\n", log);         // the CR may have its LF here
  EXPECT_EQ(log.offered, (std::vector<std::string>{"da", "data: c\r\r"}));
  EXPECT_EQ(log.delivered, (std::vector<std::string>{"data: a\n\n", "data: b\n\n", "data: c\r\r",
                                                     "\ndata: d\n\n"}));
}

TEST(framer, ClaimedEventsAreNotDelivered) {
  framer f;
  claim_log log;
  log.take = "data: x\n\n";
  feed_claiming(f, "data: a\n\ndata: x\n\ndata: x\n\nid: 1\ndata: x\n\ndata: x\n\n", log);
  f.finish([&](const event& ev) { log.delivered.emplace_back(ev.raw); });
  EXPECT_EQ(log.delivered, (std::vector<std::string>{"data: a\n\n", "id: 1\ndata: x\n\n"}));
}

}  // namespace
}  // namespace ob::proxy::sse
