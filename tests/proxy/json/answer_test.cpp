// Answer inspection: model spans (top-level and Responses API nested), usage, error, type.
#include <gtest/gtest.h>

#include <string>

#include "proxy/json/model.hpp"

namespace ob::proxy::json {
namespace {

std::string_view text_of(std::string_view doc, span s) {
  return doc.substr(s.begin, s.end - s.begin);
}

std::string spliced(std::string_view doc, const answer_info& a, std::string_view lit) {
  std::string out;
  append_spliced(out, doc, a.models, a.model_count, lit);
  return out;
}

const char* const chat_answer = R"({
  "id": "chatcmpl-abc123",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! \"model\": no",
    "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0}},
  "service_tier": "default"
})";

TEST(inspect_answer, ChatCompletion) {
  model_finder f;
  const std::string doc = chat_answer;
  answer_info a = f.inspect_answer(doc, doc.size());
  ASSERT_TRUE(a.is_object);
  ASSERT_EQ(a.model_count, 1);
  EXPECT_EQ(text_of(doc, a.models[0]), R"("gpt-4.1-2025-04-14")");
  EXPECT_EQ(a.usage.prompt_tokens, 19);
  EXPECT_EQ(a.usage.completion_tokens, 10);
  EXPECT_EQ(a.usage.total_tokens, 29);
  EXPECT_FALSE(a.has_error);
  EXPECT_TRUE(a.type.empty());
  const std::string out = spliced(doc, a, R"("fast")");
  std::string expected = doc;
  expected.replace(a.models[0].begin, a.models[0].end - a.models[0].begin, R"("fast")");
  EXPECT_EQ(out, expected);
}

TEST(inspect_answer, ResponsesEventNestedModelAndUsage) {
  model_finder f;
  const std::string doc =
      R"({"type":"response.completed","sequence_number":9,"response":{"id":"resp_1",)"
      R"("object":"response","status":"completed","model":"gpt-4o-2024-08-06","output":[],)"
      R"("error":null,"usage":{"input_tokens":36,"output_tokens":87,"total_tokens":123,)"
      R"("output_tokens_details":{"reasoning_tokens":0}},"metadata":{"model":"no"}}})";
  answer_info a = f.inspect_answer(doc, doc.size());
  ASSERT_TRUE(a.is_object);
  EXPECT_EQ(a.type, "response.completed");
  ASSERT_EQ(a.model_count, 1);
  EXPECT_EQ(text_of(doc, a.models[0]), R"("gpt-4o-2024-08-06")");
  EXPECT_EQ(a.usage.prompt_tokens, 36);
  EXPECT_EQ(a.usage.completion_tokens, 87);
  EXPECT_EQ(a.usage.total_tokens, 123);
  EXPECT_FALSE(a.has_error);  // the nested error is not top-level
}

TEST(inspect_answer, BothModelsAscendingWhateverTheKeyOrder) {
  model_finder f;
  const std::string doc = R"({"response":{"model":"inner"},"type":"x","model":"outer"})";
  answer_info a = f.inspect_answer(doc, doc.size());
  ASSERT_EQ(a.model_count, 2);
  EXPECT_LT(a.models[0].end, a.models[1].begin);
  EXPECT_EQ(text_of(doc, a.models[0]), R"("inner")");
  EXPECT_EQ(text_of(doc, a.models[1]), R"("outer")");
  EXPECT_EQ(spliced(doc, a, R"("g")"), R"({"response":{"model":"g"},"type":"x","model":"g"})");
}

TEST(inspect_answer, DuplicateModelKeysAreAllRewritten) {
  model_finder f;
  const std::string doc = R"({"model":"a","model":"b"})";
  answer_info a = f.inspect_answer(doc, doc.size());
  EXPECT_EQ(spliced(doc, a, R"("g")"), R"({"model":"g","model":"g"})");
}

