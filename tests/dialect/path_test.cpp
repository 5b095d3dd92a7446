// The upstream path mapping rule (dialect/path.hpp) as a table: base x api x client target.
#include <gtest/gtest.h>

#include "config/parse.hpp"
#include "dialect/path.hpp"

namespace ob::dialect {
namespace {

config::provider provider_of(std::string base,
                             config::provider_api api = config::provider_api::openai,
                             std::string name = "m", std::string api_version = "") {
  config::provider p;
  p.base = base;
  std::string err;
  p.url = *config::parse_base_url(base, &err);
  p.api = api;
  p.name = std::move(name);
  p.api_version = std::move(api_version);
  return p;
}

struct path_case {
  const char* name;
  const char* base;
  config::provider_api api;
  const char* model;
  const char* api_version;
  const char* target;
  const char* expect;
};

constexpr auto openai = config::provider_api::openai;
constexpr auto azure = config::provider_api::azure;
constexpr auto anthropic = config::provider_api::anthropic;

const path_case cases[] = {
    {"openai_no_path", "https://api.openai.com", openai, "m", "", "/v1/chat/completions",
     "/v1/chat/completions"},
    {"openai_trailing_slash", "https://api.openai.com/", openai, "m", "", "/v1/embeddings",
     "/v1/embeddings"},
    {"prefix_without_version_kept", "https://gw.example/openai", openai, "m", "",
     "/v1/chat/completions", "/openai/v1/chat/completions"},
    {"ollama_v1_no_doubling", "http://127.0.0.1:11434/v1", openai, "m", "", "/v1/chat/completions",
     "/v1/chat/completions"},
    {"ollama_v1_slash", "http://127.0.0.1:11434/v1/", openai, "m", "", "/v1/chat/completions",
     "/v1/chat/completions"},
    {"groq", "https://api.groq.com/openai/v1", openai, "m", "", "/v1/chat/completions",
     "/openai/v1/chat/completions"},
    {"gemini", "https://generativelanguage.googleapis.com/v1beta/openai", openai, "m", "",
     "/v1/chat/completions", "/v1beta/openai/chat/completions"},
    {"openrouter", "https://openrouter.ai/api/v1", openai, "m", "", "/v1/chat/completions",
     "/api/v1/chat/completions"},
    {"version_v2", "https://x.example/v2", openai, "m", "", "/v1/embeddings", "/v2/embeddings"},
    {"query_kept", "https://api.groq.com/openai/v1", openai, "m", "",
     "/v1/chat/completions?a=1&b=2", "/openai/v1/chat/completions?a=1&b=2"},
    {"query_no_path", "https://api.openai.com", openai, "m", "", "/v1/models?x=y",
     "/v1/models?x=y"},
    // Only an Azure deployment target sets api-version: elsewhere the client's passes as sent.
    {"openai_client_api_version_kept", "https://api.openai.com", openai, "m", "",
     "/v1/chat/completions?api-version=2024-01-01&x=1",
     "/v1/chat/completions?api-version=2024-01-01&x=1"},
    {"non_v1_target_appended", "http://127.0.0.1:11434/v1", openai, "m", "", "/health",
     "/v1/health"},
    {"v1x_not_stripped", "http://127.0.0.1:11434/v1", openai, "m", "", "/v1x/a", "/v1/v1x/a"},
    {"azure_deployment", "https://res.openai.azure.com", azure, "gpt4o-prod", "",
     "/v1/chat/completions",
     "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"},
    {"azure_api_version", "https://res.openai.azure.com", azure, "d", "2025-01-01-preview",
     "/v1/embeddings", "/openai/deployments/d/embeddings?api-version=2025-01-01-preview"},
    {"azure_client_query", "https://res.openai.azure.com", azure, "d", "",
     "/v1/chat/completions?x=1",
     "/openai/deployments/d/chat/completions?x=1&api-version=2024-10-21"},
    // The configured api_version is the one the deployment supports: a client's own api-version
    // (any case, percent-encoded or not, with or without a value, once or more) is dropped, the
    // client's other parameters kept in their order.
    {"azure_client_api_version_dropped", "https://res.openai.azure.com", azure, "d", "",
     "/v1/chat/completions?api-version=2023-05-15",
     "/openai/deployments/d/chat/completions?api-version=2024-10-21"},
    {"azure_client_api_version_between_others", "https://res.openai.azure.com", azure, "d",
     "2025-01-01-preview", "/v1/chat/completions?x=1&api-version=2023-05-15&y=2",
     "/openai/deployments/d/chat/completions?x=1&y=2&api-version=2025-01-01-preview"},
    {"azure_client_api_version_first", "https://res.openai.azure.com", azure, "d", "",
     "/v1/embeddings?api-version=2023-05-15&x=1",
     "/openai/deployments/d/embeddings?x=1&api-version=2024-10-21"},
    {"azure_client_api_version_last", "https://res.openai.azure.com", azure, "d", "",
     "/v1/embeddings?x=1&api-version=2023-05-15",
     "/openai/deployments/d/embeddings?x=1&api-version=2024-10-21"},
    {"azure_client_api_version_twice", "https://res.openai.azure.com", azure, "d", "",
     "/v1/chat/completions?api-version=a&x=1&api-version=b",
     "/openai/deployments/d/chat/completions?x=1&api-version=2024-10-21"},
    {"azure_client_api_version_any_spelling", "https://res.openai.azure.com", azure, "d", "",
     "/v1/chat/completions?API-Version=a&api%2Dversion=b&Api%2dVERSION&api-version=",
     "/openai/deployments/d/chat/completions?api-version=2024-10-21"},
    {"azure_client_look_alikes_kept", "https://res.openai.azure.com", azure, "d", "",
     "/v1/chat/completions?api-versions=1&xapi-version=2&api=3&version=4&api-version2",
     "/openai/deployments/d/chat/completions?api-versions=1&xapi-version=2&api=3&version=4&"
     "api-version2&api-version=2024-10-21"},
    {"azure_client_empty_params_kept", "https://res.openai.azure.com", azure, "d", "",
     "/v1/chat/completions?x=1&&api-version=a&&y=2",
     "/openai/deployments/d/chat/completions?x=1&&&y=2&api-version=2024-10-21"},
    {"azure_client_empty_query", "https://res.openai.azure.com", azure, "d", "",
     "/v1/chat/completions?", "/openai/deployments/d/chat/completions?&api-version=2024-10-21"},
    {"azure_v1_api", "https://res.openai.azure.com", azure, "d", "v1", "/v1/chat/completions",
     "/openai/v1/chat/completions"},
    // Azure's v1 API gets no configured api-version: the client's passes, once.
    {"azure_v1_api_client_api_version_kept", "https://res.openai.azure.com", azure, "d", "v1",
     "/v1/responses?api-version=preview", "/openai/v1/responses?api-version=preview"},
    {"azure_v1_api_query", "https://res.openai.azure.com", azure, "d", "v1", "/v1/responses?x=1",
     "/openai/v1/responses?x=1"},
    {"azure_behind_gateway_path", "https://apim.example/team-a", azure, "d", "",
     "/v1/chat/completions",
     "/team-a/openai/deployments/d/chat/completions?api-version=2024-10-21"},
    {"anthropic_no_path", "https://api.anthropic.com", anthropic, "m", "", "/v1/messages",
     "/v1/messages"},
    {"anthropic_v1", "https://api.anthropic.com/v1", anthropic, "m", "", "/v1/messages",
     "/v1/messages"},
};

class PathMapping : public ::testing::TestWithParam<path_case> {};

TEST_P(PathMapping, MapsTheClientTarget) {
  const auto& c = GetParam();
  auto p = provider_of(c.base, c.api, c.model, c.api_version);
  std::string err;
  auto r = make_route(p, &err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(map_path(*r, c.target), c.expect);
  EXPECT_LE(map_path(*r, c.target).size(), r->max_size(c.target));
}

INSTANTIATE_TEST_SUITE_P(Table, PathMapping, ::testing::ValuesIn(cases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(PathMapping, AzureBaseNamingOpenaiOrAVersionIsRefused) {
  for (auto base : {"https://res.openai.azure.com/openai", "https://res.openai.azure.com/openai/v1",
                    "https://res.openai.azure.com/openai/deployments/d", "https://x.example/v1"}) {
    std::string err;
    EXPECT_FALSE(make_route(provider_of(base, azure), &err)) << base;
    EXPECT_NE(err.find("resource endpoint"), std::string::npos) << err;
  }
}

TEST(PathMapping, VersionSegments) {
  for (auto s : {"v1", "v2", "v1beta", "v1beta1", "v2alpha", "V1", "v10"})
    EXPECT_TRUE(is_version_segment(s)) << s;
  for (auto s : {"v", "version", "api", "openai", "1", "v1-beta", "vx1", ""})
    EXPECT_FALSE(is_version_segment(s)) << s;
}

TEST(PathMapping, NamesParam) {
  for (auto p : {"api-version=1", "api-version", "api-version=", "API-VERSION=x", "Api-Version=a=b",
                 "api%2Dversion=1", "api%2dversion", "%61pi-version=1", "%41%50%49%2d%56ERSION"})
    EXPECT_TRUE(names_param(p, "api-version")) << p;
  for (auto p :
       {"", "=api-version", "api-versions=1", "xapi-version=1", "api-versio", "api_version=1",
        "api%2version=1", "api%2Xversion", "api-version%3D1", "api%2", "api+version=1"})
    EXPECT_FALSE(names_param(p, "api-version")) << p;
}

TEST(PathMapping, AzureHealthCheckAsksTheResourceModelList) {
  auto p = provider_of("https://res.openai.azure.com", azure, "d");
  std::string err;
  auto r = *make_route(p, &err);
  EXPECT_EQ(map_check_path(p, r, "/v1/models"), "/openai/models?api-version=2024-10-21");
  EXPECT_EQ(map_check_path(p, r, "/v1/other"),
            "/openai/deployments/d/other?api-version=2024-10-21");
  auto v1 = provider_of("https://res.openai.azure.com", azure, "d", "v1");
  EXPECT_EQ(map_check_path(v1, *make_route(v1, &err), "/v1/models"), "/openai/v1/models");
  auto groq = provider_of("https://api.groq.com/openai/v1");
  EXPECT_EQ(map_check_path(groq, *make_route(groq, &err), "/v1/models"), "/openai/v1/models");
}

}  // namespace
}  // namespace ob::dialect
