// Anthropic Messages <-> OpenAI chat completions translation. Pure: bytes in, bytes out, no I/O,
// no clock, no randomness (the caller passes `created` and names). Every rule, and every lossy
// one, is written down in docs/ANTHROPIC.md.
//
// Two directions, named after who the client is:
//   outbound  the client speaks OpenAI chat completions, the target is Anthropic /v1/messages:
//             openai_request_to_anthropic, anthropic_answer_to_openai, anthropic_stream_to_openai
//   inbound   the client speaks Anthropic /v1/messages, the target speaks OpenAI:
//             anthropic_request_to_openai, openai_answer_to_anthropic, openai_stream_to_anthropic
//
// JSON is read with simdjson's DOM parser (the gateway's hot-path JSON library: one per codec
// object, reused, so a warm codec parses without allocating) and written with json_writer
// (writer.hpp), which escapes every string; values passed through unchanged (tool schemas, tool
// inputs) are re-serialized by simdjson from the validated DOM, never copied as raw text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/json/model.hpp"  // token_usage

namespace ob::dialect::anthropic {

using token_usage = ob::proxy::json::token_usage;

// A translation refused: the status and error to give the client. Written in the client's
// dialect by the function that refused (OpenAI: {"error":{message,type,param,code}}; Anthropic:
// {"type":"error","error":{type,message}}).
struct failure {
  int status = 0;  // 0: no failure
  std::string message;
  std::string param;  // the request field at fault ("temperature", "messages[2].content"), or ""
  std::string type;   // "invalid_request_error", ...
  std::string code;   // OpenAI `code` ("unsupported_parameter", ...), or ""
};

struct request_result {
  std::string body;  // the translated request (valid when !failed())
  bool stream = false;
  // Outbound: the client asked for stream_options.include_usage (pass it to the stream codec).
  bool include_usage = false;
  failure error;
  std::string error_body;  // the client-dialect JSON error body when failed()
  bool failed() const { return error.status != 0; }
};

struct answer_result {
  int status = 200;   // status for the client
  std::string body;   // JSON body for the client
  token_usage usage;  // for accounting: prompt = every input token (cached included), completion
};

// Per-event result of a stream codec.
struct event_result {
  bool terminal = false;  // the stream is over (final event sent, or an error event)
  bool error = false;     // an error event was written
  token_usage usage;      // set on the event that carries the final usage
  int events = 0;         // whole client events appended (anthropic_stream_to_openai)
};

// ---- outbound: OpenAI client, Anthropic target -------------------------------------------------

struct outbound_options {
  std::string_view target_model;           // the target's real model name (goes into "model")
  std::int64_t default_max_tokens = 4096;  // when the client sets neither max_tokens field
  // Bytes readable at body.data() (>= body.size()): with SIMDJSON_PADDING spare ones the body is
  // parsed in place, else from a copy. 0: unknown.
  std::size_t body_capacity = 0;
  // Always take the general (DOM) path, never the single-pass one (tests compare the two).
  bool general_only = false;
};

// POST /v1/chat/completions body -> POST /v1/messages body. A parameter that would change the
// result and has no faithful Anthropic form is refused (400, OpenAI error shape, `param` naming
// it); parameters with no effect on the result are dropped (docs/ANTHROPIC.md lists both).
request_result openai_request_to_anthropic(std::string_view body, const outbound_options& opt);
// The same, appending the translated body to `out` (left as it was when the result failed())
// instead of to the result's `body`.
request_result openai_request_to_anthropic(std::string_view body, const outbound_options& opt,
                                           std::string& out);

// An Anthropic answer (status + JSON body) -> what the OpenAI client gets: a chat.completion for
// a 2xx message, an OpenAI error (status mapped: 529 overloaded -> 503) otherwise; a 2xx body
// that is not a message -> 502. `group` is the model name the client asked for.
answer_result anthropic_answer_to_openai(int status, std::string_view body, std::string_view group,
                                         std::int64_t created);

// Anthropic SSE events -> chat.completion.chunk SSE events. Feed every framed event in order
// (sse::framer gives name + data); each call appends the client bytes (possibly none) to `out`:
// whole events naming `group` as the model, an error event or [DONE] last (terminal).
class anthropic_stream_to_openai {
 public:
  anthropic_stream_to_openai(std::string_view group, bool include_usage, std::int64_t created);
  ~anthropic_stream_to_openai();
  anthropic_stream_to_openai(anthropic_stream_to_openai&&) noexcept;
  anthropic_stream_to_openai& operator=(anthropic_stream_to_openai&&) noexcept;

  event_result on_event(std::string_view name, std::string_view data, std::string& out);
  // An SSE comment from the provider (a keep-alive): one comment for the client (pings, which
  // on_event takes, become the same), unless the stream is over. Never a client event.
  void keep_alive(std::string& out);
  token_usage usage() const;  // seen so far (-1: not seen)
  void reset(std::string_view group, bool include_usage, std::int64_t created);

 private:
  struct state;
  std::unique_ptr<state> s_;
};

// ---- inbound: Anthropic client, OpenAI target --------------------------------------------------

struct inbound_options {
  std::string_view target_model;
  // Write the limit as "max_completion_tokens" (OpenAI's current name; reasoning models need it)
  // instead of "max_tokens" (what most OpenAI-compatible servers read).
  bool max_completion_tokens = false;
};

// POST /v1/messages body -> POST /v1/chat/completions body. Refusals in Anthropic's error shape.
request_result anthropic_request_to_openai(std::string_view body, const inbound_options& opt);

// An OpenAI answer -> an Anthropic message (2xx) or Anthropic error (status kept).
answer_result openai_answer_to_anthropic(int status, std::string_view body, std::string_view group);

// chat.completion.chunk events -> Anthropic Messages stream events.
class openai_stream_to_anthropic {
 public:
  explicit openai_stream_to_anthropic(std::string_view group);
  ~openai_stream_to_anthropic();
  openai_stream_to_anthropic(openai_stream_to_anthropic&&) noexcept;
  openai_stream_to_anthropic& operator=(openai_stream_to_anthropic&&) noexcept;

  event_result on_event(std::string_view name, std::string_view data, std::string& out);
  // An SSE comment from the provider (a keep-alive): a comment for the client before
  // message_start, a ping event after it, nothing once the stream is over.
  void keep_alive(std::string& out);
  // The upstream ended cleanly without [DONE]: when a finish_reason was seen the message is
  // closed (terminal); otherwise nothing is written and the caller reports an incomplete stream.
  event_result finish(std::string& out);
  token_usage usage() const;
  void reset(std::string_view group);

 private:
  struct state;
  std::unique_ptr<state> s_;
};

// ---- error bodies ------------------------------------------------------------------------------

// {"error":{"message":...,"type":...,"param":...|null,"code":...|null}}
void append_openai_error(std::string& out, const failure& f);
// {"type":"error","error":{"type":...,"message":...}}
void append_anthropic_error(std::string& out, std::string_view type, std::string_view message);
// The Anthropic error type for an HTTP status (400 invalid_request_error ... 529 overloaded_error).
std::string_view anthropic_error_type(int status);
// An Anthropic-dialect terminal stream event: "event: error\ndata: {...}\n\n" (what the gateway
// should write instead of sse::append_error_event on an inbound stream that breaks).
void append_anthropic_error_event(std::string& out, std::string_view type,
                                  std::string_view message);

}  // namespace ob::dialect::anthropic
