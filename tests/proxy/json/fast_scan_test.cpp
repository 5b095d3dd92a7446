// The inspect_answer fast path against the simdjson path (the reference): recorded stream events,
// seeded random JSON objects and seeded mutations/truncations of them. Whenever the fast path
// decides, its answer must be the reference's exactly. Every document is held in an allocation of
// exactly its size, so that a read past its end is caught under ASan.
#include "proxy/json/fast_scan.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "proxy/json/model.hpp"
#include "proxy/sse/framer.hpp"
#include "proxy/sse/streams.hpp"

namespace ob::proxy::json {
namespace {

// answer_info by value, comparable and printable.
struct snapshot {
  bool is_object = false;
  std::vector<std::pair<std::size_t, std::size_t>> models;
  std::int64_t prompt = -1, completion = -1, total = -1;
  bool has_error = false;
  std::string type;
  bool operator==(const snapshot&) const = default;
};

snapshot snap(const answer_info& a) {
  snapshot s{a.is_object,          {},          a.usage.prompt_tokens, a.usage.completion_tokens,
             a.usage.total_tokens, a.has_error, std::string(a.type)};
  for (int i = 0; i < a.model_count; ++i) s.models.emplace_back(a.models[i].begin, a.models[i].end);
  return s;
}

std::ostream& operator<<(std::ostream& o, const snapshot& s) {
  o << "{object=" << s.is_object << " models=[";
  for (auto [b, e] : s.models) o << b << "-" << e << " ";
  return o << "] usage=" << s.prompt << "/" << s.completion << "/" << s.total
           << " error=" << s.has_error << " type=" << s.type << "}";
}

// A copy of `text` in an allocation of exactly its size (no terminator, no padding).
struct exact {
  std::unique_ptr<char[]> bytes;
  std::size_t size;
  explicit exact(std::string_view text) : bytes(new char[text.size()]), size(text.size()) {
    if (size) std::memcpy(bytes.get(), text.data(), size);
  }
  std::string_view view() const { return {bytes.get(), size}; }
};

struct differential {
  model_finder finder;
  int cases = 0, decided = 0;

  snapshot reference(std::string_view doc) {
    fast_inspect_enabled = false;
    const snapshot s = snap(finder.inspect_answer(doc, doc.size()));
    fast_inspect_enabled = true;
    return s;
  }

  // True when the fast path decided. Fails the test on any difference from the reference, and
  // checks that inspect_answer (fast path on) always gives the reference's answer.
  bool check(std::string_view text) {
    const exact e(text);
    const std::string_view doc = e.view();
    ++cases;
    answer_info fast;
    const bool ok = fast_inspect_answer(doc, fast);
    const snapshot ref = reference(doc);
    if (ok) {
      ++decided;
      EXPECT_EQ(snap(fast), ref) << "doc: " << text;
    }
    EXPECT_EQ(snap(finder.inspect_answer(doc, doc.size())), ref) << "doc: " << text;
    return ok;
  }
};

bool decides(std::string_view text) {
  differential d;
  return d.check(text);
}

// ---- recorded streams ----

std::vector<std::string> recorded_event_data() {
  namespace st = sse::test;
  std::vector<std::string> out;
  for (const std::string& stream : {st::chat_stream(), st::responses_stream(), st::crlf_stream(),
                                    st::cr_stream(), st::keepalive_stream(), st::multiline_stream(),
                                    st::unterminated_stream(), st::mixed_endings_stream()}) {
    sse::framer f;
    auto on_event = [&](const sse::event& ev) {
      if (ev.has_data) out.emplace_back(ev.data);
    };
    f.feed(stream, on_event);
    f.finish(on_event);
  }
  return out;
}

const std::string chat_chunk_data = sse::test::chat_chunk(R"({"content":" token7"})", "null");

std::string data_of(const std::string& event) {
  return event.substr(6, event.size() - 8);  // "data: " ... "\n\n"
}

const char* const chat_answer_without_usage = R"({
  "id": "chatcmpl-abc123",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! \"model\": no",
    "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
  "service_tier": "default"
})";

const char* const chat_answer_with_usage = R"({"id":"c","object":"chat.completion",)"
                                           R"("model":"gpt-4o","choices":[],"usage":)"
                                           R"({"prompt_tokens":19,"completion_tokens":10}})";

TEST(fast_scan, RecordedEventsAndEveryPrefix) {
  differential d;
  std::vector<std::string> docs = recorded_event_data();
  docs.push_back(chat_answer_without_usage);
  docs.push_back(chat_answer_with_usage);
  int recorded_decided = 0;
  for (const std::string& doc : docs) {
    recorded_decided += d.check(doc);
    for (std::size_t n = 0; n < doc.size(); ++n) d.check(doc.substr(0, n));
    if (HasFailure()) return;
  }
  // All chat chunks (role, 8 content chunks, finish) of the two chat streams and the keepalive
  // stream's two chunks are decided by the fast path.
  EXPECT_GE(recorded_decided, 2 * 10 + 2);
  std::cout << "recorded: " << docs.size() << " documents, " << d.cases << " cases with prefixes, "
            << recorded_decided << " documents decided by the fast path\n";
}

