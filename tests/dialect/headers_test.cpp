// The header lines a target adds to every request (dialect/headers.hpp).
#include <gtest/gtest.h>

#include "dialect/headers.hpp"

namespace ob::dialect {
namespace {

using config::auth_mode;

config::provider with(std::string key, auth_mode a,
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
  config::provider p;
  p.key = std::move(key);
  p.auth = a;
  p.headers = std::move(headers);
  return p;
}

TEST(FixedHeaders, AuthModes) {
  struct {
    auth_mode mode;
    const char* expect;
  } cases[] = {
      {auth_mode::bearer, "Authorization: Bearer sk-1\r\n"},
      {auth_mode::api_key, "api-key: sk-1\r\n"},
      {auth_mode::x_api_key, "x-api-key: sk-1\r\n"},
      {auth_mode::none, ""},
  };
  for (const auto& c : cases) {
    auto h = make_fixed_headers(with("sk-1", c.mode));
    EXPECT_EQ(h.lines, c.expect);
    EXPECT_TRUE(h.replaced.empty());
  }
}

TEST(FixedHeaders, EmptyKeySendsNoCredential) {
  for (auto m : {auth_mode::bearer, auth_mode::api_key, auth_mode::x_api_key})
    EXPECT_EQ(make_fixed_headers(with("", m)).lines, "");
}

TEST(FixedHeaders, ConfiguredHeadersFollowTheCredentialInOrder) {
  auto h = make_fixed_headers(with("k", auth_mode::x_api_key,
                                   {{"anthropic-version", "2023-06-01"},
                                    {"HTTP-Referer", "https://app.example"},
                                    {"X-Title", "My App"}}));
  EXPECT_EQ(h.lines,
            "x-api-key: k\r\nanthropic-version: 2023-06-01\r\nHTTP-Referer: "
            "https://app.example\r\nX-Title: My App\r\n");
  EXPECT_EQ(h.replaced, (std::vector<std::string>{"anthropic-version", "http-referer", "x-title"}));
}

TEST(FixedHeaders, AnthropicGetsItsVersionOnce) {
  auto p = with("k", auth_mode::x_api_key);
  p.api = config::provider_api::anthropic;
  auto h = make_fixed_headers(p);
  EXPECT_EQ(h.lines, "x-api-key: k\r\nanthropic-version: 2023-06-01\r\n");
  EXPECT_EQ(h.replaced, (std::vector<std::string>{"anthropic-version"}));

  p.headers = {{"Anthropic-Version", "2024-01-01"}};
  h = make_fixed_headers(p);
  EXPECT_EQ(h.lines, "x-api-key: k\r\nAnthropic-Version: 2024-01-01\r\n");
  EXPECT_EQ(h.replaced, (std::vector<std::string>{"anthropic-version"}));
}

TEST(FixedHeaders, AuthNoneWithOwnAuthorization) {
  auto h = make_fixed_headers(with("", auth_mode::none, {{"Authorization", "Basic dTpw"}}));
  EXPECT_EQ(h.lines, "Authorization: Basic dTpw\r\n");
}

}  // namespace
}  // namespace ob::dialect
