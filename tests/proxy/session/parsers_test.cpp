#include "proxy/parsers.hpp"

#include "proxy/http/request_check.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ob::proxy {
namespace {

namespace bhttp = boost::beast::http;

// Beast recognises field names before the parser stores them; the id taken from its field
// must be the one the name comparison gives, for every field Beast knows.
TEST(Parsers, HeaderIdFromBeastFieldMatchesTheName) {
  int known = 0;
  for (int i = 1; i <= static_cast<int>(bhttp::field::xref); ++i) {
    auto f = static_cast<bhttp::field>(i);
    std::string name(bhttp::to_string(f));
    EXPECT_EQ(header_id_of(f, name), http::classify(name)) << name;
    if (http::classify(name) != http::header_id::other) ++known;
  }
  // Every id but those Beast does not know (x-api-key, api-key, x-goog-api-key, x-auth-token,
  // x-forwarded-for, x-forwarded-host, x-forwarded-proto, x-real-ip, openai-organization,
  // openai-project, retry-after-ms, x-ratelimit-remaining-requests,
  // x-ratelimit-remaining-tokens, x-request-id).
  EXPECT_EQ(known, http::header_id_count - 1 - 14);
  for (int i = 1; i < http::header_id_count; ++i) {
    auto id = static_cast<http::header_id>(i);
    EXPECT_EQ(header_id_of(bhttp::string_to_field(http::name_of(id)), http::name_of(id)), id)
        << http::name_of(id);
  }
}

// Chunk extensions are ignored, but a chunk line longer than http::max_chunk_line is refused.
TEST(Parsers, ChunkExtensionsAreBounded) {
  for (std::size_t ext : {std::size_t{10}, http::max_chunk_line - 3, http::max_chunk_line + 1}) {
    request_data req;
    request_parser p(req);
    p.eager(true);
    std::string msg = "POST /v1/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2;" +
                      std::string(ext - 1, 'a') + "\r\nhi\r\n0\r\n\r\n";
    beast::error_code ec;
    p.put(boost::asio::buffer(msg), ec);
    if (ext <= http::max_chunk_line) {
      EXPECT_FALSE(ec) << ext << ": " << ec.message();
      EXPECT_TRUE(p.is_done()) << ext;
      EXPECT_EQ(req.body.view(), "hi");
    } else {
      EXPECT_EQ(ec, beast::http::error::bad_chunk_extension) << ext;
    }
  }
}

TEST(Parsers, RequestHeadersKeepNamesOrderAndIds) {
  request_data req;
  request_parser p(req);
  std::string head =
      "POST /v1/chat/completions HTTP/1.1\r\n"
      "HOST: gw\r\n"
      "x-API-key: sk-1\r\n"
      "Content-Type: application/json\r\n"
      "content-type: text/plain\r\n"
      "Connection: keep-alive, X-Custom\r\n"
      "X-Custom: 1\r\n"
      "Retry-After-MS: 20\r\n"
      "Content-Length: 2\r\n"
      "\r\n{}";
  beast::error_code ec;
  p.eager(true);
  auto used = p.put(boost::asio::buffer(head), ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(used, head.size());
  ASSERT_EQ(req.headers.size(), 8u);
  EXPECT_EQ(req.headers.name(0), "HOST");
  EXPECT_EQ(req.headers.id(0), http::header_id::host);
  EXPECT_EQ(req.headers.id(1), http::header_id::x_api_key);
  EXPECT_EQ(req.headers.id(5), http::header_id::other);
  EXPECT_EQ(req.headers.id(6), http::header_id::retry_after_ms);
  EXPECT_EQ(req.headers.get(http::header_id::content_type), "application/json");
  EXPECT_EQ(req.headers.get(http::header_id::retry_after_ms), "20");
  std::string out;
  http::append_forwarded(out, req.headers, http::direction::to_upstream);
  EXPECT_EQ(out,
            "Content-Type: application/json\r\ncontent-type: text/plain\r\n"
            "Retry-After-MS: 20\r\n");
}

// An absolute-form target is kept as its origin form, which the request check then holds to
// the path rules; one with a bad authority is kept whole and refused with its own message.
TEST(Parsers, AbsoluteFormBecomesItsOriginForm) {
  struct row {
    std::string target, stored;
    bool ok;
  };
  for (const auto& r : std::initializer_list<row>{
           {"http://h/v1/models", "/v1/models", true},
           {"HTTPS://h:8443/v1/chat/completions?x=/..", "/v1/chat/completions?x=/..", true},
           {"http://h", "/", true},
           {"http://h?x", "/?x", true},
           {"http://h/../admin", "/../admin", false},
           {"http://h/v1/%2e%2e/admin", "/v1/%2e%2e/admin", false},
           {"http://h/v1%2Fx", "/v1%2Fx", false},
           {"http://h#x", "/#x", false},
           {"http://user@h/v1/models", "http://user@h/v1/models", false},
           {"http://h:x/v1/models", "http://h:x/v1/models", false},
           {"http:///v1/models", "http:///v1/models", false},
       }) {
    request_data req;
    request_parser p(req);
    std::string head = "GET " + r.target + " HTTP/1.1\r\nHost: gw\r\n\r\n";
    beast::error_code ec;
    p.put(boost::asio::buffer(head), ec);
    ASSERT_FALSE(ec) << r.target << ": " << ec.message();
    EXPECT_EQ(req.target, r.stored) << r.target;
    auto v = http::check_request(req.version, req.headers, req.target);
    EXPECT_EQ(v.ok(), r.ok) << r.target << ": " << v.message;
    if (r.stored.starts_with("http")) {
      EXPECT_NE(v.message.find("authority"), std::string_view::npos) << v.message;
    }
  }
}

TEST(Parsers, ResponseHeadersKeepIds) {
  http::header_list headers;
  std::string body;
  response_parser p(
      headers, [](void* ctx, std::string_view b) { static_cast<std::string*>(ctx)->append(b); },
      &body);
  std::string head =
      "HTTP/1.1 429 Too Many Requests\r\n"
      "retry-after: 3\r\n"
      "Content-Length: 2\r\n"
      "keep-alive: timeout=5\r\n"
      "CONNECTION: Keep-Alive\r\n"
      "X-Request-Id: r1\r\n"
      "\r\nok";
  beast::error_code ec;
  p.eager(true);
  p.put(boost::asio::buffer(head), ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(p.status(), 429);
  EXPECT_EQ(headers.get(http::header_id::retry_after), "3");
  EXPECT_EQ(headers.id(1), http::header_id::content_length);
  std::string out;
  http::append_forwarded(out, headers, http::direction::to_client);
  EXPECT_EQ(out, "retry-after: 3\r\n");  // the gateway sets x-request-id itself
  EXPECT_EQ(headers.get(http::header_id::x_request_id), "r1");
}

}  // namespace
}  // namespace ob::proxy
