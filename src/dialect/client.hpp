// Client dialects: a client that speaks another API than OpenAI's, recognised by its request
// path when the head is in (client_codec_for_path). Today: Anthropic's Messages API
// (POST /v1/messages, POST /v1/messages/count_tokens).
//
// A client codec is the step at the front and the back of the exchange for such a request:
//   front  per attempt, encode_request() for the target's API: either a whole upstream request
//          (target, body; e.g. Messages -> chat completions for an OpenAI target), or
//          `passthrough` (the client's own body with the usual model splice, for a target that
//          speaks the client's API), or `local` (the codec answers itself, nothing is sent: the
//          body is a 200 JSON answer);
//   back   a translator per attempt turns the upstream answer (buffered body, or each SSE event)
//          into the client's dialect and reports what the exchange needs: the final event, an
//          error event, the token usage. The exchange writes its output as is (no OpenAI event
//          handling runs on it);
//   errors the gateway's own error answers and stream error events in the client's shape.
// With no client codec (nullptr: an OpenAI client) nothing of this runs.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "dialect/codec.hpp"

namespace ob::dialect {

// What one translated event means for the exchange: dialect::event_info (codec.hpp).

class client_translator {
 public:
  virtual ~client_translator() = default;
  // A whole upstream answer -> the client's body appended to `out`; the client's status is
  // client_status(). bad_answer: a 2xx body that is not what the target's API answers.
  virtual codec_result translate_body(int status, std::string_view body, std::string& out) = 0;
  virtual int client_status(int upstream_status) const { return upstream_status; }
  // One upstream SSE event -> zero or more whole client events appended to `out`.
  virtual event_info translate_event(const proxy::sse::event& ev, std::string& out) = 0;
  // The upstream stream ended cleanly: whatever closes the client's stream, if complete.
  virtual event_info finish(std::string& out) = 0;
  // Appends the upstream events translate_event held back, if any, and stops holding: the
  // exchange gives up waiting for the stream's first event (timeouts.stream_hold). Events
  // after it that do not count as that first one are written as they come, still `held`.
  virtual void release_held(std::string& /*out*/) {}
  // The bytes held back now (release_held would append them).
  virtual std::size_t held_size() const { return 0; }
  virtual proxy::json::token_usage usage() const = 0;
};

struct client_request_out {
  request_out req;           // target, headers, body, stream (unused when passthrough/local)
  bool passthrough = false;  // send the client's body and target; only the model is spliced
  bool local = false;        // req.body is the whole 200 answer; nothing goes upstream
};

class client_codec {
 public:
  virtual ~client_codec() = default;
  // The upstream request for one target whose API is `to`; `in.model` is the target's real
  // model name. A refusal (bad_request / unsupported) skips the target like a provider codec's.
  virtual codec_result encode_request(const request_in& in, api to,
                                      client_request_out& out) const = 0;
  // The answer translator for an encoded request; `group` is the model name the client asked
  // for (answers name it, never the target's model).
  virtual std::unique_ptr<client_translator> new_translator(const request_in& in, api to,
                                                            std::string_view group) const = 0;
  // The gateway's own error for HTTP `status`, in the client's shape.
  virtual void append_error_body(std::string& out, int status, std::string_view message) const = 0;
  // A terminal stream error event for a stream already under way (`status` says what kind of
  // failure: 502 broken, 503 shutting down, 504 timeout).
  virtual void append_error_event(std::string& out, int status, std::string_view message) const = 0;
};

// The client codec for a request path (query excluded); nullptr for OpenAI clients. One length
// test and at most two comparisons.
const client_codec* client_codec_for_path(std::string_view path);

}  // namespace ob::dialect