// More "model" strings than answer_info has room for, at each level where they are read: the
// first max_models are kept, in document order, and nothing is written past the array (under
// ASan/UBSan an overflow of `models` is a report; without, it corrupts model_count).
TEST(inspect_answer, MoreModelKeysThanRoomAtEveryLevel) {
  constexpr int room = answer_info::max_models;
  auto keys = [](int from, int n) {
    std::string s;
    for (int i = from; i < from + n; ++i)
      s += (s.empty() ? "" : ",") + ("\"model\":\"m" + std::to_string(i) + "\"");
    return s;
  };
  const std::string docs[] = {
      "{" + keys(0, room + 2) + "}",                                            // top level
      R"({"type":"response.created","response":{)" + keys(0, room + 2) + "}}",  // response
      "{" + keys(0, room) + R"(,"response":{)" + keys(room, 3) + "}}",          // both, top first
      R"({"response":{)" + keys(0, room + 1) + "}," + keys(room + 1, room + 1) + "}",
      "{" + keys(0, 1) + R"(,"response":{)" + keys(1, room) + "}}",  // one too many
  };
  model_finder f;
  for (const std::string& doc : docs) {
    answer_info a = f.inspect_answer(doc, doc.size());
    ASSERT_TRUE(a.is_object) << doc;
    ASSERT_EQ(a.model_count, room) << doc;
    for (int i = 0; i < room; ++i)
      EXPECT_EQ(text_of(doc, a.models[i]), "\"m" + std::to_string(i) + "\"") << doc;
    EXPECT_FALSE(a.usage.present()) << doc;
    EXPECT_FALSE(a.has_error) << doc;
    // The kept ones are rewritten, the rest left as they came.
    std::string out = spliced(doc, a, R"("g")");
    std::string expect = doc;
    for (int i = room - 1; i >= 0; --i)
      expect.replace(a.models[i].begin, a.models[i].end - a.models[i].begin, R"("g")");
    EXPECT_EQ(out, expect) << doc;
  }
}

// Zero is a real token count (a cached or empty answer): it must read as 0, not as "absent".
TEST(inspect_answer, ZeroUsageCounts) {
  model_finder f;
  const std::string chat =
      R"({"model":"m","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}})";
  answer_info a = f.inspect_answer(chat, chat.size());
  EXPECT_TRUE(a.usage.present());
  EXPECT_EQ(a.usage.prompt_tokens, 0);
  EXPECT_EQ(a.usage.completion_tokens, 0);
  EXPECT_EQ(a.usage.total_tokens, 0);
  const std::string responses =
      R"({"type":"response.completed","response":{"model":"m","usage":{"input_tokens":0,)"
      R"("output_tokens":0,"total_tokens":0}}})";
  a = f.inspect_answer(responses, responses.size());
  EXPECT_TRUE(a.usage.present());
  EXPECT_EQ(a.usage.prompt_tokens, 0);
  EXPECT_EQ(a.usage.completion_tokens, 0);
  EXPECT_EQ(a.usage.total_tokens, 0);
  for (const char* one :
       {R"({"usage":{"prompt_tokens":0}})", R"({"usage":{"completion_tokens":0}})",
        R"({"usage":{"total_tokens":0}})"}) {
    const std::string d = one;
    EXPECT_TRUE(f.inspect_answer(d, d.size()).usage.present()) << d;
  }
  const std::string negative = R"({"usage":{"prompt_tokens":-1,"total_tokens":-5}})";
  EXPECT_FALSE(f.inspect_answer(negative, negative.size()).usage.present());
}

TEST(inspect_answer, NonStringModelsAreLeftAlone) {
  model_finder f;
  const std::string doc = R"({"model":null,"response":{"model":7},"choices":[{"model":"x"}]})";
  answer_info a = f.inspect_answer(doc, doc.size());
  EXPECT_TRUE(a.is_object);
  EXPECT_EQ(a.model_count, 0);
}

TEST(inspect_answer, Errors) {
  model_finder f;
  const std::string err =
      R"({"error":{"message":"Rate limit","type":"requests","param":null,"code":"rate_limit"}})";
  EXPECT_TRUE(f.inspect_answer(err, err.size()).has_error);
  const std::string null_error = R"({"model":"m","error":null})";
  EXPECT_FALSE(f.inspect_answer(null_error, null_error.size()).has_error);
  const std::string str_error = R"({"error":"boom"})";
  EXPECT_TRUE(f.inspect_answer(str_error, str_error.size()).has_error);
  const std::string typed = R"({"type":"error","code":"x","message":"m","sequence_number":3})";
  answer_info a = f.inspect_answer(typed, typed.size());
  EXPECT_EQ(a.type, "error");
  EXPECT_FALSE(a.has_error);
}

TEST(inspect_answer, UsageEdgeCases) {
  model_finder f;
  const std::string no_usage = R"({"usage":null,"model":"m"})";
  EXPECT_FALSE(f.inspect_answer(no_usage, no_usage.size()).usage.present());
  const std::string partial = R"({"usage":{"prompt_tokens":5,"completion_tokens":"x"}})";
  answer_info a = f.inspect_answer(partial, partial.size());
  EXPECT_TRUE(a.usage.present());
  EXPECT_EQ(a.usage.prompt_tokens, 5);
  EXPECT_EQ(a.usage.completion_tokens, -1);
  EXPECT_EQ(a.usage.total_tokens, -1);
}

