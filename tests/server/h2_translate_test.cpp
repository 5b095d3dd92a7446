#include "server/h2_translate.hpp"

#include <gtest/gtest.h>

namespace ob::server::h2 {
namespace {

TEST(H2RequestHead, WritesAnHttp11HeadWithHostAndLength) {
  request_head h(64 * 1024);
  h.add(":method", "POST");
  h.add(":scheme", "https");
  h.add(":authority", "gw.example:8443");
  h.add(":path", "/v1/chat/completions");
  h.add("authorization", "Bearer t");
  h.add("content-type", "application/json");
  h.add("content-length", "999");  // ours replaces it
  ASSERT_FALSE(h.bad());
  ASSERT_FALSE(h.too_large());
  EXPECT_EQ(h.finish(12),
            "POST /v1/chat/completions HTTP/1.1\r\nHost: gw.example:8443\r\n"
            "authorization: Bearer t\r\ncontent-type: application/json\r\n"
            "Content-Length: 12\r\n\r\n");
}

TEST(H2RequestHead, KeepsTheClientsContentLengthForTheFraming) {
  request_head h(1024);
  h.add(":method", "POST");
  h.add(":path", "/v1/x");
  EXPECT_FALSE(h.content_length());
  EXPECT_EQ(h.finish_chunked(), "POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  h.add("content-length", "12345");
  ASSERT_TRUE(h.content_length());
  EXPECT_EQ(*h.content_length(), 12345u);
  request_head bad(1024);
  bad.add("content-length", "12x");
  EXPECT_FALSE(bad.content_length());
}

TEST(H2RequestHead, HostFieldWhenNoAuthority) {
  request_head h(1024);
  h.add(":method", "GET");
  h.add(":path", "/healthz");
  h.add("host", "a.example");
  EXPECT_EQ(h.finish(0), "GET /healthz HTTP/1.1\r\nHost: a.example\r\nContent-Length: 0\r\n\r\n");
  EXPECT_FALSE(h.is_head());
}

TEST(H2RequestHead, DropsConnectionSpecificFields) {
  request_head h(1024);
  h.add(":method", "GET");
  h.add(":path", "/");
  for (const char* n : {"connection", "keep-alive", "transfer-encoding", "upgrade", "te",
                        "proxy-connection", "expect"})
    h.add(n, "x");
  EXPECT_EQ(h.finish(0), "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
}

TEST(H2RequestHead, RefusesWhatHttp11CannotCarry) {
  struct field {
    std::string_view name, value;
  };
  const field cases[] = {{"x-a", "1\r\nInjected: yes"},
                         {"x-a", std::string_view("a\0b", 3)},
                         {"x:a", "1"},
                         {"x a", "1"},
                         {":path", "/a b"},
                         {":protocol", "websocket"}};
  for (const auto& c : cases) {
    request_head h(1024);
    h.add(":method", "GET");
    h.add(":path", "/");
    h.add(c.name, c.value);
    EXPECT_TRUE(h.bad()) << c.name;
  }
  request_head no_path(1024);
  no_path.add(":method", "GET");
  EXPECT_TRUE(no_path.bad());
}

TEST(H2RequestHead, CountsTheHeaderListAsHttp2Does) {
  request_head h(100);
  h.add(":method", "GET");  // 7 + 3 + 32 = 42
  h.add(":path", "/");      // 5 + 1 + 32 = 38 -> 80
  EXPECT_FALSE(h.too_large());
  h.add("a", "bcdefghijklmnopqrst");  // 1 + 19 + 32 = 52 -> 132
  EXPECT_TRUE(h.too_large());
}

TEST(H2RequestHead, HostMustNameTheAuthority) {
  auto conflict = [](std::string_view authority, std::string_view host) {
    request_head h(1024);
    h.add(":method", "GET");
    h.add(":path", "/v1/models");
    if (!authority.empty()) h.add(":authority", authority);
    if (!host.empty()) h.add("host", host);
    return h.host_conflict();
  };
  EXPECT_FALSE(conflict("gw.example:8443", ""));
  EXPECT_FALSE(conflict("", "gw.example"));
  EXPECT_FALSE(conflict("gw.example:8443", "gw.example:8443"));
  EXPECT_FALSE(conflict("GW.example:8443", "gw.EXAMPLE:8443"));
  EXPECT_TRUE(conflict("gw.example:8443", "other.example:8443"));
  EXPECT_TRUE(conflict("gw.example:8443", "gw.example"));
  // an empty port, or :scheme's default one, names the same host
  EXPECT_FALSE(conflict("gw.example", "gw.example:443"));
  EXPECT_FALSE(conflict("gw.example:", "gw.example"));
  EXPECT_FALSE(conflict("[::1]:443", "[::1]"));
  EXPECT_TRUE(conflict("gw.example", "gw.example:80"));
  EXPECT_TRUE(conflict("[::1]", "[::2]"));
  request_head plain(1024);
  plain.add(":method", "GET");
  plain.add(":scheme", "http");
  plain.add(":path", "/");
  plain.add(":authority", "gw.example:80");
  plain.add("host", "gw.example");
  EXPECT_FALSE(plain.host_conflict());
}

TEST(H2ConnectionSpecific, AnyCase) {
  EXPECT_TRUE(connection_specific("Transfer-Encoding"));
  EXPECT_TRUE(connection_specific("connection"));
  EXPECT_FALSE(connection_specific("content-length"));
  EXPECT_FALSE(connection_specific("x-request-id"));
}

TEST(H2ResetBudget, BurstThenRate) {
  auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  reset_budget b(3, 10, t0);
  EXPECT_TRUE(b.spend(t0));
  EXPECT_TRUE(b.spend(t0));
  EXPECT_TRUE(b.spend(t0));
  EXPECT_FALSE(b.spend(t0));
  EXPECT_FALSE(b.spend(t0 + std::chrono::milliseconds(50)));  // half a token back
  EXPECT_TRUE(b.spend(t0 + std::chrono::milliseconds(160)));
  EXPECT_TRUE(b.spend(t0 + std::chrono::seconds(10)));  // refilled, capped at the burst
  EXPECT_TRUE(b.spend(t0 + std::chrono::seconds(10)));
  EXPECT_TRUE(b.spend(t0 + std::chrono::seconds(10)));
  EXPECT_FALSE(b.spend(t0 + std::chrono::seconds(10)));
}

}  // namespace
}  // namespace ob::server::h2
