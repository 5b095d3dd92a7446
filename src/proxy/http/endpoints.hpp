// OpenAI endpoints the gateway cannot route: they act on objects a provider account stores
// (files, batches, fine-tuning jobs, assistants, ...), so a request naming such an object must
// reach the account that created it, which routing by model cannot promise. Pure.
#pragma once

#include <string_view>

namespace ob::proxy::http {

// The family of a path under /v1/ that cannot be routed ("files", "batches", ...), or "" for a
// path the gateway routes by model. `path` has no query.
std::string_view unroutable_family(std::string_view path);

// Whether `path` only counts a request's input tokens and generates nothing: OpenAI's
// /v1/responses/input_tokens and Anthropic's /v1/messages/count_tokens (dialect/client.hpp).
// Neither is billed in tokens: such a request reserves and settles none for a key's or a
// provider's limits (docs/CONFIGURATION.md "Keys and limits"). `path` has no query.
bool counts_tokens_only(std::string_view path);

}  // namespace ob::proxy::http
