// Provider dialects: how one target's API differs from the OpenAI API that clients speak.
//
// A dialect is a pair of pure codecs behind the one small interface below, chosen per target
// when a config snapshot is built (routing::target::codec):
//   request codec  the client's OpenAI request -> the upstream request target (in the API's own
//                  "/v1/..." layout), extra header lines and the whole upstream body;
//   answer codec   the upstream answer -> the OpenAI shape the client expects: a buffered body
//                  at once, or a stream event by event (stateful: one translator per exchange),
//                  plus the token usage it saw.
// Codecs do no I/O, hold no sockets and know nothing of pools, retries or deadlines; the
// exchange (proxy/) knows no format beyond OpenAI's.
//
// The pass-through dialects have no codec object: api "openai" and "azure" differ from what the
// client sent only in the upstream path (dialect/path.hpp) and headers (dialect/headers.hpp),
// both prepared once per target. For them the exchange keeps today's code path and cost: the
// model value spliced into the client body by a gathered write, answers rewritten in place. It
// branches on `target.codec == nullptr`; no virtual call and no allocation per request.
//
// A codec target (api "anthropic") goes through the same exchange phases; only these hooks
// change (see docs/ARCHITECTURE.md, "Provider dialects"):
//   send    codec->encode_request() builds the body; the head is the target's fixed lines plus
//           out.headers; the target is dialect::map_path(target.route, out.target)
//   relay   buffered: translator->translate_body(); the exchange then treats the body as an
//           OpenAI answer: it rewrites "model" to the group name and reads usage exactly as for
//           an OpenAI provider (writing the upstream's model name in the body is fine).
//           stream: translator->translate_event() per upstream event, translator->finish() at
//           the end, each appending finished client events straight into the exchange's output
//           (no second framing, no rewrite): the translator names the group as the model and
//           reports what the exchange needs (event_info: events written, the final event, an
//           error event, usage), which takes the place of the OpenAI event inspection (failover
//           on a first error event included).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/schema.hpp"     // provider_api
#include "proxy/json/model.hpp"  // token_usage
#include "proxy/sse/framer.hpp"  // sse::event

namespace ob::dialect {

// providers[].api: openai, azure, anthropic
using api = config::provider_api;

// What a codec reports when it cannot do its part. `unsupported`: this target cannot serve the
// request (e.g. /v1/embeddings on an API without embeddings): the exchange tries the group's
// next target and, when none is left, answers 404 with `message`. `bad_request`: the request
// cannot be expressed in the target's dialect (400, `param` names the offending field).
// `bad_answer`: the upstream sent something the translator cannot read (treated like a broken
// upstream answer: 502, or an error event inside a stream).
enum class codec_status : std::uint8_t { ok, unsupported, bad_request, bad_answer };

struct codec_result {
  codec_status status = codec_status::ok;
  std::string message;  // for the client's OpenAI-style error: what is wrong and why
  std::string param;    // the JSON field concerned, "" when none
  std::string code;     // the OpenAI error code of a bad_request ("" = unsupported_parameter)
  bool ok() const { return status == codec_status::ok; }
};

// One client request as a codec sees it. Views are valid for the call only.
struct request_in {
  std::string_view method;  // "POST"
  std::string_view target;  // client request target, e.g. "/v1/chat/completions?x=1"
  std::string_view body;    // client body: OpenAI JSON (may be anything: validate it)
  std::string_view model;   // the target's real model name (providers[].name) to put upstream
  // Bytes readable at body.data() (>= body.size()); with simdjson's padding to spare a codec may
  // parse the body in place. 0: unknown (a codec copies what it parses).
  std::size_t body_capacity = 0;
  // The target's providers[].max_tokens_field is "max_completion_tokens" (a request the gateway
  // writes in OpenAI's API names its output limit so).
  bool max_completion_tokens = false;
};

// What one translate_event() or finish() call wrote, for the exchange.
struct event_info {
  bool terminal = false;           // the stream is complete (its final event was written)
  bool error = false;              // an error event was written (always the last one)
  proxy::json::token_usage usage;  // set when the call saw usage (cumulative)
  // Whole client events appended (answer_translator). The exchange holds the answer's head
  // back until the first one and fails over when that first one is an error event. Client
  // translators (client.hpp) leave it 0: the exchange counts their upstream events instead.
  int events = 0;
  // Client translators: the upstream event does not count as the stream's first (an Anthropic
  // pass-through's message_start and pings, until the next event): held back, nothing written,
  // or, after client_translator::release_held, written. An error event right after it is
  // still the stream's first.
  bool held = false;
};

struct request_out {
  // Upstream request target in the API's own layout starting with "/v1/" (e.g. "/v1/messages"),
  // query included if any; the exchange maps it onto the provider's base like a client path.
  std::string target;
  // Extra header lines for this request, each "Name: value\r\n" (e.g. "anthropic-beta: ..."),
  // on top of the target's fixed ones (auth, configured headers, which the codec must not
  // repeat). Content-Type is always sent as application/json; do not add it.
  std::string headers;
  std::string body;     // the whole upstream body
  bool stream = false;  // the upstream answer is expected as text/event-stream
  // The client asked for a usage chunk (stream_options.include_usage: true), as the codec read
  // it while encoding (renew_translator uses it instead of reading the body again).
  bool include_usage = false;
};

// Turns one exchange's upstream answer into the client's (OpenAI) dialect. Made for an attempt
// by codec::new_translator or renew_translator (which may reuse the previous attempt's); never
// shared between threads.
class answer_translator {
 public:
  virtual ~answer_translator() = default;

