#include "proxy/http/request_check.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace ob::proxy::http {
namespace {

using header_vec = std::vector<std::pair<std::string, std::string>>;

struct request_row {
  const char* name;
  int version;
  header_vec headers;
  std::string target;
  int status;  // 0 = accepted
  bool close;
};

request_verdict run(const request_row& r) {
  header_list h;
  for (const auto& [n, v] : r.headers) h.add(n, v);
  return check_request(r.version, h, r.target);
}

const std::string chat = "/v1/chat/completions";

const std::vector<request_row> requests = {
    {"plain HTTP/1.1", 11, {{"Host", "x"}, {"Content-Length", "5"}}, chat, 0, false},
    {"HTTP/1.1 without a body", 11, {{"host", "x"}}, chat, 0, false},
    {"HTTP/1.0 without Host", 10, {{"Content-Length", "5"}}, chat, 0, false},
    {"HTTP/1.0 with Host", 10, {{"Host", "x"}}, chat, 0, false},
    {"HTTP/1.1 without Host", 11, {{"Content-Length", "5"}}, chat, 400, true},
    {"two Host headers", 11, {{"Host", "a"}, {"Host", "b"}}, chat, 400, true},
    {"two equal Host headers", 11, {{"Host", "a"}, {"HOST", "a"}}, chat, 400, true},
    {"two Host headers in HTTP/1.0", 10, {{"Host", "a"}, {"Host", "b"}}, chat, 400, true},
    {"chunked", 11, {{"Host", "x"}, {"Transfer-Encoding", "chunked"}}, chat, 0, false},
    {"CHUNKED", 11, {{"Host", "x"}, {"Transfer-Encoding", "CHUNKED"}}, chat, 0, false},
    {"chunked with spaces",
     11,
     {{"Host", "x"}, {"Transfer-Encoding", " \tchunked \t"}},
     chat,
     0,
     false},
    {"chunked with empty list elements",
     11,
     {{"Host", "x"}, {"Transfer-Encoding", ", chunked ,"}},
     chat,
     0,
     false},
    {"gzip, chunked", 11, {{"Host", "x"}, {"Transfer-Encoding", "gzip, chunked"}}, chat, 501, true},
    {"gzip then chunked headers",
     11,
     {{"Host", "x"}, {"Transfer-Encoding", "gzip"}, {"Transfer-Encoding", "chunked"}},
     chat,
     501,
     true},
    {"identity, chunked",
     11,
     {{"Host", "x"}, {"Transfer-Encoding", "identity,chunked"}},
     chat,
     501,
     true},
    {"chunked, gzip", 11, {{"Host", "x"}, {"Transfer-Encoding", "chunked, gzip"}}, chat, 400, true},
    {"gzip alone", 11, {{"Host", "x"}, {"Transfer-Encoding", "gzip"}}, chat, 400, true},
    {"chunked twice in one",
     11,
     {{"Host", "x"}, {"Transfer-Encoding", "chunked, chunked"}},
     chat,
     400,
     true},
    {"chunked twice in two",
     11,
     {{"Host", "x"}, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}},
     chat,
     400,
     true},
    {"chunked with a parameter",
     11,
     {{"Host", "x"}, {"Transfer-Encoding", "chunked;q=1"}},
     chat,
     400,
     true},
    {"empty", 11, {{"Host", "x"}, {"Transfer-Encoding", ""}}, chat, 400, true},
    {"only commas", 11, {{"Host", "x"}, {"Transfer-Encoding", " , ,"}}, chat, 400, true},
    {"not a token", 11, {{"Host", "x"}, {"Transfer-Encoding", "gz ip, chunked"}}, chat, 400, true},
    {"quoted", 11, {{"Host", "x"}, {"Transfer-Encoding", "\"chunked\""}}, chat, 400, true},
    {"chunked in HTTP/1.0", 10, {{"Host", "x"}, {"Transfer-Encoding", "chunked"}}, chat, 400, true},
    {"chunked and Content-Length",
     11,
     {{"Host", "x"}, {"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}},
     chat,
     400,
     true},
    {"Content-Length and gzip",
     11,
     {{"Host", "x"}, {"Content-Length", "5"}, {"Transfer-Encoding", "gzip"}},
     chat,
     400,
     true},
    {"dot segment", 11, {{"Host", "x"}}, "/v1/../admin", 400, false},
    {"encoded dot segment", 11, {{"Host", "x"}}, "/v1/%2e%2e/admin", 400, false},
    // (request_parser turns a valid absolute-form target into its origin form first)
    {"absolute-form", 11, {{"Host", "x"}}, "http://x/v1/chat", 400, false},
    {"Host with a port", 11, {{"Host", "127.0.0.1:8080"}}, chat, 0, false},
    {"Host an IPv6 literal", 11, {{"Host", "[::1]:8080"}}, chat, 0, false},
    {"empty Host", 11, {{"Host", ""}}, chat, 0, false},
    {"Host with a space", 11, {{"Host", "a b"}}, chat, 400, false},
    {"Host with a path", 11, {{"Host", "evil.example/x"}}, chat, 400, false},
    {"Host with userinfo", 11, {{"Host", "user@gw.example"}}, chat, 400, false},
    {"Host with two ports", 11, {{"Host", "gw:80:81"}}, chat, 400, false},
    {"bad Host in HTTP/1.0", 10, {{"Host", "a,b c"}}, chat, 400, false},
    // framing problems are reported first (they decide whether to close)
    {"framing before bad Host",
     11,
     {{"Host", "a b"}, {"Transfer-Encoding", "gzip"}},
     chat,
     400,
     true},
    // framing problems are reported before path problems (they decide whether to close)
    {"framing before path",
     11,
     {{"Host", "x"}, {"Transfer-Encoding", "gzip"}},
     "/v1/../x",
     400,
     true},
};

TEST(RequestCheck, Table) {
  for (const auto& r : requests) {
    auto v = run(r);
    if (r.status == 0) {
      EXPECT_TRUE(v.ok()) << r.name << ": " << v.message;
      continue;
    }
    ASSERT_FALSE(v.ok()) << r.name;
    EXPECT_EQ(status_of(v.kind), r.status) << r.name << ": " << v.message;
    EXPECT_EQ(v.close, r.close) << r.name;
  }
}

TEST(RequestCheck, PathProblemsUseTheirOwnKindAndMessage) {
  header_list h;
  h.add("Host", "x");
  auto v = check_request(11, h, "/v1/..%2fadmin");
  EXPECT_EQ(v.kind, error_kind::bad_path);
  EXPECT_NE(v.message.find("encoded '/'"), std::string_view::npos) << v.message;
}

TEST(RequestCheck, ValidHost) {
  for (std::string_view h :
       {"", "x", "gw.example", "GW.Example.", "127.0.0.1", "gw.example:8443", "gw:", "[::1]",
        "[::1]:80", "[2001:db8::a]", "[v1.fe]", "[::ffff:127.0.0.1]:8443", "[V1F.x:y]",
        "xn--bcher-kva.example", "a%2Db", "a_b~c!$&'()*+,;=d"})
    EXPECT_TRUE(valid_host(h)) << h;
  for (std::string_view h : {" x",
                             "x ",
                             "a b",
                             "a\tb",
                             "gw/x",
                             "gw?x",
                             "gw#x",
                             "u@gw",
                             "u:p@gw",
                             "gw:80:81",
                             "gw:8o",
                             "gw:-1",
                             "[::1",
                             "[]",
                             "[zz]",
                             "[1.2.3.4]",
                             "[v]",
                             "[v1.]",
                             "[vx.y]",
                             "[fe80::1%25eth0]",
                             "[::1]x",
                             "[::1]:8o",
                             "::1",
                             "[::1/x]",
                             "a%zz",
                             "a%2",
                             "a%",
                             "b\xc3\xbc"
                             "cher.example",
                             "\"gw\"",
                             "<gw>"})
    EXPECT_FALSE(valid_host(h)) << h;
}

TEST(RequestCheck, SplitAbsolute) {
  auto a = split_absolute("http://gw.example:8080/v1/chat/completions?x=1");
  EXPECT_TRUE(a.absolute);
  EXPECT_TRUE(a.valid);
  EXPECT_EQ(a.origin, "/v1/chat/completions?x=1");
  a = split_absolute("HTTPS://[::1]/v1/models");
  EXPECT_TRUE(a.valid);
  EXPECT_EQ(a.origin, "/v1/models");
  a = split_absolute("http://gw.example");
  EXPECT_TRUE(a.valid);
  EXPECT_EQ(a.origin, "");
  a = split_absolute("http://gw.example?x");
  EXPECT_TRUE(a.valid);
  EXPECT_EQ(a.origin, "?x");
  for (std::string_view bad :
       {"http:///v1/models", "http://user@gw/v1/models", "https://gw:x/v1", "http://a b/v1"}) {
    a = split_absolute(bad);
    EXPECT_TRUE(a.absolute) << bad;
    EXPECT_FALSE(a.valid) << bad;
  }
  for (std::string_view other :
       {"/v1/models", "*", "", "ftp://gw/v1", "http:/gw/v1", "http:gw", "/http://gw/v1"})
    EXPECT_FALSE(split_absolute(other).absolute) << other;
}

TEST(RequestCheck, ChunkPending) {
  EXPECT_TRUE(chunk_pending_ok(""));
  EXPECT_TRUE(chunk_pending_ok("1"));
  EXPECT_TRUE(chunk_pending_ok("1f;name=value"));
  EXPECT_TRUE(chunk_pending_ok("\r\n1f"));  // the CRLF ending the previous chunk's data
  EXPECT_TRUE(chunk_pending_ok("\r"));
  EXPECT_TRUE(chunk_pending_ok("0\r\nX-Trailer: 1\r\n"));
  EXPECT_TRUE(chunk_pending_ok(std::string(max_chunk_line, 'a')));
  EXPECT_FALSE(chunk_pending_ok(std::string(max_chunk_line + 1, 'a')));
  EXPECT_FALSE(chunk_pending_ok("5\nhello"));
  EXPECT_FALSE(chunk_pending_ok("\n"));
  EXPECT_FALSE(chunk_pending_ok("\r\n5\nhel"));
  EXPECT_FALSE(chunk_pending_ok("0\r\nX-Trailer: 1\n"));
  EXPECT_FALSE(chunk_pending_ok("5;x=\"a\nb\""));
}

}  // namespace
}  // namespace ob::proxy::http
