// The single-pass translation of the common OpenAI request shape (internal to request_out.cpp).
#pragma once

#include <string>
#include <string_view>

#include "dialect/anthropic/translate.hpp"

namespace ob::dialect::anthropic::detail {

// Translates `body` in one On-Demand pass when it has the common shape: the keys model,
// messages, max_tokens, max_completion_tokens, temperature, top_p, stream, stream_options and
// user, each with a valid value of the usual type (no null), and messages of system, developer,
// user and assistant roles whose only keys are role and content, the content a string or up to
// 8 text parts ({"type":"text","text":...}, nothing else), at most 8 system texts. Then it
// appends exactly what the general translator would to `out`, sets r.stream and
// r.include_usage and returns true. Anything else (another key or value type, a value the
// general translator refuses, invalid JSON, a body over 64 KiB) returns false with `out` and
// `r` untouched: the general translator then decides, with its errors.
bool single_pass(std::string_view body, const outbound_options& opt, std::string& out,
                 request_result& r);

}  // namespace ob::dialect::anthropic::detail