TEST(fast_scan, DecidesTypicalDocuments) {
  const std::string chunk = data_of(chat_chunk_data);
  EXPECT_TRUE(decides(chunk));
  std::string with_nulls = chunk;
  with_nulls.insert(with_nulls.size() - 1, R"(,"usage":null,"error":null)");
  EXPECT_TRUE(decides(with_nulls));
  answer_info a;
  ASSERT_TRUE(fast_inspect_answer(with_nulls, a));
  EXPECT_TRUE(a.is_object);
  ASSERT_EQ(a.model_count, 1);
  EXPECT_EQ(with_nulls.substr(a.models[0].begin, a.models[0].end - a.models[0].begin),
            R"("gpt-4o-mini-2024-07-18")");
  EXPECT_FALSE(a.has_error);
  EXPECT_FALSE(a.usage.present());
  EXPECT_TRUE(decides(chat_answer_without_usage));
  EXPECT_TRUE(decides(" \r\n\t{ } \n"));
  EXPECT_TRUE(decides(R"({"model":"a","model":"b","model":1,"model":"c","model":"d"})"));
  EXPECT_TRUE(decides(R"({"type":"response.output_text.delta","delta":"hi \"x\" \\"})"));
  EXPECT_TRUE(decides(R"({"error":{"message":"overloaded","type":"server_error"}})"));
  EXPECT_TRUE(decides(R"({"error":"boom","type":1,"x":[true,false,null,-1.5e3]})"));
  EXPECT_TRUE(decides("{\"model\":\"模型-ü-😀\",\"x\":\"\\u00e9\"}"));
  std::string deep = R"({"x":)" + std::string(64, '[') + std::string(64, ']') + "}";
  EXPECT_TRUE(decides(deep));
}

TEST(fast_scan, FallsBackOnUnusualDocuments) {
  for (const std::string& doc : {
           std::string(chat_answer_with_usage),                            // usage object
           std::string(R"({"usage":"x"})"),                                // usage not null
           std::string(R"({"type":"response.created","response":null})"),  // Responses event
           std::string(R"({"mod\u0065l":"m"})"),                           // escaped key
           std::string(R"({"a\"b":1})"),                                   // escaped key
           std::string(R"({"type":"a\u0062"})"),                           // escaped type
           std::string(R"({"model":"a","model":"b","model":"c","model":"d","model":"e"})"),
           R"({"x":)" + std::string(65, '[') + std::string(65, ']') + "}",  // too deep
           std::string(R"({"model":"m"} x)"),                               // trailing bytes
           std::string(R"({"model":"m"}{})"),                               // trailing bytes
           std::string("[DONE]"),
           std::string("[]"),
           std::string("\"x\""),  // not objects
           std::string(""),
           std::string("  "),
           std::string("{"),  // truncated
           std::string(R"({"model":"m",})"),
           std::string(R"({,"model":"m"})"),
           std::string(R"({"model" "m"})"),
           std::string(R"({"model":})"),
           std::string(R"({"x":[1,2}})"),
           std::string(R"({"x":{"a":1]})"),  // mismatched
           std::string(R"({"error":nul})"),
           std::string(R"({"x":tru})"),       // not literals
           std::string("{\"x\":\"a\x01\"}"),  // control character
           std::string("{\"x\":\"\xff\"}"),   // invalid UTF-8
           std::string("\xEF\xBB\xBF{}"),     // BOM
       }) {
    EXPECT_FALSE(decides(doc)) << doc;
  }
}

// ---- seeded random documents ----

using rng_t = std::mt19937_64;

std::size_t pick(rng_t& rng, std::size_t n) {
  return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
}

struct generator {
  rng_t rng;

  std::string ws() {
    static const char* const spaces[] = {"", "", "", "", " ", "\n", "\t", "\r\n  ", "  "};
    return spaces[pick(rng, std::size(spaces))];
  }

  std::string string_token() {
    static const char* const pieces[] = {
        "a",   "model",    " ",     "gpt-4o", "\\\"", "\\\\", "\\n", "\\u00e9", "\\ud83d\\ude00",
        "é",   "模型",     "😀",     "{",      "}",    "[",    "]",   ",",       ":",
        "\\/", "\\\\\\\"", "x\\\\", "usage",  "\\t",  "0"};
    std::string s = "\"";
    for (std::size_t n = pick(rng, 6); n > 0; --n) s += pieces[pick(rng, std::size(pieces))];
    return s + "\"";
  }

