// Request-model finding, answer inspection and splicing.
#include "proxy/json/model.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ob::proxy::json {
namespace {

std::string_view model_text_of(std::string_view doc, span s) {
  return doc.substr(s.begin, s.end - s.begin);
}

// Runs both paths: the caller's buffer without padding (copied) and with padding (in place).
request_model find(model_finder& f, const std::string& doc) {
  request_model a = f.find_request_model(doc, doc.size());
  const std::string name_a(a.name);
  std::string padded = doc;
  padded.reserve(doc.size() + simdjson::SIMDJSON_PADDING);
  request_model b = f.find_request_model(padded, padded.capacity());
  EXPECT_EQ(a.status, b.status) << doc.substr(0, 200);
  EXPECT_EQ(a.value.begin, b.value.begin);
  EXPECT_EQ(a.value.end, b.value.end);
  EXPECT_EQ(name_a, b.name);
  return b;
}

struct model_finder_test : ::testing::Test {
  model_finder finder;
  find_status status(const std::string& doc) { return find(finder, doc).status; }
  // Expects ok and returns the token text; checks the name too.
  std::string token(const std::string& doc, std::string_view name) {
    request_model r = find(finder, doc);
    EXPECT_EQ(r.status, find_status::ok) << to_string(r.status) << " for " << doc;
    EXPECT_EQ(r.name, name);
    return std::string(model_text_of(doc, r.value));
  }
};

TEST_F(model_finder_test, FindsTopLevelModel) {
  EXPECT_EQ(token(R"({"model":"gpt-4o","messages":[]})", "gpt-4o"), R"("gpt-4o")");
}

TEST_F(model_finder_test, ModelNotFirstWithWhitespaceAndNewlines) {
  const std::string doc =
      "{\n  \"messages\": [{\"role\":\"user\",\"content\":\"hi\"}],\r\n"
      "  \"model\"\n\t :  \n  \"fast\"  \n\t,\n \"stream\": true \n}\n";
  EXPECT_EQ(token(doc, "fast"), "\"fast\"");
  EXPECT_EQ(token("{\"a\":1,\"model\":\"m\"   }", "m"), "\"m\"");
  EXPECT_EQ(token("  \t\n{\"model\":\"m\"}\n\n  ", "m"), "\"m\"");
}

TEST_F(model_finder_test, NestedModelKeysAreNotReported) {
  const std::string nested =
      R"({"messages":[{"role":"user","content":"x","model":"a"}],)"
      R"("tools":[{"type":"function","function":{"name":"model","parameters":{"model":{}}}}],)"
      R"("metadata":{"model":"b"},"response_format":{"json_schema":{"model":"c"}}})";
  EXPECT_EQ(status(nested), find_status::missing);
  std::string with_top = nested;
  with_top.insert(with_top.size() - 1, R"(,"model":"top")");
  EXPECT_EQ(token(with_top, "top"), R"("top")");
}

TEST_F(model_finder_test, ModelTextInsideValuesIsIgnored) {
  EXPECT_EQ(status(R"({"prompt":"\"model\":\"x\""})"), find_status::missing);
  EXPECT_EQ(token(R"({"prompt":"{\"model\":\"x\"}","model":"y"})", "y"), R"("y")");
}

TEST_F(model_finder_test, EscapedKeyCountsAsModel) {
  EXPECT_EQ(token(R"({"mod\u0065l":"m"})", "m"), R"("m")");
  EXPECT_EQ(token(R"({"\u006d\u006F\u0064\u0065\u006c":"m"})", "m"), R"("m")");
  EXPECT_EQ(status(R"({"model":"a","mod\u0065l":"b"})"), find_status::duplicate);
}

TEST_F(model_finder_test, SimilarKeysDoNotCount) {
  EXPECT_EQ(status(R"({"Model":"a"})"), find_status::missing);
  EXPECT_EQ(status(R"({"model ":"a"})"), find_status::missing);
  EXPECT_EQ(status(R"({" model":"a"})"), find_status::missing);
  EXPECT_EQ(status(R"({"models":"a"})"), find_status::missing);
  EXPECT_EQ(status(R"({"mode":"a"})"), find_status::missing);
  EXPECT_EQ(status(R"({"model\u0000":"a"})"), find_status::missing);
}

TEST_F(model_finder_test, UnicodeAndEscapedValues) {
  EXPECT_EQ(token(R"({"model":"模型-ü-😀"})", "模型-ü-😀"), R"("模型-ü-😀")");
  EXPECT_EQ(token(R"({"model":"caf\u00e9"})", "café"), R"("caf\u00e9")");
  EXPECT_EQ(token(R"({"model":"a\"b\\c"})", "a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(token(R"({"model":"\ud83d\ude00"})", "😀"), R"("\ud83d\ude00")");
  EXPECT_EQ(token(R"({"model":""})", ""), R"("")");
  EXPECT_EQ(token(R"({"model":"a/b\/c"})", "a/b/c"), R"("a/b\/c")");
}

TEST_F(model_finder_test, InvalidJson) {
  for (const char* doc : {"",
                          " ",
                          "{",
                          "}",
                          "{\"model\"",
                          "{\"model\":",
                          "{\"model\":\"x",
                          "{\"model\":\"x\"",
                          "{\"model\":\"x\",}",
                          "{\"model\" \"x\"}",
                          "{model:\"x\"}",
                          "{'model':'x'}",
                          "{\"model\":\"x\"} x",
                          "{\"model\":\"x\"}}",
                          "{\"model\":\"x\"} {}",
                          "{\"model\":\"x\"},",
                          "garbage",
                          "\x01\x02",
                          "{\"model\":\"\\q\"}",
                          "{\"model\":\"\\ud800\"}",
                          "{\"model\":\"a\x01\"}",
                          "{\"m\\x\":1}"}) {
    EXPECT_EQ(status(doc), find_status::invalid_json) << doc;
  }
}

TEST_F(model_finder_test, InvalidUtf8IsInvalidJson) {
  EXPECT_EQ(status("{\"model\":\"\xff\"}"), find_status::invalid_json);
  EXPECT_EQ(status("{\"model\":\"m\",\"x\":\"\xc3\x28\"}"), find_status::invalid_json);
  EXPECT_EQ(status("{\"model\":\"\xed\xa0\x80\"}"), find_status::invalid_json);  // surrogate
}

TEST_F(model_finder_test, NotObject) {
  for (const char* doc : {"[]", "[{\"model\":\"x\"}]", "\"model\"", "123", "null", "true"})
    EXPECT_EQ(status(doc), find_status::not_object) << doc;
}

TEST_F(model_finder_test, MissingNotStringDuplicate) {
  EXPECT_EQ(status("{}"), find_status::missing);
  EXPECT_EQ(status(R"({"messages":[]})"), find_status::missing);
  for (const char* v : {"1", "null", "true", "{}", "[\"a\"]", "{\"model\":\"x\"}", "-1.5e3"})
    EXPECT_EQ(status(std::string(R"({"model":)") + v + "}"), find_status::not_string) << v;
  EXPECT_EQ(status(R"({"model":"a","model":"b"})"), find_status::duplicate);
  EXPECT_EQ(status(R"({"model":"a","x":1,"model":2})"), find_status::duplicate);
}

TEST_F(model_finder_test, ParseErrorAfterModelWins) {
  EXPECT_EQ(status(R"({"model":"a","x":})"), find_status::invalid_json);
  EXPECT_EQ(status(R"({"model":"a","model":"b"} x)"), find_status::invalid_json);
}

TEST_F(model_finder_test, DeepNestingDoesNotCrash) {
  for (std::size_t depth : {100u, 1025u, 100000u}) {
    std::string deep =
        R"({"model":"m","x":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
    const find_status s = status(deep);
    EXPECT_TRUE(s == find_status::ok || s == find_status::invalid_json) << depth;
    std::string unbalanced = R"({"model":"m","x":)" + std::string(depth, '[') + "}";
    EXPECT_EQ(status(unbalanced), find_status::invalid_json) << depth;
    EXPECT_NE(status(std::string(depth, '{')), find_status::ok);
  }
}

std::string big_body(std::size_t image_bytes, bool model_first) {
  std::string b64;
  b64.reserve(image_bytes);
  const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (std::size_t i = 0; i < image_bytes; ++i) b64 += alphabet[(i * 7 + i / 64) % 64];
  const std::string messages =
      R"("messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},)"
      R"({"type":"image_url","image_url":{"url":"data:image/png;base64,)" +
      b64 + R"("}}]}])";
  return model_first ? R"({"model":"vision","stream":true,)" + messages + "}"
                     : "{" + messages + R"(,"stream":true,"model":"vision"})";
}

