// The Anthropic Messages API as a client dialect (dialect/client.hpp): clients such as Claude
// Code and the Anthropic SDKs calling POST /v1/messages and /v1/messages/count_tokens.
#pragma once

#include <cstdint>
#include <string_view>

#include "dialect/anthropic/translate.hpp"
#include "dialect/client.hpp"

namespace ob::dialect::anthropic {

// One instance for the process (stateless; each attempt gets its own translator).
const client_codec* messages_codec_instance();

// "/v1/messages" or "/v1/messages/count_tokens" (a path without its query).
bool is_messages_path(std::string_view path);

// count_tokens for a target that cannot count: the request body's bytes / 4, rounded up.
std::int64_t estimate_tokens(std::string_view body);

}  // namespace ob::dialect::anthropic