  // A whole non-stream answer with its HTTP status -> the client's body, appended to `out`
  // (OpenAI JSON; an error status gets an OpenAI error object {"error":{...}}). The client
  // sees client_status() of it.
  virtual codec_result translate_body(int status, std::string_view body, std::string& out) = 0;

  // The status the client gets for the upstream status of the body translate_body() last read
  // (e.g. Anthropic's 529 "overloaded" becomes 503). Failover and health see the upstream's.
  virtual int client_status(int upstream_status) const { return upstream_status; }

  // One upstream SSE event -> zero or more complete client events appended to `out` (the
  // exchange's output to the client: append only, never read or change what is there), each
  // framed "data: <json>\n\n" in the OpenAI chat.completion.chunk shape with "model" the
  // group's name (new_translator's `group`); an error becomes "data: {\"error\":{...}}\n\n"
  // (terminal), the end "data: [DONE]\n\n" (terminal). Called in order, for every event,
  // including comments. A broken upstream event becomes an error event, not a failure.
  virtual event_info translate_event(const proxy::sse::event& ev, std::string& out) = 0;

  // The upstream stream ended cleanly: append whatever the client still needs, at least the
  // final "data: [DONE]\n\n" when the upstream's own end marker was seen. A stream that ended
  // before its end marker must not get [DONE] (the exchange then adds an error event).
  virtual event_info finish(std::string& out) = 0;

  // Token usage seen so far (prompt/completion/total; -1 = not seen).
  virtual proxy::json::token_usage usage() const = 0;
};

class codec {
 public:
  virtual ~codec() = default;
  virtual api kind() const = 0;

  // The upstream request for one target. Must not depend on anything but its arguments.
  virtual codec_result encode_request(const request_in& in, request_out& out) const = 0;

  // A translator for the answer to `in` (encode_request succeeded on it). `client_stream`: the
  // client asked for a stream ("stream": true), so the translator knows what the client
  // expects, e.g. whether to emit a usage chunk (stream_options.include_usage). `group`: the
  // model name the client asked for, which stream events name.
  virtual std::unique_ptr<answer_translator> new_translator(const request_in& in,
                                                            bool client_stream,
                                                            std::string_view group) const = 0;

  // The same as `tr = new_translator(in, client_stream, group)` for a request that
  // encode_request(in, out) encoded, but `tr`, when it holds a translator this codec made
  // earlier (for an earlier attempt or request of the same exchange), is reset and reused: no
  // allocation per attempt once warm.
  virtual void renew_translator(std::unique_ptr<answer_translator>& tr, const request_in& in,
                                const request_out& out, bool client_stream,
                                std::string_view group) const {
    (void)out;
    tr = new_translator(in, client_stream, group);
  }
};

// The codec of a dialect; nullptr for the pass-through dialects (openai, azure) and for a
// dialect whose codec is not built in yet (config check refuses such targets).
const codec* codec_for(api a);

}  // namespace ob::dialect
