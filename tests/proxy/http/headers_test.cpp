#include "proxy/http/headers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ob::proxy::http {
namespace {

TEST(Headers, IequalsAndTokens) {
  EXPECT_TRUE(iequals("Content-Type", "content-type"));
  EXPECT_FALSE(iequals("Content-Type", "content-typ"));
  EXPECT_TRUE(has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(has_token(" close ", "close"));
  EXPECT_FALSE(has_token("closed", "close"));
  EXPECT_FALSE(has_token("", "close"));
}

TEST(Headers, ListStoresAndFinds) {
  header_list h;
  h.add("Content-Type", "application/json");
  h.add("X-Trace", "abc");
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.get("content-type"), "application/json");
  EXPECT_EQ(h.get("x-TRACE"), "abc");
  EXPECT_EQ(h.get("missing"), "");
  EXPECT_TRUE(h.contains("X-Trace"));
  h.clear();
  EXPECT_EQ(h.size(), 0u);
  EXPECT_FALSE(h.contains("X-Trace"));
}

TEST(Headers, ToUpstreamDropsHopByHopCredentialsAndOwnHeaders) {
  header_list h;
  h.add("Host", "gateway.local");
  h.add("Authorization", "Bearer sk-client");
  h.add("Content-Length", "12");
  h.add("Connection", "keep-alive, X-Drop-Me");
  h.add("Keep-Alive", "timeout=5");
  h.add("Transfer-Encoding", "chunked");
  h.add("TE", "trailers");
  h.add("Upgrade", "h2c");
  h.add("Proxy-Authorization", "Basic x");
  h.add("Accept-Encoding", "gzip");
  h.add("Expect", "100-continue");
  h.add("X-Api-Key", "sk-client");
  h.add("api-key", "sk-client");
  h.add("X-Drop-Me", "1");
  h.add("Content-Type", "application/json");
  h.add("OpenAI-Beta", "assistants=v2");
  h.add("X-Stainless-Lang", "js");
  std::string out;
  append_forwarded(out, h, direction::to_upstream);
  EXPECT_EQ(out,
            "Content-Type: application/json\r\nOpenAI-Beta: assistants=v2\r\n"
            "X-Stainless-Lang: js\r\n");
  EXPECT_EQ(out.find("sk-client"), std::string::npos);
}

TEST(Headers, ToUpstreamDropsClientIdentityAndEveryHeaderHoldingTheToken) {
  header_list h;
  h.add("x-goog-api-key", "AIza-anything");
  h.add("X-Auth-Token", "t");
  h.add("Cookie", "session=abc");
  h.add("X-Forwarded-For", "203.0.113.7");
  h.add("Forwarded", "for=203.0.113.7");
  h.add("X-Real-IP", "203.0.113.7");
  h.add("X-Forwarded-Host", "gw");
  h.add("X-Forwarded-Proto", "https");
  h.add("X-Keep", "1");
  h.add("X-Custom-Auth", "token=sk-client;v=1");
  h.add("X-Exact", "sk-client");
  h.add("X-Near", "sk-clien");
  h.add("X-Other-Case", "SK-CLIENT");  // tokens are case-sensitive
  std::string out;
  append_forwarded(out, h, direction::to_upstream, {.secret = "sk-client"});
  EXPECT_EQ(out, "X-Keep: 1\r\nX-Near: sk-clien\r\nX-Other-Case: SK-CLIENT\r\n");
  // Without a token only the names decide; towards the client nothing of this is dropped.
  out.clear();
  append_forwarded(out, h, direction::to_upstream);
  EXPECT_EQ(out,
            "X-Keep: 1\r\nX-Custom-Auth: token=sk-client;v=1\r\nX-Exact: sk-client\r\n"
            "X-Near: sk-clien\r\nX-Other-Case: SK-CLIENT\r\n");
  out.clear();
  append_forwarded(out, h, direction::to_client, {.secret = "sk-client"});
  EXPECT_NE(out.find("Cookie: session=abc"), std::string::npos);
}

// A provider's configured headers replace the client's of the same name (any case).
TEST(Headers, ReplacedNamesAreNotForwarded) {
  header_list h;
  h.add("X-Title", "client title");
  h.add("Content-Type", "application/json");
  h.add("http-referer", "https://client.example");
  h.add("X-Titles", "kept");
  std::vector<std::string> replaced{"x-title", "http-referer"};
  std::string out;
  append_forwarded(out, h, direction::to_upstream, {.replaced = &replaced});
  EXPECT_EQ(out, "Content-Type: application/json\r\nX-Titles: kept\r\n");
}

TEST(Headers, RateLimitHeadersDroppedOnlyWhenAsked) {
  header_list h;
  h.add("x-ratelimit-remaining-requests", "9");
  h.add("Content-Type", "application/json");
  h.add("x-ratelimit", "short name, kept");
  std::string kept, dropped;
  append_forwarded(kept, h, direction::to_client);
  append_forwarded(dropped, h, direction::to_client,
                   {.rate_limit_headers = forward_filter::rate_limits::drop});
  EXPECT_EQ(kept,
            "x-ratelimit-remaining-requests: 9\r\nContent-Type: application/json\r\n"
            "x-ratelimit: short name, kept\r\n");
  EXPECT_EQ(dropped, "Content-Type: application/json\r\nx-ratelimit: short name, kept\r\n");
}

// The filter's fields are named: a pointer or a bool given in another argument's place (as the
// old positional tail `secret, bool, const vector*` allowed) does not compile.
template <class... Tail>
constexpr bool accepts_tail = requires(std::string& out, const header_list& in, Tail... tail) {
  append_forwarded(out, in, direction::to_upstream, tail...);
};
static_assert(accepts_tail<> && accepts_tail<forward_filter>);
static_assert(!accepts_tail<std::string_view, const std::vector<std::string>*>);
static_assert(!accepts_tail<std::string_view, bool, const std::vector<std::string>*>);
static_assert(!accepts_tail<const std::vector<std::string>*>);
static_assert(!accepts_tail<bool>);
static_assert(!std::is_convertible_v<bool, forward_filter::rate_limits>);

TEST(Headers, ToClientKeepsEndToEndHeaders) {
  header_list h;
  h.add("Content-Type", "text/event-stream; charset=utf-8");
  h.add("Content-Length", "100");
  h.add("Transfer-Encoding", "chunked");
  h.add("Connection", "keep-alive");
  h.add("x-request-id", "req_1");
  h.add("openai-processing-ms", "12");
  std::string out;
  append_forwarded(out, h, direction::to_client);
  // x-request-id is the gateway's own (the provider's goes out as x-upstream-request-id).
  EXPECT_EQ(out,
            "Content-Type: text/event-stream; charset=utf-8\r\n"
            "openai-processing-ms: 12\r\n");
}

// OpenAI's account selectors never cross the gateway: the client's would apply to the
// gateway's key (OpenAI answers 401 to a pairing that does not match), the provider's name the
// operator's account. The provider's cookies (its CDN's) do not reach the client either.
TEST(Headers, AccountSelectorsAndProviderCookiesAreNotForwarded) {
  header_list req;
  req.add("OpenAI-Organization", "org-client");
  req.add("OpenAI-Project", "proj_client");
  req.add("OpenAI-Beta", "assistants=v2");
  std::string up;
  append_forwarded(up, req, direction::to_upstream);
  EXPECT_EQ(up, "OpenAI-Beta: assistants=v2\r\n");

  header_list answer;
  answer.add("openai-organization", "operator-org");
  answer.add("openai-project", "proj_operator");
  answer.add("openai-version", "2020-10-01");
  answer.add("set-cookie", "__cf_bm=x; path=/; domain=.api.openai.com; HttpOnly; Secure");
  answer.add("Set-Cookie", "_cfuvid=y; path=/; domain=.api.openai.com");
  std::string client;
  append_forwarded(client, answer, direction::to_client);
  EXPECT_EQ(client, "openai-version: 2020-10-01\r\n");
}

TEST(Headers, IequalsOnlyFoldsLetters) {
  EXPECT_TRUE(iequals("X-API-KEY", "x-api-key"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("@", "`"));  // 0x40 / 0x60: same case bit, not letters
  EXPECT_FALSE(iequals("[", "{"));
  EXPECT_FALSE(iequals("a-b", "a_b"));
  EXPECT_FALSE(iequals("\xc1", "\xe1"));
}

TEST(Headers, ClassifyIsCaseInsensitiveAndRoundTrips) {
  for (int i = 1; i < header_id_count; ++i) {
    auto id = static_cast<header_id>(i);
    std::string upper(name_of(id));
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(classify(name_of(id)), id) << name_of(id);
    EXPECT_EQ(classify(upper), id) << upper;
  }
  EXPECT_EQ(classify("Content-Type"), header_id::content_type);
  EXPECT_EQ(classify("X-Api-Key"), header_id::x_api_key);
  EXPECT_EQ(classify("Retry-After-Ms"), header_id::retry_after_ms);
  EXPECT_EQ(classify("Content-Typo"), header_id::other);  // same length as content-type
  EXPECT_EQ(classify("x-api-keys"), header_id::other);
  EXPECT_EQ(classify("tf"), header_id::other);
  EXPECT_EQ(classify(""), header_id::other);
  EXPECT_EQ(classify(std::string(100, 'a')), header_id::other);
  EXPECT_EQ(name_of(header_id::other), "");
}

TEST(Headers, LookupsByIdAndNameFindTheFirstOfDuplicates) {
  header_list h;
  h.add("X-Trace", "1");
  h.add("content-TYPE", "text/plain");
  h.add("Content-Type", "application/json");
  h.add("Retry-After", "5");
  h.add("x-trace", "2");
  // Passing the id skips the name comparison (the parsers know it from Beast).
  h.add("Authorization", "Bearer a", header_id::authorization);
  EXPECT_EQ(h.id(0), header_id::other);
  EXPECT_EQ(h.id(1), header_id::content_type);
  EXPECT_EQ(h.get(header_id::content_type), "text/plain");
  EXPECT_EQ(h.get("CONTENT-type"), "text/plain");
  EXPECT_EQ(h.get(header_id::retry_after), "5");
  EXPECT_EQ(h.get(header_id::retry_after_ms), "");
  EXPECT_EQ(h.get(header_id::authorization), "Bearer a");
  EXPECT_EQ(h.get("x-trace"), "1");
  EXPECT_EQ(h.get("x-tracf"), "");
  EXPECT_EQ(h.get("x-trac"), "");
  EXPECT_TRUE(h.contains(header_id::retry_after));
  EXPECT_FALSE(h.contains(header_id::expect));
  EXPECT_FALSE(h.contains("Retry-After-Ms"));
  EXPECT_EQ(h.name(4), "x-trace");
  EXPECT_EQ(h.value(4), "2");
  EXPECT_EQ(h.line(4), "x-trace: 2\r\n");
  EXPECT_EQ(h.line(3).data() + h.line(3).size(), h.line(4).data());
  h.clear();
  EXPECT_FALSE(h.contains(header_id::content_type));
  h.add("Expect", "100-continue");
  EXPECT_EQ(h.get(header_id::expect), "100-continue");
  EXPECT_EQ(h.get(header_id::content_type), "");
}

TEST(Headers, IsFilteredByDirection) {
  EXPECT_TRUE(is_filtered("Transfer-Encoding", direction::to_client, ""));
  EXPECT_TRUE(is_filtered("PROXY-CONNECTION", direction::to_upstream, ""));
  EXPECT_TRUE(is_filtered("Content-Length", direction::to_client, ""));
  EXPECT_TRUE(is_filtered("content-length", direction::to_upstream, ""));
  EXPECT_TRUE(is_filtered("X-Api-Key", direction::to_upstream, ""));
  EXPECT_FALSE(is_filtered("X-Api-Key", direction::to_client, ""));
  EXPECT_TRUE(is_filtered("Api-Key", direction::to_upstream, ""));
  EXPECT_FALSE(is_filtered("Host", direction::to_client, ""));
  EXPECT_FALSE(is_filtered("Content-Type", direction::to_upstream, ""));
  EXPECT_TRUE(is_filtered("X-Foo", direction::to_client, "close, x-foo"));
  EXPECT_FALSE(is_filtered("X-Foo", direction::to_client, "close, x-foot"));
}

TEST(Headers, ConnectionTokensDropTheHeadersTheyName) {
  header_list h;
  h.add("connection", "Keep-Alive,  x-hop-one ,X-HOP-TWO,close");
  h.add("X-Hop-One", "1");
  h.add("X-Keep", "k");
  h.add("x-hop-two", "2");
  h.add("X-Hop-Tw0", "same length, other name");
  h.add("Close", "a header named like a token");
  h.add("Connection", "x-keep");  // every Connection line counts (RFC 9110 section 5.3)
  std::string out;
  append_forwarded(out, h, direction::to_client);
  EXPECT_EQ(out, "X-Hop-Tw0: same length, other name\r\n");

  // Without a Connection header, nothing is dropped by name.
  h.clear();
  h.add("Close", "c");
  h.add("X-Hop-One", "1");
  out.clear();
  append_forwarded(out, h, direction::to_upstream);
  EXPECT_EQ(out, "Close: c\r\nX-Hop-One: 1\r\n");
}

TEST(Headers, ForwardingKeepsDuplicatesInOrderAndDirectionRules) {
  header_list h;
  h.add("Set-Cookie", "a=1");
  h.add("X-API-KEY", "sk-1");
  h.add("content-length", "3");
  h.add("Api-Key", "sk-2");
  h.add("set-cookie", "b=2");
  h.add("Authorization", "Bearer x");
  h.add("Host", "h");
  h.add("Set-Cookie", "c=3");
  std::string up, client;
  append_forwarded(up, h, direction::to_upstream);
  append_forwarded(client, h, direction::to_client);
  EXPECT_EQ(up, "Set-Cookie: a=1\r\nset-cookie: b=2\r\nSet-Cookie: c=3\r\n");
  // (A provider's Set-Cookie never reaches the client.)
  EXPECT_EQ(client, "X-API-KEY: sk-1\r\nApi-Key: sk-2\r\nAuthorization: Bearer x\r\nHost: h\r\n");
}

// The rules as first written (name lists compared one by one), to check the id-based filter
// against on random header lists.
bool reference_filtered(std::string_view name, direction dir, std::string_view connection) {
  static constexpr std::array<std::string_view, 9> hop = {"connection",
                                                          "keep-alive",
                                                          "proxy-connection",
                                                          "te",
                                                          "trailer",
                                                          "transfer-encoding",
                                                          "upgrade",
                                                          "proxy-authenticate",
                                                          "proxy-authorization"};
  static constexpr std::array<std::string_view, 15> up = {
      "host",      "authorization",   "content-length",   "accept-encoding",   "expect",
      "x-api-key", "api-key",         "x-goog-api-key",   "x-auth-token",      "cookie",
      "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip"};
  auto in = [&](auto& list) {
    return std::any_of(list.begin(), list.end(), [&](auto n) { return iequals(n, name); });
  };
  if (in(hop)) return true;
  // Set by the gateway in both directions; OpenAI's account selectors cross in neither.
  if (iequals(name, "content-length") || iequals(name, "x-request-id") ||
      iequals(name, "openai-organization") || iequals(name, "openai-project"))
    return true;
  if (dir == direction::to_upstream && in(up)) return true;
  if (dir == direction::to_client && iequals(name, "set-cookie")) return true;
  return !connection.empty() && has_token(connection, name);
}

TEST(Headers, ForwardingMatchesTheNameListRules) {
  const std::vector<std::string> pool = {"connection",
                                         "keep-alive",
                                         "proxy-connection",
                                         "te",
                                         "trailer",
                                         "transfer-encoding",
                                         "upgrade",
                                         "proxy-authenticate",
                                         "proxy-authorization",
                                         "host",
                                         "authorization",
                                         "content-length",
                                         "accept-encoding",
                                         "expect",
                                         "x-api-key",
                                         "api-key",
                                         "x-goog-api-key",
                                         "x-auth-token",
                                         "cookie",
                                         "forwarded",
                                         "x-forwarded-for",
                                         "x-forwarded-host",
                                         "x-forwarded-proto",
                                         "x-real-ip",
                                         "x-real-iq",
                                         "content-type",
                                         "retry-after",
                                         "retry-after-ms",
                                         "x-request-id",
                                         "openai-organization",
                                         "openai-project",
                                         "set-cookie",
                                         "openai-beta",
                                         "close",
                                         "x-a",
                                         "tf",
                                         "content-lengtx",
                                         "x-api-kez",
                                         "user-agent",
                                         "accept",
                                         "date",
                                         "server"};
  std::mt19937 rng(12345);
  auto pick = [&](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  };
  auto mixed_case = [&](std::string s) {
    for (auto& c : s)
      if (pick(2)) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  };
  for (int round = 0; round < 2000; ++round) {
    header_list h;
    std::vector<std::pair<std::string, std::string>> all;
    std::size_t count = pick(12);
    for (std::size_t i = 0; i < count; ++i) {
      std::string name = mixed_case(pool[pick(pool.size())]);
      std::string value = "v" + std::to_string(i);
      if (iequals(name, "connection")) {
        value.clear();
        for (std::size_t t = pick(4); t-- > 0;) {
          if (!value.empty()) value += pick(2) ? ", " : ",";
          value += mixed_case(pool[pick(pool.size())]);
        }
      }
      h.add(name, value);
      all.emplace_back(name, value);
    }
    // Every Connection line counts, as one list (RFC 9110 section 5.3).
    std::string connection;
    for (auto& [n, v] : all)
      if (iequals(n, "connection")) connection += (connection.empty() ? "" : ",") + v;
    for (auto dir : {direction::to_upstream, direction::to_client}) {
      std::string expected, out;
      for (auto& [n, v] : all)
        if (!reference_filtered(n, dir, connection)) expected += n + ": " + v + "\r\n";
      append_forwarded(out, h, dir);
      ASSERT_EQ(out, expected) << "round " << round;
      for (auto& [n, v] : all)
        ASSERT_EQ(is_filtered(n, dir, connection), reference_filtered(n, dir, connection)) << n;
    }
  }
}

TEST(Headers, ListGrowsKeepingEarlierHeaders) {
  header_list h;
  for (int i = 0; i < 300; ++i) h.add("X-H" + std::to_string(i), std::string(i, 'v'));
  h.add("Empty", {});
  ASSERT_EQ(h.size(), 301u);
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(h.name(i), "X-H" + std::to_string(i));
    ASSERT_EQ(h.value(i), std::string(i, 'v'));
  }
  EXPECT_EQ(h.line(300), "Empty: \r\n");
  EXPECT_TRUE(h.contains("empty"));
  h.clear();
  h.add("A", "b");
  EXPECT_EQ(h.line(0), "A: b\r\n");
}

TEST(Headers, ShrinkReleasesLargeArena) {
  header_list h;
  h.add("X-Big", std::string(200000, 'a'));
  h.shrink_if_above(1000);
  h.clear();
  h.add("A", "b");
  EXPECT_EQ(h.get("a"), "b");
}

}  // namespace
}  // namespace ob::proxy::http
