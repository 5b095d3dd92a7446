// A hand-rolled fast path for model_finder::inspect_answer.
//
// Why: every SSE event's data goes through inspect_answer. The simdjson On-Demand walk costs
// ~170 ns for a ~300-byte chat.completion.chunk (stage 1 over the whole document, padding copy,
// iterator setup), ~4 us for a typical 22-event stream: the largest user-space cost of the SSE
// path. Typical events are flat objects whose only interesting keys are "model" (a string) and
// sometimes "usage":null / "error":null / "type"; one pass over the bytes decides them.
//
// The simdjson path is the reference: whenever fast_inspect_answer accepts a document, the
// answer_info it gives is exactly the one the simdjson path gives. It accepts only a top-level
// object with plain keys; anything unusual makes it answer "can't decide" (false) and the caller
// falls back to simdjson: a key with a backslash, a "response" key (Responses API events with a
// nested response.model/usage), a "usage" that is not null, a "type" string with a backslash,
// more than answer_info::max_models models, nesting deeper than 64, a control character in a
// string, a literal that is not exactly true/false/null, malformed structure, trailing bytes, a
// root that is not an object. Skipped values are checked only as far as the simdjson path
// checks them (string termination, bracket balance, UTF-8 of the whole document).
//
// Reads only [doc.data(), doc.data() + doc.size()): no padding needed.
#pragma once

#include <string_view>

#include "proxy/json/model.hpp"

namespace ob::proxy::json {

// True when decided: `info` is the answer (info.type then views `doc`). False: can't decide,
// `info` is unspecified; use the simdjson path.
bool fast_inspect_answer(std::string_view doc, answer_info& info);

// model_finder::inspect_answer tries the fast path first while this is true. Tests turn it off
// to get the simdjson (reference) answer.
inline thread_local bool fast_inspect_enabled = true;

}  // namespace ob::proxy::json
