// The one form field a multipart/form-data request is routed by (OpenAI's audio transcription
// and translation, image edits and variations send `model` as a form field next to the file).
// Pure; no allocation: the value is a span of the body, replaced in place like a JSON model.
#pragma once

#include <cstddef>
#include <string_view>

namespace ob::proxy::http {

enum class form_status {
  ok,           // exactly one field `name` (not a file), value non-empty, no control bytes
  no_boundary,  // Content-Type has no usable boundary parameter
  malformed,    // the body does not follow RFC 7578 framing (delimiter, part headers, end)
  missing,      // no such field
  duplicate,    // the field twice
  bad_value,    // empty, a file part, or a value with control bytes
};

struct form_field {
  form_status status = form_status::missing;
  std::size_t begin = 0, end = 0;  // the value's bytes in the body
  // With ok: the value bytes of every part that is not a file (no `filename` parameter),
  // this field's included: what the limits' input token estimate counts (a file's bytes say
  // nothing about its tokens).
  std::size_t text_bytes = 0;
};

// Finds form field `name` in `body`, framed by the boundary of `content_type`
// ("multipart/form-data; boundary=...", the boundary optionally quoted). One pass over the
// parts, which also sums text_bytes.
form_field find_form_field(std::string_view content_type, std::string_view body,
                           std::string_view name);

}  // namespace ob::proxy::http
