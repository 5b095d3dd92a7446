// One SSE event -> the same bytes with the model rewritten to the group name.
#pragma once

#include <string>
#include <string_view>

#include "proxy/json/model.hpp"
#include "proxy/sse/framer.hpp"

namespace ob::proxy::sse {

struct event_info {
  bool done = false;      // data is exactly "[DONE]"
  bool terminal = false;  // done, or an event that ends a stream: Responses API
                          // response.completed / response.failed / response.incomplete / error,
                          // or a JSON object with a top-level "error"
  bool error =
      false;  // the event reports an error (top-level "error", type "error"/"response.failed")
  json::token_usage usage;  // when the event carries usage
  bool dropped = false;     // a usage-only chunk removed by usage_strip: nothing was appended
                            // (except a stray LF that belongs to the event before it)
};

// Per-stream state for removing the usage-only chunk that exists only because the gateway
// injected stream_options.include_usage (json::usage_plan::strip_usage_chunk()).
// The chunk removed is a JSON object with a top-level "choices": [] and a top-level "usage"
// object (OpenAI's shape: "choices will always be an empty array"); its usage is still reported
// in event_info. Kept as they are: chunks whose choices are not empty (a provider that puts
// usage on its last content chunk: the client then sees a usage field it did not ask for,
// rather than losing content), chunks with "usage": null, and every other event.
// Byte exactness: the client receives exactly the stream minus the removed events' bytes. An
// event that ends in CR at the end of an upstream read may have its LF at the front of the next
// event's raw (framer.hpp); that LF goes with the removed event, and a stray LF at the front of
// a removed event (the end of the event before it) is kept.
// Reset it for every stream (and every attempt), enabled or not.
struct usage_strip {
  bool enabled = false;
  bool lf_pending = false;  // the last removed event ended in CR: a leading LF is its own
  void reset(bool enable) {
    enabled = enable;
    lf_pending = false;
  }
};

// Remembers the shape of the last event of one stream. Chat completion chunks all start with
// the same bytes up to and including "model":"..." ({"id":"chatcmpl-1","object":
// "chat.completion.chunk","created":N,"model":"gpt-4o",...); when an event starts with exactly
// the bytes of the last fully parsed one up to its model value, and the rest mentions no key
// that matters (model, usage, error, type, response; no \u escape that could spell one), the
// model is at the same offsets: no JSON parse is needed. Measured: the parse was ~40% of the
// gateway's user CPU on a 22-event stream. One difference from the parse: an event whose JSON
// is broken after its model value still gets the model rewritten (the parse would pass it
// through unchanged). Reset it for every new stream.
struct stream_shape {
  std::string prefix;  // data of the last parsed event, up to the end of its model value
  json::span models[json::answer_info::max_models];
  int model_count = 0;
  bool one_line = false;  // prefix holds no '\n' (it came from one data line)
  void reset() { prefix.clear(); }
};

// Appends ev.raw to `out`, with the top-level "model" and "response"."model" string values of a
// JSON-object data replaced by `group_literal` (a JSON string token, e.g. "\"fast\"").
// Everything else (comments, [DONE], non-JSON data, other fields) is appended unchanged.
// With `shape`, events shaped like the previous one skip the JSON parse (same result; a
// usage-only chunk never takes that path: its non-null usage forces the parse).
// With an enabled `strip`, a usage-only chunk is removed (event_info::dropped).
event_info rewrite_event(const event& ev, json::model_finder& finder,
                         std::string_view group_literal, std::string& out,
                         stream_shape* shape = nullptr, usage_strip* strip = nullptr);

// The fast path for the overwhelmingly common event, for framer::feed's claim: takes the events
// at the front of `bytes` that are exactly "data: " + shape.prefix + a plain rest (as above) +
// "\n\n" with no CR, and appends each exactly as rewrite_event would (models spliced). Such an
// event's event_info is always empty (no usage, error or end; never dropped: the usage-only
// chunk has a non-null usage, which is not plain), so only their number is reported, added to
// `events`. Takes nothing while `strip` has a removed event's LF pending. Returns the bytes
// taken (0: none; the caller then frames them the usual way).
std::size_t claim_plain_events(std::string_view bytes, const stream_shape& shape,
                               const usage_strip* strip, std::string_view group_literal,
                               std::string& out, int& events);

namespace detail {
// The byte scan behind the stream shape check: the widest the CPU has (best), or a narrower one
// so tests can run every variant on any machine. Not thread-safe: set it before any rewrite
// runs. Returns the previous choice.
enum class scan_isa { best, avx2, sse2, scalar };
scan_isa use_scan(scan_isa isa);
// Turns claim_plain_events off (it then takes nothing), so tests can compare with the general
// path. Not thread-safe. Returns the previous setting.
bool use_fast_path(bool on);
}  // namespace detail

}  // namespace ob::proxy::sse
