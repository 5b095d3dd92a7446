// Locating `model` values in JSON documents without building a DOM (simdjson On-Demand), and
// splicing replacements in without re-serializing: every other byte stays as it came.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <simdjson.h>

namespace ob::proxy::json {

// Byte offsets [begin, end) of a JSON value token inside a document, quotes included.
struct span {
  std::size_t begin = 0;
  std::size_t end = 0;
};

enum class find_status {
  ok,           // found exactly one top-level "model" with a string value
  invalid_json, // not parseable / trailing garbage / empty
  not_object,   // valid JSON whose root is not an object
  missing,      // no top-level "model"
  not_string,   // "model" present but its value is not a string
  duplicate,    // more than one top-level "model" key
};

struct request_model {
  find_status status = find_status::invalid_json;
  span value;             // the string token, quotes included (valid when status == ok)
  std::string_view name;  // unescaped value; points into the finder's scratch, valid until the next call
};

struct token_usage {
  std::int64_t prompt_tokens = -1;      // chat: prompt_tokens; responses: input_tokens
  std::int64_t completion_tokens = -1;  // chat: completion_tokens; responses: output_tokens
  std::int64_t total_tokens = -1;
  bool present() const { return prompt_tokens >= 0 || completion_tokens >= 0 || total_tokens >= 0; }
};

// What an answer document (a JSON answer body, or one SSE event's data) holds that we care about.
struct answer_info {
  bool is_object = false;   // parsed as a JSON object
  span models[2];           // string tokens to rewrite, ascending: top-level "model", "response"."model"
  int model_count = 0;
  token_usage usage;        // top-level "usage" or "response"."usage" when it is an object
  bool has_error = false;   // a top-level "error" key with a non-null value
  std::string_view type;    // top-level "type" string value (Responses API events), else empty;
                            // points into the finder's scratch, valid until the next call
};

// One per thread: owns the simdjson parser and scratch buffers (reused, grows to the largest
// document seen).
class model_finder {
 public:
  // `doc` must be followed by readable memory up to doc.data() + capacity; when
  // capacity - doc.size() < simdjson::SIMDJSON_PADDING the document is copied to a padded scratch.
  request_model find_request_model(std::string_view doc, std::size_t capacity);
  answer_info inspect_answer(std::string_view doc, std::size_t capacity);

 private:
  simdjson::ondemand::parser parser_;
  std::string scratch_;       // padded copy when the caller has no padding
  std::string name_scratch_;  // unescaped strings
};

// Appends `s` as a JSON string literal (with quotes, escaped per RFC 8259) to `out`.
void append_json_string(std::string& out, std::string_view s);
std::string json_string(std::string_view s);

// Appends `doc` to `out` with every span in `spans` (ascending, non-overlapping) replaced by
// `replacement` (a complete JSON token, e.g. "\"fast\"").
void append_spliced(std::string& out, std::string_view doc, const span* spans, int count,
                    std::string_view replacement);

}  // namespace ob::proxy::json
