// Tables and pieces shared by the codecs (internal).
#pragma once

#include <string_view>

#include "dialect/anthropic/dom.hpp"

namespace ob::dialect::anthropic::detail {

// Anthropic stop_reason -> OpenAI finish_reason, and back.
std::string_view finish_reason(std::string_view stop_reason);
std::string_view stop_reason(std::string_view finish_reason);

// Anthropic usage object -> OpenAI counts (prompt = input + cache read + cache creation).
token_usage openai_usage_of_anthropic(dom::element usage);
void write_openai_usage(json_writer& w, const token_usage& u, std::int64_t cached);

// An Anthropic error (its "error" object, or none) -> OpenAI status and body.
answer_result openai_error_of_anthropic(int status, dom::element* err, std::string_view fallback);

}  // namespace ob::dialect::anthropic::detail

namespace ob::dialect::anthropic::detail {

token_usage usage_of_openai(dom::element u, std::int64_t& cached);
void write_anthropic_usage(json_writer& w, const token_usage& t, std::int64_t cached);
// status 0: an error inside a stream, classified by its type/code only.
std::string_view anthropic_type_of_openai(int status, std::string_view openai_type,
                                          std::string_view code);

}  // namespace ob::dialect::anthropic::detail
