// Deterministic fuzzing of the byte-level pieces: random bytes and mutations of recorded streams
// and request bodies. Nothing may crash (run under ASan/UBSan too) and the invariants must hold.
#include <gtest/gtest.h>

#include <random>

#include "proxy/json/model.hpp"
#include "proxy/sse/rewrite.hpp"
#include "streams.hpp"

namespace ob::proxy {
namespace {

using rng_t = std::mt19937_64;

std::size_t pick(rng_t& rng, std::size_t n) {
  return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
}

// Bytes that matter to SSE and JSON, mixed with anything.
std::string random_bytes(rng_t& rng, std::size_t max_len) {
  static const char* const tokens[] = {
      "data:",    "data: ", "event: ", "id: ",      ":",         "\n",           "\r",
      "\r\n",     "{",      "}",       "\"model\"", "\"usage\"", "\"response\"", "\"error\"",
      "\"type\"", ":",      ",",       "\"x\"",     "[DONE]",    "\\",           "\\u0065",
      "null",     "1",      "[",       "]",         "\xff",      "\xEF\xBB\xBF"};
  std::string s;
  const std::size_t len = pick(rng, max_len + 1);
  while (s.size() < len) {
    if (pick(rng, 3) == 0) {
      s += static_cast<char>(pick(rng, 256));
    } else {
      s += tokens[pick(rng, std::size(tokens))];
    }
  }
  return s;
}

std::string mutate(std::string s, rng_t& rng) {
  const std::size_t edits = 1 + pick(rng, 8);
  for (std::size_t i = 0; i < edits; ++i) {
    const std::size_t at = s.empty() ? 0 : pick(rng, s.size());
    switch (pick(rng, 4)) {
      case 0:
        if (!s.empty()) s[at] = static_cast<char>(pick(rng, 256));
        break;
      case 1:
        s.insert(at, 1, "\n\r:{}\"\\"[pick(rng, 7)]);
        break;
      case 2:
        if (!s.empty()) s.erase(at, 1 + pick(rng, 16));
        break;
      default:
        s.insert(at, s.substr(pick(rng, s.size() + 1), pick(rng, 64)));
        break;
    }
  }
  return s;
}

struct stream_result {
  std::string raw, out;
  std::size_t events = 0;
};

stream_result run_stream(const std::string& input, const std::vector<std::size_t>& cuts,
                         json::model_finder& finder) {
  sse::framer f;
  stream_result r;
  auto on_event = [&](const sse::event& ev) {
    ++r.events;
    r.raw += ev.raw;
    for (std::size_t i = 0; i < ev.piece_count; ++i) {
      const auto& p = ev.pieces[i];
      ASSERT_LE(p.raw_begin + p.size, ev.raw.size());
      ASSERT_EQ(ev.raw.substr(p.raw_begin, p.size), ev.data.substr(p.data_begin, p.size));
    }
    sse::rewrite_event(ev, finder, R"("g")", r.out);
  };
  std::size_t pos = 0;
  for (std::size_t c : cuts) {
    const std::string piece = input.substr(pos, c - pos);
    f.feed(piece, on_event);
    pos = c;
  }
  const std::string last = input.substr(pos);
  f.feed(last, on_event);
  f.finish(on_event);
  return r;
}

void check_stream(const std::string& input, rng_t& rng, json::model_finder& finder) {
  const stream_result whole = run_stream(input, {}, finder);
  ASSERT_EQ(whole.raw, input);
  std::mt19937 cut_rng(static_cast<unsigned>(rng()));
  const stream_result split =
      run_stream(input, sse::test::random_cuts(input.size(), cut_rng, 1 + pick(rng, 64)), finder);
  ASSERT_EQ(split.raw, input);
  ASSERT_EQ(split.out, whole.out);
}

TEST(fuzz, RandomStreams) {
  rng_t rng(1);
  json::model_finder finder;
  for (int i = 0; i < 3000; ++i) {
    check_stream(random_bytes(rng, 300), rng, finder);
    if (HasFatalFailure()) return;
  }
}

TEST(fuzz, MutatedRecordedStreams) {
  rng_t rng(2);
  json::model_finder finder;
  const std::string seeds[] = {sse::test::chat_stream(),         sse::test::responses_stream(3),
                               sse::test::crlf_stream(),         sse::test::cr_stream(),
                               sse::test::keepalive_stream(),    sse::test::multiline_stream(),
                               sse::test::mixed_endings_stream()};
  for (int i = 0; i < 1500; ++i) {
    check_stream(mutate(seeds[pick(rng, std::size(seeds))], rng), rng, finder);
    if (HasFatalFailure()) return;
  }
}

void check_request(const std::string& doc, json::model_finder& finder) {
  const json::request_model r = finder.find_request_model(doc, doc.size());
  if (r.status != json::find_status::ok) return;
  ASSERT_LT(r.value.begin, r.value.end);
  ASSERT_LE(r.value.end, doc.size());
  ASSERT_EQ(doc[r.value.begin], '"');
  ASSERT_EQ(doc[r.value.end - 1], '"');
  std::string out;
  json::append_spliced(out, doc, &r.value, 1, R"("spliced")");
  const json::request_model again = finder.find_request_model(out, out.size());
  ASSERT_EQ(again.status, json::find_status::ok) << out;
  ASSERT_EQ(again.name, "spliced");
}

void check_answer(const std::string& doc, json::model_finder& finder) {
  const json::answer_info a = finder.inspect_answer(doc, doc.size());
  std::size_t prev_end = 0;
  for (int i = 0; i < a.model_count; ++i) {
    ASSERT_GE(a.models[i].begin, prev_end);
    ASSERT_LE(a.models[i].end, doc.size());
    ASSERT_EQ(doc[a.models[i].begin], '"');
    ASSERT_EQ(doc[a.models[i].end - 1], '"');
    prev_end = a.models[i].end;
  }
}

TEST(fuzz, RequestAndAnswerDocuments) {
  rng_t rng(3);
  json::model_finder finder;
  const std::string seeds[] = {
      R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi \"model\""}],"stream":true})",
      R"({"messages":[{"model":"x"}],"mod\u0065l":"m","tools":[{"type":"function"}]})",
      R"({"type":"response.completed","response":{"model":"m","usage":{"input_tokens":1}},"model":"n"})",
      R"({"error":{"message":"x"},"usage":{"prompt_tokens":1,"total_tokens":2}})"};
  for (int i = 0; i < 4000; ++i) {
    const std::string doc =
        i % 2 ? mutate(seeds[pick(rng, std::size(seeds))], rng) : random_bytes(rng, 200);
    check_request(doc, finder);
    check_answer(doc, finder);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace ob::proxy
