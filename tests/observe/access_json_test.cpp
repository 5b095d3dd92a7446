// JSON access lines: every field, null for unknowns, the tried list, and escaping that keeps
// each line one valid UTF-8 JSON object whatever the values hold.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <regex>

#include "observe/fields.hpp"
#include "observe/log.hpp"

namespace ob::observe {
namespace {

namespace json = boost::json;

std::string format(const request_record& r) {
  std::string line;
  format_access_json(line, r);
  return line;
}

json::object parsed(const std::string& line) {
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  boost::system::error_code ec;
  auto v = json::parse(line, ec);
  EXPECT_FALSE(ec) << ec.message() << ": " << line;
  EXPECT_TRUE(v.is_object()) << line;
  return v.is_object() ? v.as_object() : json::object{};
}

request_record full() {
  request_record r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.group = "fast";
  r.target = "gpt-4o";
  r.provider = "https://api.openai.com/v1";
  r.status = 200;
  r.duration_ms = 120.5;
  r.bytes_in = 1024;
  r.bytes_out = 7400;
  r.stream = true;
  r.attempts = 2;
  r.prompt_tokens = 19;
  r.completion_tokens = 16;
  r.total_tokens = 35;
  r.tried = "gpt-4o-mini:500";
  r.request_id = "req-1";
  r.client = "127.0.0.1:40000";
  r.client_name = "team-a";
  r.ttfb_ms = 40.25;
  r.upstream_ms = 100.0;
  return r;
}

TEST(AccessJson, AllFieldsInOrder) {
  auto line = format(full());
  static const std::regex shape(
      R"(^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","type":"access",)");
  EXPECT_TRUE(std::regex_search(line, shape)) << line;
  EXPECT_EQ(line.substr(line.find(",\"request_id\"")),
            R"(,"request_id":"req-1","client":"127.0.0.1:40000","client_name":"team-a",)"
            R"("method":"POST","path":"/v1/chat/completions","group":"fast","target":"gpt-4o",)"
            R"("provider":"https://api.openai.com/v1","status":200,"attempts":2,)"
            R"("tried":[{"target":"gpt-4o-mini","cause":"500"}],"bytes_in":1024,)"
            R"("bytes_out":7400,"ttfb_ms":40.250,"duration_ms":120.500,"upstream_ms":100.000,)"
            R"("overhead_ms":20.500,"prompt_tokens":19,"completion_tokens":16,)"
            R"("total_tokens":35,"stream":true,"outcome":"ok","detail":null})"
            "\n");
  parsed(line);
}

TEST(AccessJson, UnknownsAreNull) {
  request_record r;
  r.method = "GET";
  r.path = "/v1/models";
  r.status = 401;
  r.duration_ms = 0.5;
  auto o = parsed(format(r));
  for (const char* k :
       {"request_id", "client", "client_name", "group", "target", "provider", "ttfb_ms",
        "upstream_ms", "prompt_tokens", "completion_tokens", "total_tokens", "detail"})
    EXPECT_TRUE(o.at(k).is_null()) << k;
  EXPECT_TRUE(o.at("tried").as_array().empty());
  EXPECT_EQ(o.at("stream"), false);
  EXPECT_EQ(o.at("attempts"), 0);
  // No upstream: the whole duration is the gateway's own.
  EXPECT_DOUBLE_EQ(o.at("overhead_ms").to_number<double>(), 0.5);
}

TEST(AccessJson, TriedFromTheStringSplitsAtTheLastColon) {
  request_record r;
  r.tried = "llama3:8b:timeout,gpt-4o:connect,odd";
  auto tried = parsed(format(r)).at("tried").as_array();
  ASSERT_EQ(tried.size(), 3u);
  EXPECT_EQ(tried[0], (json::object{{"target", "llama3:8b"}, {"cause", "timeout"}}));
  EXPECT_EQ(tried[1], (json::object{{"target", "gpt-4o"}, {"cause", "connect"}}));
  EXPECT_EQ(tried[2], (json::object{{"target", "odd"}, {"cause", ""}}));
}

TEST(AccessJson, StructuredTriedListIsPreferred) {
  const attempt list[] = {{"a,b", "500"}, {"c\"d", "timeout"}};
  request_record r;
  r.tried = "ignored:x";
  r.tried_list = list;
  auto tried = parsed(format(r)).at("tried").as_array();
  ASSERT_EQ(tried.size(), 2u);
  EXPECT_EQ(tried[0].at("target"), "a,b");
  EXPECT_EQ(tried[1].at("target"), "c\"d");
  EXPECT_EQ(tried[1].at("cause"), "timeout");
}

// Every string value goes through one escaper; this table pins it.
struct escape_case {
  const char* name;
  std::string input;
  std::string literal;  // expected JSON literal, quotes included
};

const escape_case escape_cases[] = {
    {"plain", "abc", R"("abc")"},
    {"quote and backslash", "a\"b\\c", R"("a\"b\\c")"},
    {"short escapes", "\n\r\t\b\f", R"("\n\r\t\b\f")"},
    {"other control bytes", std::string("\x00\x01\x1f\x7f", 4), "\"\\u0000\\u0001\\u001f\x7f\""},
    {"valid two bytes", "caf\xC3\xA9", "\"caf\xC3\xA9\""},
    {"valid three bytes", "\xE2\x82\xAC", "\"\xE2\x82\xAC\""},
    {"valid four bytes", "\xF0\x9F\x98\x80", "\"\xF0\x9F\x98\x80\""},
    {"lone continuation", "a\x80z", "\"a\xEF\xBF\xBDz\""},
    {"truncated at end", "a\xE2\x82", "\"a\xEF\xBF\xBD\xEF\xBF\xBD\""},
    {"overlong slash", "\xC0\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},
    {"overlong three", "\xE0\x80\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
    {"surrogate", "\xED\xA0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
    {"above U+10FFFF", "\xF4\x90\x80\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
    {"0xFF", "\xFF", "\"\xEF\xBF\xBD\""},
    {"quote after bad lead", "\xC3\"", "\"\xEF\xBF\xBD\\\"\""},
};

TEST(AccessJson, StringEscapingTable) {
  for (const auto& c : escape_cases) {
    std::string out(detail::json_expansion * c.input.size() + 2, '\0');
    char* end = detail::put_json_string(out.data(), c.input);
    out.resize(static_cast<std::size_t>(end - out.data()));
    EXPECT_EQ(out, c.literal) << c.name;
  }
}

// The escaper copies plain runs 8 bytes at a time: every kind of byte at every offset of a
// longer string, against the same string escaped one piece at a time through the table above.
TEST(AccessJson, StringEscapingAtEveryOffset) {
  const std::string pieces[] = {"\"",   "\\",       "\n",           std::string(1, '\0'), "\x1f",
                                "\x7f", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",   "\x80",
                                "\xFF", "\xC3"};
  auto escaped = [](std::string_view in) {
    std::string out(detail::json_expansion * in.size() + 2, '\0');
    out.resize(static_cast<std::size_t>(detail::put_json_string(out.data(), in) - out.data()));
    return out;
  };
  for (const auto& piece : pieces) {
    for (std::size_t at = 0; at <= 24; ++at) {
      for (std::size_t after : {0u, 1u, 7u, 8u, 9u, 20u}) {
        std::string before(at, 'a'), rest(after, 'z');
        std::string whole = before + piece + rest;
        // Plain bytes are themselves; the piece alone (quotes stripped) is what the table pins.
        std::string inner = escaped(piece);
        std::string expect = "\"" + before + inner.substr(1, inner.size() - 2) + rest + "\"";
        EXPECT_EQ(escaped(whole), expect) << "piece " << inner << " at " << at << " then " << after;
      }
    }
  }
  EXPECT_EQ(escaped(std::string(33, 'x')), "\"" + std::string(33, 'x') + "\"");
}

TEST(AccessJson, HostileValuesInEveryFieldStayOneValidLine) {
  const std::string hostile = std::string("x\"}\n{\"injected\":1,\x01\xFF\xC3", 22) + "\\";
  request_record r = full();
  r.method = r.path = r.group = r.target = r.provider = r.outcome = r.detail = hostile;
  r.request_id = r.client = r.client_name = r.tried = hostile;
  auto line = format(r);
  auto o = parsed(line);
  EXPECT_FALSE(o.contains("injected"));
  EXPECT_EQ(o.at("path").as_string().size(), o.at("detail").as_string().size());
}

TEST(AccessJson, WorstCaseFitsTheReservation) {
  // Every byte a control byte (6 output bytes each) in every field; appended after other text.
  const std::string worst(3000, '\x01');
  request_record r;
  r.method = r.path = r.group = r.target = r.provider = r.outcome = r.detail = worst;
  r.request_id = r.client = r.client_name = r.tried = worst;
  std::string buffer = "before\n";
  format_access_json(buffer, r);
  ASSERT_EQ(buffer.rfind("before\n", 0), 0u);
  parsed(buffer.substr(7));
}

}  // namespace
}  // namespace ob::observe

namespace ob::observe {
namespace {

TEST(AccessJson, ProtocolOnlyForHttp2) {
  request_record r;
  r.method = "GET";
  r.path = "/healthz";
  EXPECT_FALSE(parsed(format(r)).contains("protocol"));
  r.protocol = "h2";
  EXPECT_EQ(parsed(format(r)).at("protocol"), "h2");
}

}  // namespace
}  // namespace ob::observe