TEST_F(model_finder_test, TenMegabyteBodyWithBase64Image) {
  for (bool first : {true, false}) {
    const std::string doc = big_body(10u << 20, first);
    EXPECT_EQ(token(doc, "vision"), R"("vision")");
  }
}

TEST_F(model_finder_test, SpliceRoundTrip) {
  const std::string docs[] = {
      R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})",
      "{\n  \"stream\": true,\n  \"model\" :  \"a\\\"b\"  ,\n  \"n\": 1\n}",
      R"({"messages":[{"model":"nested"}],"model":"last"})",
      R"({"model":""})",
      big_body(100000, false),
  };
  for (const std::string& doc : docs) {
    request_model r = find(finder, doc);
    ASSERT_EQ(r.status, find_status::ok) << doc.substr(0, 100);
    std::string out;
    append_spliced(out, doc, &r.value, 1, R"("real-model-9")");
    EXPECT_EQ(out, doc.substr(0, r.value.begin) + R"("real-model-9")" + doc.substr(r.value.end));
    request_model again = find(finder, out);
    ASSERT_EQ(again.status, find_status::ok);
    EXPECT_EQ(again.name, "real-model-9");
  }
}

TEST(append_spliced, SeveralSpansAndBadSpans) {
  const std::string doc = "0123456789";
  std::string out = "pre:";
  const span spans[] = {{1, 3}, {5, 6}, {9, 10}};
  append_spliced(out, doc, spans, 3, "X");
  EXPECT_EQ(out, "pre:0X34X678X");
  out.clear();
  append_spliced(out, doc, nullptr, 0, "X");
  EXPECT_EQ(out, doc);
  out.clear();
  const span bad[] = {{5, 6}, {1, 2}, {8, 20}, {7, 6}};  // out of order / range: ignored
  append_spliced(out, doc, bad, 4, "X");
  EXPECT_EQ(out, "01234X6789");
}

