// Locating `model` values in JSON documents without building a DOM (simdjson On-Demand), and
// splicing replacements in without re-serializing: every other byte stays as it came.
//
// Validation depth: On-Demand checks what it visits (the root object, its keys, the values we
// read) plus UTF-8, string termination and bracket balance of the whole document. Values we
// skip (e.g. "messages") are not validated deeply: `{"model":"m","x":[1,}]` may pass as ok.
// That is deliberate (the upstream validates its own input); the gateway only needs to know
// where `model` is.
//
// Keys are compared after unescaping, so `"mod\u0065l"` counts as "model" (it is "model" to
// every JSON reader, and the upstream would route on it). Keys that do not unescape (a lone
// surrogate escape) make the document invalid_json.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <simdjson.h>

namespace ob::proxy::json {

// Spare bytes a caller's buffer must have after the document to avoid the copy into scratch.
inline constexpr std::size_t required_padding = simdjson::SIMDJSON_PADDING;

// Byte offsets [begin, end) of a JSON value token inside a document, quotes included.
struct span {
  std::size_t begin = 0;
  std::size_t end = 0;
};

enum class find_status {
  ok,            // found exactly one top-level "model" with a string value
  invalid_json,  // not parseable / trailing garbage / empty / not UTF-8
  not_object,    // valid JSON whose root is not an object
  missing,       // no top-level "model"
  not_string,    // "model" present but its value is not a string
  duplicate,     // more than one top-level "model" key
};

const char* to_string(find_status s);

// What the same top-level pass notes about streaming, for usage injection (proxy/json/usage.hpp
// turns it into edits). Only meaningful when the request_model's status is ok.
struct stream_facts {
  enum class kind : std::uint8_t {
    absent,     // no such key
    true_,      // the boolean true
    false_,     // the boolean false
    null,       // null
    object,     // an object (stream_options only)
    other,      // any other value
    duplicate,  // the key appears more than once
  };
  kind stream = kind::absent;         // top-level "stream"
  kind options = kind::absent;        // top-level "stream_options"
  span options_value;                 // its value token; for an object only its '{'
  bool options_empty = false;         // stream_options is {} (whitespace allowed)
  kind include_usage = kind::absent;  // "stream_options"."include_usage" (when an object)
  span include_usage_value;           // its value token (for true_, false_, null)
};

struct request_model {
  find_status status = find_status::invalid_json;
  span value;  // the string token, quotes included (valid when status == ok)
  std::string_view
      name;  // unescaped value; points into the finder's scratch, valid until the next call
  stream_facts stream;
  // Top-level output caps (non-negative integers; -1 = absent or not one), for the limits'
  // output token estimate.
  std::int64_t max_completion_tokens = -1, max_tokens = -1, max_output_tokens = -1;
  std::int64_t output_cap() const {
    return max_completion_tokens >= 0 ? max_completion_tokens
           : max_tokens >= 0          ? max_tokens
                                      : max_output_tokens;
  }
};

struct token_usage {
  std::int64_t prompt_tokens = -1;      // chat: prompt_tokens; responses: input_tokens
  std::int64_t completion_tokens = -1;  // chat: completion_tokens; responses: output_tokens
  std::int64_t total_tokens = -1;
  bool present() const { return prompt_tokens >= 0 || completion_tokens >= 0 || total_tokens >= 0; }
};

// What an answer document (a JSON answer body, or one SSE event's data) holds that we care about.
struct answer_info {
  static constexpr int max_models = 4;
  bool is_object = false;  // parsed as a JSON object (all other fields are unset when false)
  // String tokens to rewrite, ascending: top-level "model" and "response"."model". Room for a
  // duplicated key too, so that no copy of the real model name leaks to the client.
  span models[max_models];
  int model_count = 0;
  token_usage usage;           // top-level "usage" or "response"."usage" when it is an object
  bool usage_object = false;   // top-level "usage" is an object (even one without counts)
  bool empty_choices = false;  // top-level "choices" is [] (a chat usage-only chunk has both)
  bool has_error = false;      // a top-level "error" key with a non-null value
  std::string_view type;       // top-level "type" string value (Responses API events), else empty;
                               // points into the finder's scratch, valid until the next call
};

// One per thread: owns the simdjson parser and scratch buffers (reused, grows to the largest
// document seen). Never throws for bad input; every input maps to a status.
// The parser lives behind a pointer so that this class has the same layout in every translation
// unit, whatever simdjson configuration macros (e.g. SIMDJSON_THREADS_ENABLED) each one sees.
class model_finder {
 public:
  model_finder();
  ~model_finder();
  model_finder(model_finder&&) noexcept;
  model_finder& operator=(model_finder&&) noexcept;

  // `doc` must be followed by readable memory up to doc.data() + capacity; when
  // capacity - doc.size() < simdjson::SIMDJSON_PADDING the document is copied to a padded scratch.
  request_model find_request_model(std::string_view doc, std::size_t capacity);
  answer_info inspect_answer(std::string_view doc, std::size_t capacity);

 private:
  struct state;
  std::unique_ptr<state> state_;
};

// Appends `s` as a JSON string literal (with quotes, escaped per RFC 8259) to `out`: '"' and
// '\\' escaped, \b \f \n \r \t in their short forms, other control characters as \u00XX.
// Invalid UTF-8 sequences become U+FFFD so the output is always valid JSON text.
void append_json_string(std::string& out, std::string_view s);
std::string json_string(std::string_view s);

// Appends `doc` to `out` with every span in `spans` (ascending, non-overlapping) replaced by
// `replacement` (a complete JSON token, e.g. "\"fast\"").
void append_spliced(std::string& out, std::string_view doc, const span* spans, int count,
                    std::string_view replacement);

}  // namespace ob::proxy::json
