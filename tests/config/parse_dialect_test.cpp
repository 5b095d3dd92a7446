// Config: providers[].api, auth, api_version and headers — every key, every refused
// combination with the path it names.
#include <gtest/gtest.h>

#include "config/parse_helpers.hpp"

namespace ob::config {
namespace {

using namespace ob::config::testing;

// One provider's members after the common ones.
std::string provider_doc(std::string_view members,
                         std::string_view base = "https://api.example.com",
                         std::string_view name = "m") {
  return doc("", std::string(R"("group":"g","name":")") + std::string(name) + R"(","base":")" +
                     std::string(base) + R"(","key":"k")" + (members.empty() ? "" : ",") +
                     std::string(members));
}

TEST(ConfigDialect, Defaults) {
  auto r = parse_text(provider_doc(""));
  ASSERT_TRUE(r.ok()) << dump(r);
  const auto& p = r.cfg->providers[0];
  EXPECT_EQ(p.api, provider_api::openai);
  EXPECT_EQ(p.auth, auth_mode::bearer);
  EXPECT_TRUE(p.headers.empty());
  EXPECT_EQ(p.api_version, "");
}

TEST(ConfigDialect, AzureDefaultsToApiKeyAuth) {
  auto r = parse_text(provider_doc(R"("api":"azure")", "https://res.openai.azure.com", "gpt4o"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->providers[0].api, provider_api::azure);
  EXPECT_EQ(r.cfg->providers[0].auth, auth_mode::api_key);
}

TEST(ConfigDialect, EveryKeyRead) {
  auto r = parse_text(provider_doc(R"("api":"azure","auth":"bearer","api_version":"v1",
      "headers":{"HTTP-Referer":"https://app.example","X-Title":"${TITLE}"})",
                                   "https://res.openai.azure.com", "d.1_x-y"),
                      fake_env({{"TITLE", "My App"}}));
  ASSERT_TRUE(r.ok()) << dump(r);
  const auto& p = r.cfg->providers[0];
  EXPECT_EQ(p.auth, auth_mode::bearer);
  EXPECT_EQ(p.api_version, "v1");
  ASSERT_EQ(p.headers.size(), 2u);
  EXPECT_EQ(p.headers[0],
            (std::pair<std::string, std::string>{"HTTP-Referer", "https://app.example"}));
  EXPECT_EQ(p.headers[1], (std::pair<std::string, std::string>{"X-Title", "My App"}));
}

TEST(ConfigDialect, AuthModes) {
  struct {
    const char* text;
    auth_mode mode;
  } cases[] = {{"bearer", auth_mode::bearer},
               {"api-key", auth_mode::api_key},
               {"x-api-key", auth_mode::x_api_key}};
  for (const auto& c : cases) {
    auto r = parse_text(provider_doc(std::string(R"("auth":")") + c.text + "\""));
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_EQ(r.cfg->providers[0].auth, c.mode) << c.text;
  }
  auto none = parse_text(provider_doc(R"("auth":"none")"));
  ASSERT_TRUE(none.ok()) << dump(none);
  EXPECT_EQ(none.cfg->providers[0].auth, auth_mode::none);
  EXPECT_TRUE(has_warning(none, "providers[0].key", "not sent"));
}

TEST(ConfigDialect, MaxTokensField) {
  // Default: OpenAI's own API (any case of its host) names it max_completion_tokens; an
  // OpenAI-compatible server or Azure, max_tokens.
  EXPECT_TRUE(parse_text(provider_doc("", "https://api.openai.com/v1"))
                  .cfg->providers[0]
                  .max_completion_tokens);
  EXPECT_TRUE(parse_text(provider_doc("", "https://API.OpenAI.com"))
                  .cfg->providers[0]
                  .max_completion_tokens);
  EXPECT_FALSE(parse_text(provider_doc("", "http://127.0.0.1:8000/v1"))
                   .cfg->providers[0]
                   .max_completion_tokens);
  EXPECT_FALSE(parse_text(provider_doc(R"("api":"azure")", "https://r.openai.azure.com"))
                   .cfg->providers[0]
                   .max_completion_tokens);
  struct {
    const char* members;
    const char* base;
    bool want;
  } cases[] = {
      {R"("max_tokens_field":"max_completion_tokens")", "http://127.0.0.1:8000/v1", true},
      {R"("api":"azure","max_tokens_field":"max_completion_tokens")", "https://r.openai.azure.com",
       true},
      {R"("max_tokens_field":"max_tokens")", "https://api.openai.com", false},
  };
  for (const auto& c : cases) {
    auto r = parse_text(provider_doc(c.members, c.base));
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_EQ(r.cfg->providers[0].max_completion_tokens, c.want) << c.members;
  }
}

// Every refused value or combination, and the path its error names.
struct refused_case {
  const char* name;
  const char* members;
  const char* base;
  const char* model;
  const char* path;
  const char* part;
};

const refused_case refused[] = {
    {"unknown_api", R"("api":"gemini")", "https://api.example.com", "m", "providers[0].api",
     "not a known api"},
    {"api_not_string", R"("api":1)", "https://api.example.com", "m", "providers[0].api",
     "a string"},
    {"unknown_auth", R"("auth":"basic")", "https://api.example.com", "m", "providers[0].auth",
     "not a known auth mode"},
    {"api_version_not_azure", R"("api_version":"2024-10-21")", "https://api.example.com", "m",
     "providers[0].api_version", "only applies to api \"azure\""},
    {"max_tokens_field_unknown", R"("max_tokens_field":"max_output_tokens")",
     "https://api.example.com", "m", "providers[0].max_tokens_field",
     "not \"max_tokens\" or \"max_completion_tokens\""},
    {"max_tokens_field_anthropic", R"("api":"anthropic","max_tokens_field":"max_tokens")",
     "https://api.anthropic.com", "m", "providers[0].max_tokens_field",
     "only applies to OpenAI-API targets"},
    {"api_version_bad", R"("api":"azure","api_version":"2024 10")", "https://r.openai.azure.com",
     "m", "providers[0].api_version", "not an API version"},
    {"api_version_empty", R"("api":"azure","api_version":"")", "https://r.openai.azure.com", "m",
     "providers[0].api_version", "not an API version"},
    {"azure_bad_deployment", R"("api":"azure")", "https://r.openai.azure.com", "my/dep",
     "providers[0].name", "Azure deployment name"},
    {"azure_base_with_openai", R"("api":"azure")", "https://r.openai.azure.com/openai", "m",
     "providers[0].base", "resource endpoint"},
    {"azure_base_with_openai_v1", R"("api":"azure")", "https://r.openai.azure.com/openai/v1", "m",
     "providers[0].base", "resource endpoint"},
    {"headers_not_object", R"("headers":["a"])", "https://api.example.com", "m",
     "providers[0].headers", "an object"},
    {"header_value_not_string", R"("headers":{"X-A":1})", "https://api.example.com", "m",
     "providers[0].headers.X-A", "a string"},
    {"header_bad_name", R"("headers":{"X A":"1"})", "https://api.example.com", "m",
     "providers[0].headers.X A", "not a valid header name"},
    {"header_host", R"("headers":{"Host":"x"})", "https://api.example.com", "m",
     "providers[0].headers.Host", "cannot be configured"},
    {"header_content_length", R"("headers":{"content-length":"1"})", "https://api.example.com", "m",
     "providers[0].headers.content-length", "framing or hop-by-hop"},
    {"header_transfer_encoding", R"("headers":{"Transfer-Encoding":"chunked"})",
     "https://api.example.com", "m", "providers[0].headers.Transfer-Encoding", "cannot be"},
    {"header_connection", R"("headers":{"Connection":"close"})", "https://api.example.com", "m",
     "providers[0].headers.Connection", "cannot be"},
    {"header_keep_alive", R"("headers":{"Keep-Alive":"1"})", "https://api.example.com", "m",
     "providers[0].headers.Keep-Alive", "cannot be"},
    {"header_upgrade", R"("headers":{"Upgrade":"h2c"})", "https://api.example.com", "m",
     "providers[0].headers.Upgrade", "cannot be"},
    {"header_te", R"("headers":{"TE":"trailers"})", "https://api.example.com", "m",
     "providers[0].headers.TE", "cannot be"},
    {"header_expect", R"("headers":{"Expect":"100-continue"})", "https://api.example.com", "m",
     "providers[0].headers.Expect", "cannot be"},
    {"header_accept_encoding", R"("headers":{"Accept-Encoding":"gzip"})", "https://api.example.com",
     "m", "providers[0].headers.Accept-Encoding", "identity"},
    {"header_request_id", R"("headers":{"X-Request-Id":"1"})", "https://api.example.com", "m",
     "providers[0].headers.X-Request-Id", "set by the gateway"},
    {"header_twice_any_case", R"("headers":{"X-A":"1","x-a":"2"})", "https://api.example.com", "m",
     "providers[0].headers.x-a", "twice"},
    {"header_crlf", R"("headers":{"X-A":"1\r\nX-B: 2"})", "https://api.example.com", "m",
     "providers[0].headers.X-A", "control characters"},
    {"header_env_unset", R"("headers":{"X-A":"${NOPE_UNSET}"})", "https://api.example.com", "m",
     "providers[0].headers.X-A", "not set"},
    {"header_authorization_with_bearer", R"("headers":{"Authorization":"Basic x"})",
     "https://api.example.com", "m", "providers[0].headers.Authorization", "conflicts"},
    {"header_api_key_with_azure", R"("api":"azure","headers":{"API-KEY":"x"})",
     "https://r.openai.azure.com", "m", "providers[0].headers.API-KEY", "conflicts"},
};

class ConfigDialectRefused : public ::testing::TestWithParam<refused_case> {};

TEST_P(ConfigDialectRefused, NamesThePath) {
  const auto& c = GetParam();
  auto r = parse_text(provider_doc(c.members, c.base, c.model));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, c.path, c.part)) << dump(r);
}

INSTANTIATE_TEST_SUITE_P(Table, ConfigDialectRefused, ::testing::ValuesIn(refused),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ConfigDialect, OwnAuthorizationAllowedWithAuthNone) {
  auto r = parse_text(provider_doc(R"("auth":"none","headers":{"Authorization":"Basic eDp5"})"));
  EXPECT_TRUE(r.ok()) << dump(r);
}

TEST(ConfigDialect, VersionedBasesAreAccepted) {
  for (auto base : {"http://127.0.0.1:11434/v1", "https://api.groq.com/openai/v1",
                    "https://generativelanguage.googleapis.com/v1beta/openai",
                    "https://openrouter.ai/api/v1"}) {
    auto r = parse_text(provider_doc("", base));
    EXPECT_TRUE(r.ok()) << base << "\n" << dump(r);
  }
}

}  // namespace
}  // namespace ob::config
