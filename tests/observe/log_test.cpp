// Access lines: one logfmt line per request, stable field order, values quoted and escaped so a
// line can always be split back into its fields.
#include <gtest/gtest.h>

#include <regex>

#include "observe/log.hpp"

namespace ob::observe {
namespace {

std::string format_text(const request_record& r) {
  std::string line;
  format_access_line(line, r);
  return line;
}

// The line without its leading timestamp, checked separately.
std::string fields(const std::string& line) {
  static const std::regex time(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z access)");
  EXPECT_TRUE(std::regex_search(line, time)) << line;
  return line.substr(31);
}

TEST(AccessLine, AllFieldsInOrder) {
  request_record r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.group = "fast";
  r.target = "gpt-4o";
  r.provider = "https://api.openai.com/v1";
  r.status = 200;
  r.duration_ms = 12.3456;
  r.bytes_in = 1024;
  r.bytes_out = 7400;
  r.stream = true;
  r.attempts = 2;
  r.prompt_tokens = 19;
  r.completion_tokens = 16;
  r.total_tokens = 35;
  r.tried = "gpt-4o-mini:500";
  EXPECT_EQ(fields(format_text(r)),
            " method=POST path=/v1/chat/completions group=fast target=gpt-4o "
            "provider=https://api.openai.com/v1 status=200 duration_ms=12.346 bytes_in=1024 "
            "bytes_out=7400 stream=true attempts=2 prompt_tokens=19 completion_tokens=16 "
            "total_tokens=35 outcome=ok tried=gpt-4o-mini:500\n");
}

TEST(AccessLine, OptionalFieldsLeftOut) {
  request_record r;
  r.method = "GET";
  r.path = "/v1/models";
  r.status = 200;
  EXPECT_EQ(fields(format_text(r)),
            " method=GET path=/v1/models status=200 duration_ms=0.000 bytes_in=0 bytes_out=0 "
            "outcome=ok\n");
}

TEST(AccessLine, DurationDecimals) {
  request_record r;
  r.method = "GET";
  r.path = "/";
  for (auto [ms, text] : {std::pair{0.0004, "0.000"},
                          {0.0006, "0.001"},
                          {1.5, "1.500"},
                          {999.9999, "1000.000"},
                          {-3.0, "0.000"},
                          {120000.25, "120000.250"}}) {
    r.duration_ms = ms;
    EXPECT_NE(format_text(r).find(std::string(" duration_ms=") + text + " "), std::string::npos)
        << ms;
  }
}

TEST(AccessLine, ValuesThatWouldBreakTheLineAreQuoted) {
  request_record r;
  r.method = "POST";
  r.path = "/v1/a b";
  r.group = "";  // empty optional fields are left out, not quoted
  r.status = 502;
  r.outcome = "upstream_error";
  r.detail = "provider said \"no\"\r\nx=1\tback\\slash";
  const auto line = format_text(r);
  EXPECT_EQ(fields(line),
            " method=POST path=\"/v1/a b\" status=502 duration_ms=0.000 bytes_in=0 bytes_out=0 "
            "outcome=upstream_error detail=\"provider said \\\"no\\\"  x=1 back\\\\slash\"\n");
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line, whatever the values hold
}

TEST(AccessLine, EmptyRequiredValueIsQuoted) {
  request_record r;
  r.status = 400;
  EXPECT_NE(format_text(r).find(" method=\"\" path=\"\" status=400"), std::string::npos);
}

TEST(AccessLine, AppendsToWhatIsThereAndHandlesLongValues) {
  std::string buffer = "previous line\n";
  request_record r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  const std::string tried(5000, '"');  // worst case: every byte escaped
  r.tried = tried;
  format_access_line(buffer, r);
  ASSERT_EQ(buffer.rfind("previous line\n", 0), 0u);
  const auto at = buffer.find(" tried=\"");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(buffer.size(), at + 8 + 2 * tried.size() + 2);  // " tried=\"" ... "\"\n"
  EXPECT_EQ(buffer.back(), '\n');
}

TEST(AccessLine, NewFieldsComeAfterTheOriginalOnes) {
  request_record r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.status = 200;
  r.tried = "gpt-4o-mini:500";
  r.request_id = "0af7651916cd43dd";
  r.client = "[::1]:53412";
  r.client_name = "team a";
  r.ttfb_ms = 85.25;
  r.upstream_ms = 310.5;
  EXPECT_EQ(fields(format_text(r)),
            " method=POST path=/v1/chat/completions status=200 duration_ms=0.000 bytes_in=0 "
            "bytes_out=0 outcome=ok tried=gpt-4o-mini:500 request_id=0af7651916cd43dd "
            "client=[::1]:53412 client_name=\"team a\" ttfb_ms=85.250 upstream_ms=310.500\n");
}

TEST(AccessLine, StructuredTriedListIsPreferredAndEscaped) {
  const attempt tried[] = {{"llama3:8b", "timeout"}, {"gpt 4", "500"}};
  request_record r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.status = 200;
  r.tried = "ignored:when_list_is_set";
  r.tried_list = tried;
  EXPECT_NE(format_text(r).find(" tried=\"llama3:8b:timeout,gpt 4:500\"\n"), std::string::npos)
      << format_text(r);
  const attempt plain[] = {{"a", "connect"}};
  r.tried_list = plain;
  EXPECT_NE(format_text(r).find(" tried=a:connect\n"), std::string::npos) << format_text(r);
}

}  // namespace
}  // namespace ob::observe

namespace ob::observe {
namespace {

TEST(AccessLine, ProtocolOnlyForHttp2) {
  request_record r;
  r.method = "GET";
  r.path = "/healthz";
  r.status = 200;
  EXPECT_EQ(format_text(r).find("protocol="), std::string::npos);
  r.protocol = "h2";
  auto line = format_text(r);
  EXPECT_NE(line.find(" protocol=h2\n"), std::string::npos) << line;
}

}  // namespace
}  // namespace ob::observe