// Non-stream answers of the three APIs, and what "no usage" looks like (unknown, not 0).
TEST(inspect_answer, UsageOfEachApi) {
  model_finder f;
  struct usage_case {
    const char* name;
    std::string doc;
    std::int64_t prompt, completion, total;
  };
  const usage_case cases[] = {
      {"chat", chat_answer, 19, 10, 29},
      {"responses",
       R"({"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1",)"
       R"("output":[{"type":"message","content":[{"type":"output_text","text":"hi"}]}],)"
       R"("usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},)"
       R"("output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}})",
       36, 87, 123},
      {"embeddings",
       R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.2]}],)"
       R"("model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}})",
       8, -1, 8},
      {"zero tokens",
       R"({"model":"m","usage":{"prompt_tokens":0,"completion_tokens":0,)"
       R"("total_tokens":0}})",
       0, 0, 0},
      {"no usage", R"({"model":"m","choices":[]})", -1, -1, -1},
      {"usage null", R"({"model":"m","usage":null})", -1, -1, -1},
      {"usage empty", R"({"model":"m","usage":{}})", -1, -1, -1},
      {"usage not an object", R"({"model":"m","usage":12})", -1, -1, -1},
      {"negative or fractional counts",
       R"({"usage":{"prompt_tokens":-1,"completion_tokens":2.5,"total_tokens":"3"}})", -1, -1, -1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const answer_info a = f.inspect_answer(c.doc, c.doc.size());
    ASSERT_TRUE(a.is_object);
    EXPECT_EQ(a.usage.prompt_tokens, c.prompt);
    EXPECT_EQ(a.usage.completion_tokens, c.completion);
    EXPECT_EQ(a.usage.total_tokens, c.total);
    EXPECT_EQ(a.usage.present(), c.prompt >= 0 || c.completion >= 0 || c.total >= 0);
  }
}

TEST(inspect_answer, UsageOnlyChunkMarkers) {
  model_finder f;
  auto info = [&](const std::string& doc) { return f.inspect_answer(doc, doc.size()); };
  answer_info a = info(R"({"model":"m","choices":[],"usage":{"prompt_tokens":1}})");
  EXPECT_TRUE(a.empty_choices);
  EXPECT_TRUE(a.usage_object);
  a = info("{\"choices\" : [ \n ] ,\"usage\":{}}");
  EXPECT_TRUE(a.empty_choices);
  EXPECT_TRUE(a.usage_object);
  EXPECT_FALSE(a.usage.present());
  a = info(R"({"choices":[{"index":0}],"usage":null})");
  EXPECT_FALSE(a.empty_choices);
  EXPECT_FALSE(a.usage_object);
  a = info(R"({"choices":[[]],"usage":[]})");
  EXPECT_FALSE(a.empty_choices);
  EXPECT_FALSE(a.usage_object);
  a = info(R"({"choices":{},"x":{"choices":[],"usage":{}}})");
  EXPECT_FALSE(a.empty_choices);
  EXPECT_FALSE(a.usage_object);
}

TEST(inspect_answer, NotObjectOrInvalid) {
  model_finder f;
  for (const char* doc : {"[DONE]", "", "[]", "\"x\"", "{\"model\":\"m\"", "{\"model\":\"m\"} x",
                          "{\"model\":\"m\",\"usage\":{\"prompt_tokens\":}}", "\xff"}) {
    const std::string d = doc;
    answer_info a = f.inspect_answer(d, d.size());
    EXPECT_FALSE(a.is_object) << doc;
    EXPECT_EQ(a.model_count, 0) << doc;
    EXPECT_FALSE(a.usage.present()) << doc;
  }
}

TEST(inspect_answer, TypeViewSurvivesUntilNextCall) {
  model_finder f;
  std::string doc = R"({"type":"response.output_text.delta","delta":"hi"})";
  answer_info a = f.inspect_answer(doc, doc.size());
  doc.assign(doc.size(), 'x');  // the caller may reuse its buffer; the type stays readable
  EXPECT_EQ(a.type, "response.output_text.delta");
}

}  // namespace
}  // namespace ob::proxy::json

namespace ob::proxy::json {
namespace {

TEST(model_finder, MovableAndUsableAfterMove) {
  model_finder a;
  const std::string doc = R"({"model":"m"})";
  model_finder b = std::move(a);
  EXPECT_EQ(b.find_request_model(doc, doc.size()).name, "m");
  EXPECT_EQ(a.find_request_model(doc, doc.size()).name, "m");  // NOLINT(bugprone-use-after-move)
  a = std::move(b);
  EXPECT_EQ(a.inspect_answer(doc, doc.size()).model_count, 1);
}

}  // namespace
}  // namespace ob::proxy::json
