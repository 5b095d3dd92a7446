// Token usage for every stream: the request edits that make a streaming chat or completions
// request ask the provider for usage (`"stream_options":{"include_usage":true}`), so that the
// gateway can account for tokens even when the client did not ask.
//
// Which endpoints get the injection:
//   POST /v1/chat/completions  yes, when the top-level "stream" is true
//   POST /v1/completions       yes, when the top-level "stream" is true (legacy completions
//                              accept stream_options the same way)
//   POST /v1/responses         no: response.completed always carries usage
//   anything else (embeddings, ...): no (not streamed; a JSON answer carries usage)
//
// The answer side: when the plan injected (strip_usage_chunk()), the extra usage-only chunk
// the provider then sends must be removed before the client sees it: pass an sse::usage_strip
// enabled with plan.strip_usage_chunk() to sse::rewrite_event (proxy/sse/rewrite.hpp).
//
// Pure: no I/O, no allocation. The facts come from the model_finder's single top-level pass
// (request_model::stream); planning only reads them and the body's first bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/json/model.hpp"

namespace ob::proxy::json {

// True for the paths (query string removed) whose streaming requests get the injection.
bool injects_usage(std::string_view path);

// Replace body[offset, offset + length) by `replacement` (length 0: insert before offset).
// The replacement views a static literal, or the caller's model literal after merge_edits.
struct edit {
  std::size_t offset = 0;
  std::size_t length = 0;
  std::string_view replacement;
};

enum class usage_decision : std::uint8_t {
  not_streaming,  // "stream" absent, false, not a boolean or duplicated: nothing to do
  client_asked,   // stream_options.include_usage is already true: forward as is, strip nothing
  inject,         // `edits` add include_usage:true; strip the usage-only chunk from the answer
  left_alone,     // ambiguous (duplicate stream_options or include_usage keys, include_usage
                  // of another type than boolean/null, a root we cannot place): forwarded as
                  // is, nothing stripped
};
const char* to_string(usage_decision d);

struct usage_plan {
  static constexpr int max_edits = 2;  // each decision uses at most one today
  usage_decision decision = usage_decision::not_streaming;
  int edit_count = 0;
  edit edits[max_edits];  // ascending, non-overlapping
  bool client_asked_usage() const { return decision == usage_decision::client_asked; }
  // The answer's usage-only chunk exists only because of the edits: remove it.
  bool strip_usage_chunk() const { return decision == usage_decision::inject; }
};

// The edits that make `body` ask for usage. `found` is what model_finder::find_request_model
// returned for the same body; a status other than ok yields not_streaming (the request is
// refused anyway). Cases, for a request whose top-level "stream" is true:
//   no stream_options                  -> insert "stream_options":{"include_usage":true},
//                                         right after the root '{' (the root has >= 1 member)
//   stream_options null/string/array.. -> replace that value by {"include_usage":true}
//   stream_options {} / {...}          -> insert "include_usage":true (and a ',' if non-empty)
//                                         right after its '{'
//   include_usage false or null        -> replace that token by true
//   include_usage true                 -> client_asked
usage_plan plan_usage_injection(std::string_view body, const request_model& found);

// Merges `plan`'s edits with the model splice (model token -> model_literal) into `out`,
// ascending; returns how many (at most usage_plan::max_edits + 1).
int merge_edits(const usage_plan& plan, span model, std::string_view model_literal,
                edit out[usage_plan::max_edits + 1]);

// Size of `body` once the edits are applied.
std::size_t edited_size(std::string_view body, const edit* edits, int count);

// Calls emit(std::string_view) for each piece of the edited body in order (unchanged runs of
// `body` and replacements, empty ones skipped): at most 2 * count + 1 calls. For gathered
// writes: each piece views `body` or an edit's replacement.
template <class F>
void for_each_piece(std::string_view body, const edit* edits, int count, F&& emit) {
  std::size_t pos = 0;
  for (int i = 0; i < count; ++i) {
    if (edits[i].offset > pos) emit(body.substr(pos, edits[i].offset - pos));
    if (!edits[i].replacement.empty()) emit(edits[i].replacement);
    pos = edits[i].offset + edits[i].length;
  }
  if (pos < body.size()) emit(body.substr(pos));
}

// Appends the edited body to `out`.
void append_edited(std::string& out, std::string_view body, const edit* edits, int count);

}  // namespace ob::proxy::json
