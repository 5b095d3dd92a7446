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

// Which of an OpenAI request's temperature and top_p go to an Anthropic target. Newer Claude
// models refuse the two together (400 "temperature and top_p cannot both be specified"), and
// many OpenAI clients send top_p 1 by default. Beside the other, a top_p of 1 (no truncation)
// or a temperature of 1 (Anthropic's default) is the neutral value and is left out; both away
// from neutral, both go and the model decides.
struct sampling_kept {
  bool temperature, top_p;
};
inline sampling_kept keep_sampling(bool has_temperature, double temperature, bool has_top_p,
                                   double top_p) {
  if (has_temperature && has_top_p) {
    if (top_p == 1) return {true, false};
    if (temperature == 1) return {false, true};
  }
  return {has_temperature, has_top_p};
}

}  // namespace ob::dialect::anthropic::detail

namespace ob::dialect::anthropic::detail {

token_usage usage_of_openai(dom::element u, std::int64_t& cached);
void write_anthropic_usage(json_writer& w, const token_usage& t, std::int64_t cached);
// status 0: an error inside a stream, classified by its type/code only.
std::string_view anthropic_type_of_openai(int status, std::string_view openai_type,
                                          std::string_view code);

}  // namespace ob::dialect::anthropic::detail
