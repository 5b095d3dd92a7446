#include "proxy/http/headers.hpp"

#include <gtest/gtest.h>

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
  EXPECT_EQ(out,
            "Content-Type: text/event-stream; charset=utf-8\r\nx-request-id: req_1\r\n"
            "openai-processing-ms: 12\r\n");
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
