// The one form field a multipart/form-data request is routed by (OpenAI's audio transcription
// and translation, image edits and variations send `model` as a form field next to the file).
// Pure; no allocation: the value is a span of the body, replaced in place like a JSON model.
// form_scanner finds it in a body that is still arriving (an upload streamed to the provider
// once its `model` part is in); form_end_watch checks the rest of such a body for its end.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ob::proxy::http {

// Whether a Content-Type is multipart/* (case-insensitive).
bool is_multipart(std::string_view content_type);

enum class form_status {
  ok,           // exactly one field `name` (not a file), value non-empty, no control bytes
  no_boundary,  // Content-Type has no usable boundary parameter
  malformed,    // the body does not follow RFC 7578 framing (delimiter, part headers, end)
  missing,      // no such field
  duplicate,    // the field twice
  bad_value,    // empty, a file part, or a value with control bytes
  pending,      // form_scanner: the field's part has not all arrived yet
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

// find_form_field for a body read in pieces: scan() is given every byte read so far (the same
// bytes, longer at each call) and resumes where it stopped, so a body costs one pass however
// it is cut. It stops at the first part named `name`: ok (or bad_value) once that part and
// the delimiter after it are in; text_bytes then counts the text parts up to it, that one
// included. pending: more bytes are needed. missing: the body's close delimiter came first.
// Unlike find_form_field it cannot see a second field `name` after the first.
class form_scanner {
 public:
  form_scanner(std::string_view content_type, std::string_view name);
  form_field scan(std::string_view body);
  // "\r\n--" and the boundary ("" without a usable boundary).
  std::string_view delimiter() const { return delim_; }

 private:
  enum class stage { preamble, after_delimiter, head, value, done };
  std::string delim_;
  std::string_view name_;
  stage stage_ = stage::preamble;
  form_field result_;
  std::size_t pos_ = 0;          // where the current stage starts
  std::size_t value_begin_ = 0;  // stage::value: the part's value
  std::size_t search_from_ = 0;  // where the current search resumes
  std::size_t text_bytes_ = 0;
};

// Watches the rest of a streamed body, across the pieces it arrives in: each part's head and
// the close delimiter ("\r\n--boundary--"). A body that ends without one is not a whole form.
// Another part named like the routing field makes the form ambiguous: a provider that reads
// the last one would serve a model the gateway neither routed nor checked against the key.
class form_end_watch {
 public:
  // `delimiter`: form_scanner::delimiter(); `tail`: the body's bytes before the first piece;
  // `field`: the routing field's name.
  void start(std::string_view delimiter, std::string_view tail, std::string_view field);
  void feed(std::string_view piece);
  bool seen() const { return state_ == state::closed; }
  // ok, or why the form is refused: duplicate (another `field` part), malformed (what follows
  // a delimiter is neither "--" nor a part's head ending in a blank line within
  // max_part_head bytes). Set by the feed() whose piece showed it: that piece must not go.
  form_status problem() const { return problem_; }

  static constexpr std::size_t max_part_head = 8 * 1024;

 private:
  enum class state { search, after_delimiter, closed, failed };
  void fail(form_status why) {
    problem_ = why;
    state_ = state::failed;
  }
  std::string delim_;
  std::string field_;
  std::string carry_;  // state::search: the last delim_.size() - 1 bytes fed
  std::string head_;   // state::after_delimiter: the bytes since the delimiter
  state state_ = state::search;
  form_status problem_ = form_status::ok;
};

}  // namespace ob::proxy::http