TEST(json_string, EscapingTable) {
  const std::pair<std::string, std::string> table[] = {
      {"", R"("")"},
      {"fast", R"("fast")"},
      {"a\"b", R"("a\"b")"},
      {"a\\b", R"("a\\b")"},
      {"/", R"("/")"},
      {"\n\r\t\b\f", R"("\n\r\t\b\f")"},
      {std::string("\0", 1), R"("\u0000")"},
      {"\x01\x1f", R"("\u0001\u001f")"},
      {"\x7f", "\"\x7f\""},
      {"café 模型 😀", "\"café 模型 😀\""},
      {"\xff", "\"\xEF\xBF\xBD\""},
      {"a\xe2\x82", "\"a\xEF\xBF\xBD\xEF\xBF\xBD\""},                // truncated sequence
      {"\xc0\xaf", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},                  // overlong
      {"\xed\xa0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},  // surrogate
      {"\xf4\x90\x80\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},  // > U+10FFFF
  };
  for (const auto& [in, expected] : table) EXPECT_EQ(json_string(in), expected) << in;
  std::string out = "x=";
  append_json_string(out, "q\"");
  EXPECT_EQ(out, R"(x="q\"")");
}

TEST(json_string, OutputAlwaysParsesBackToInputWhenValidUtf8) {
  simdjson::dom::parser p;
  std::string all;
  for (int c = 1; c < 128; ++c) all += static_cast<char>(c);
  all += "é模😀";
  for (const std::string& s : {all, std::string("\0x\0", 3)}) {
    const std::string lit = json_string(s);
    std::string_view back;
    ASSERT_EQ(p.parse(lit).get(back), simdjson::SUCCESS);
    EXPECT_EQ(back, s);
  }
}

// Plain runs are skipped 8 bytes at a time: every byte that needs a look must still be found
// wherever it falls in the run (each position of strings of 1..40 bytes, each kind of byte).
TEST(json_string, EveryEscapedByteIsFoundAtEveryPosition) {
  const std::string_view specials[] = {"\"",   "\\",   "\n",   std::string_view("\0", 1),
                                       "\x1f", "\x7f", "\xff", "\xc3\xa9"};
  for (std::string_view special : specials) {
    for (std::size_t len = 1; len <= 40; ++len) {
      for (std::size_t at = 0; at + special.size() <= len; ++at) {
        std::string in(len, 'a');
        in.replace(at, special.size(), special);
        std::string expected = "\"";
        for (char c : in.substr(0, at)) expected += c;
        expected += special == "\xff"
                        ? std::string("\xEF\xBF\xBD")
                        : json_string(special).substr(1, json_string(special).size() - 2);
        expected += in.substr(at + special.size());
        expected += '"';
        ASSERT_EQ(json_string(in), expected) << "len " << len << " at " << at;
      }
    }
  }
}

}  // namespace
}  // namespace ob::proxy::json
