// OpenAI endpoints the gateway cannot route: they act on objects a provider account stores
// (files, batches, fine-tuning jobs, assistants, ...), so a request naming such an object must
// reach the account that created it, which routing by model cannot promise. Pure.
#pragma once

#include <string_view>

namespace ob::proxy::http {

// The family of a path under /v1/ that cannot be routed ("files", "batches", ...), or "" for a
// path the gateway routes by model. `path` has no query.
std::string_view unroutable_family(std::string_view path);

}  // namespace ob::proxy::http