  std::string key() {
    static const char* const keys[] = {"model",    "model",  "usage",   "error",       "type",
                                       "response", "id",     "choices", "object",      "delta",
                                       "",         "Model",  "models",  "mod\\u0065l", "typ\\u0065",
                                       "模型",     "x\\\"y", "error ",  "created"};
    return std::string("\"") + keys[pick(rng, std::size(keys))] + "\"";
  }

  std::string scalar() {
    static const char* const scalars[] = {"null",  "true", "false", "0",    "-1",
                                          "1.5e3", "12",   "-0.25", "1E+2", "42"};
    return scalars[pick(rng, std::size(scalars))];
  }

  std::string value(int depth) {
    switch (pick(rng, depth > 6 ? 2 : 4)) {
      case 0:
        return string_token();
      case 1:
        return scalar();
      case 2: {
        std::string s = "[" + ws();
        for (std::size_t n = pick(rng, 4), i = 0; i < n; ++i)
          s += (i ? "," + ws() : "") + value(depth + 1) + ws();
        return s + "]";
      }
      default:
        return object(depth + 1);
    }
  }

  std::string usage() {
    return pick(rng, 4) ? "null"
                        : R"({"prompt_tokens":)" + std::to_string(pick(rng, 100)) +
                              R"(,"completion_tokens":3,"total_tokens":"x"})";
  }

  std::string object(int depth) {
    std::string s = "{" + ws();
    for (std::size_t n = pick(rng, depth == 0 ? 9 : 4), i = 0; i < n; ++i) {
      const std::string k = key();
      std::string v = value(depth);
      if (depth == 0 && k == "\"usage\"") v = usage();
      if (depth == 0 && k == "\"error\"" && pick(rng, 2)) v = "null";
      if (depth == 0 && k == "\"response\"" && pick(rng, 2))
        v = R"({"model":"inner","usage":)" + usage() + "}";
      s += (i ? "," + ws() : "") + k + ws() + ":" + ws() + v + ws();
    }
    return s + "}";
  }

  std::string deep() {
    const std::size_t n = 60 + pick(rng, 10);
    std::string open, close;
    for (std::size_t i = 0; i < n; ++i) {
      const bool arr = pick(rng, 2);
      open += arr ? "[" : R"({"k":)";
      close.insert(0, arr ? "]" : "}");
    }
    return R"({"model":"m","x":)" + open + "1" + close + "}";
  }

  std::string mutate(std::string s) {
    static const char specials[] = "\"\\{}[],: \n\x01\xff\xc3\xa9nulltrue-0e";
    for (std::size_t edits = 1 + pick(rng, 4); edits > 0; --edits) {
      const std::size_t at = s.empty() ? 0 : pick(rng, s.size());
      switch (pick(rng, 6)) {
        case 0:
          if (!s.empty()) s[at] = static_cast<char>(pick(rng, 256));
          break;
        case 1:
          s.insert(at, 1, specials[pick(rng, sizeof specials - 1)]);
          break;
        case 2:
          if (!s.empty()) s.erase(at, 1 + pick(rng, 8));
          break;
        case 3:
          s.resize(pick(rng, s.size() + 1));  // truncation
          break;
        case 4:
          s.insert(at, s.substr(pick(rng, s.size() + 1), pick(rng, 16)));
          break;
        default:
          if (!s.empty()) s[at] = specials[pick(rng, sizeof specials - 1)];
          break;
      }
    }
    return s;
  }
};

TEST(fast_scan, RandomObjectsAndMutations) {
  generator g{rng_t(20240611)};
  differential d;
  int clean_decided = 0, mutated_decided = 0;
  constexpr int rounds = 20000;
  for (int i = 0; i < rounds; ++i) {
    const std::string doc = i % 50 == 0 ? g.deep() : g.object(0);
    clean_decided += d.check(doc);
    for (int m = 0; m < 4; ++m) mutated_decided += d.check(g.mutate(doc));
    if (HasFailure()) return;
  }
  std::cout << "random: " << d.cases << " cases; fast path decided " << clean_decided << " of "
            << rounds << " generated objects, " << mutated_decided << " of " << 4 * rounds
            << " mutations\n";
  EXPECT_GT(clean_decided, rounds / 5);  // the fast path is exercised, not just declining
  EXPECT_GT(mutated_decided, rounds / 10);
}

TEST(fast_scan, MutatedRecordedEvents) {
  generator g{rng_t(7)};
  differential d;
  std::vector<std::string> docs = recorded_event_data();
  docs.push_back(chat_answer_without_usage);
  for (int i = 0; i < 20000; ++i) {
    d.check(g.mutate(docs[pick(g.rng, docs.size())]));
    if (HasFailure()) return;
  }
  std::cout << "mutated recorded: " << d.cases << " cases, " << d.decided << " decided\n";
}

}  // namespace
}  // namespace ob::proxy::json
