// The Anthropic dialect's codec object for dialect::codec_for(api::anthropic) (dialect/codec.hpp):
// OpenAI chat completion requests to an Anthropic /v1/messages target and the answers back,
// built on the pure translations of translate.hpp.
#pragma once

#include "dialect/anthropic/translate.hpp"
#include "dialect/codec.hpp"

namespace ob::dialect::anthropic {

// One instance for the process (stateless; each exchange gets its own answer translator).
const codec* codec_instance();

}  // namespace ob::dialect::anthropic
