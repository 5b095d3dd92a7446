// Which /v1/ paths name account-stored objects the gateway cannot route (proxy/http/endpoints.hpp).
#include <gtest/gtest.h>

#include "proxy/http/endpoints.hpp"

namespace ob::proxy::http {
namespace {

TEST(Endpoints, UnroutableFamilies) {
  struct {
    const char* path;
    const char* family;
  } cases[] = {
      {"/v1/files", "files"},
      {"/v1/files/file-abc/content", "files"},
      {"/v1/uploads", "uploads"},
      {"/v1/batches", "batches"},
      {"/v1/batches/batch_1/cancel", "batches"},
      {"/v1/fine_tuning/jobs", "fine_tuning"},
      {"/v1/vector_stores/vs_1/files", "vector_stores"},
      {"/v1/assistants", "assistants"},
      {"/v1/threads/t/runs", "threads"},
      {"/v1/realtime", "realtime"},
      {"/v1/chat/completions", ""},
      {"/v1/completions", ""},
      {"/v1/embeddings", ""},
      {"/v1/responses", ""},
      {"/v1/responses/", ""},
      {"/v1/responses/resp_1", "responses"},
      {"/v1/responses/resp_1/input_items", "responses"},
      {"/v1/responses/resp_1/cancel", "responses"},
      {"/v1/responses/compact", ""},  // carry a model, store nothing: routed
      {"/v1/responses/input_tokens", ""},
      {"/v1/responses/compactx", "responses"},
      {"/v1/chat/completions/", ""},
      {"/v1/chat/completions/chatcmpl-1", "chat completions"},
      {"/v1/chat/completions/chatcmpl-1/messages", "chat completions"},
      {"/v1/chat", ""},
      {"/v1/audio/speech", ""},
      {"/v1/filesystem", ""},  // a prefix of a family name is not that family
      {"/v1/", ""},
      {"/files", ""},
  };
  for (const auto& c : cases) EXPECT_EQ(unroutable_family(c.path), c.family) << c.path;
}

TEST(Endpoints, TokenCountsGenerateNothing) {
  for (auto p : {"/v1/responses/input_tokens", "/v1/messages/count_tokens"})
    EXPECT_TRUE(counts_tokens_only(p)) << p;
  for (auto p :
       {"/v1/responses", "/v1/messages", "/v1/chat/completions", "/v1/embeddings",
        "/v1/responses/input_tokens/", "/v1/messages/count_tokens/x", "/v1/responses/compact",
        "/v2/messages/count_tokens", "/v1/Messages/count_tokens", "/v1/responses/input_tokenz", ""})
    EXPECT_FALSE(counts_tokens_only(p)) << p;
}

}  // namespace
}  // namespace ob::proxy::http
