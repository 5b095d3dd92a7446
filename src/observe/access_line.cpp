// The two access line formats. Both size the buffer once for the worst case and then store
// plainly: they run for every request.
#include <algorithm>

#include "observe/fields.hpp"
#include "observe/log.hpp"

namespace ob::observe {
namespace {

using namespace detail;

// Visits the failed attempts: the structured list when set, else `tried` split at ',' and at
// each piece's last ':' (ambiguous only for names that hold ','; hence the list).
template <class F>
void for_each_tried(const request_record& r, F&& f) {
  if (!r.tried_list.empty()) {
    for (const auto& a : r.tried_list) f(a.target, a.cause);
    return;
  }
  std::string_view rest = r.tried;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    auto piece = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    auto colon = piece.rfind(':');
    if (colon == std::string_view::npos)
      f(piece, std::string_view());
    else
      f(piece.substr(0, colon), piece.substr(colon + 1));
  }
}

std::size_t tried_list_size(const request_record& r) {
  std::size_t n = 0;
  for (const auto& a : r.tried_list) n += a.target.size() + a.cause.size() + 1;
  return n;
}

// logfmt form of tried_list: "model:cause,..." (room: 2 * size + 2), quoted and escaped as
// put_value does when any part needs it.
char* put_tried_text(char* p, const request_record& r) {
  bool plain = true;
  for (const auto& a : r.tried_list)
    plain = plain && !needs_quotes(a.target) && !needs_quotes(a.cause);
  auto put_part = [&](std::string_view part) {
    for (unsigned char c : part) {
      if (c == '"' || c == '\\') *p++ = '\\';
      *p++ = (c < ' ' || c == 0x7f) ? ' ' : static_cast<char>(c);
    }
  };
  if (!plain) *p++ = '"';
  bool first = true;
  for (const auto& a : r.tried_list) {
    if (!first) *p++ = ',';
    first = false;
    put_part(a.target);
    *p++ = ':';
    put_part(a.cause);
  }
  if (!plain) *p++ = '"';
  return p;
}

}  // namespace

void format_access_line(std::string& out, const request_record& r) {
  const std::size_t texts = r.method.size() + r.path.size() + r.group.size() + r.target.size() +
                            r.provider.size() + r.outcome.size() + r.tried.size() +
                            r.detail.size() + r.request_id.size() + r.client.size() +
                            r.client_name.size() + tried_list_size(r);
  const std::size_t old = out.size();
  out.resize(old + 2 * texts + 640);
  char* const begin = out.data() + old;
  char* p = begin;
  p = put_now(p);
  p = put_literal(p, " access");
  p = put_value(put_key(p, "method"), r.method);
  p = put_value(put_key(p, "path"), r.path);
  if (!r.group.empty()) p = put_value(put_key(p, "group"), r.group);
  if (!r.target.empty()) p = put_value(put_key(p, "target"), r.target);
  if (!r.provider.empty()) p = put_value(put_key(p, "provider"), r.provider);
  p = put_int(put_key(p, "status"), r.status);
  p = put_millis(put_key(p, "duration_ms"), r.duration_ms);
  p = put_int(put_key(p, "bytes_in"), static_cast<std::int64_t>(r.bytes_in));
  p = put_int(put_key(p, "bytes_out"), static_cast<std::int64_t>(r.bytes_out));
  if (r.stream) p = put_value(put_key(p, "stream"), "true");
  if (r.attempts) p = put_int(put_key(p, "attempts"), r.attempts);
  if (r.prompt_tokens >= 0) p = put_int(put_key(p, "prompt_tokens"), r.prompt_tokens);
  if (r.completion_tokens >= 0) p = put_int(put_key(p, "completion_tokens"), r.completion_tokens);
  if (r.total_tokens >= 0) p = put_int(put_key(p, "total_tokens"), r.total_tokens);
  p = put_value(put_key(p, "outcome"), r.outcome);
  if (!r.tried_list.empty())
    p = put_tried_text(put_key(p, "tried"), r);
  else if (!r.tried.empty())
    p = put_value(put_key(p, "tried"), r.tried);
  if (!r.detail.empty()) p = put_value(put_key(p, "detail"), r.detail);
  // Fields added later go after the original ones, so existing parsers keep working.
  if (!r.request_id.empty()) p = put_value(put_key(p, "request_id"), r.request_id);
  if (!r.client.empty()) p = put_value(put_key(p, "client"), r.client);
  if (!r.client_name.empty()) p = put_value(put_key(p, "client_name"), r.client_name);
  if (r.ttfb_ms >= 0) p = put_millis(put_key(p, "ttfb_ms"), r.ttfb_ms);
  if (r.upstream_ms >= 0) p = put_millis(put_key(p, "upstream_ms"), r.upstream_ms);
  if (!r.protocol.empty()) p = put_value(put_key(p, "protocol"), r.protocol);
  *p++ = '\n';
  out.resize(old + static_cast<std::size_t>(p - begin));
}

void format_access_json(std::string& out, const request_record& r) {
  std::size_t tried_count = 0, tried_texts = 0;
  for_each_tried(r, [&](std::string_view t, std::string_view c) {
    ++tried_count;
    tried_texts += t.size() + c.size();
  });
  const std::size_t texts = r.method.size() + r.path.size() + r.group.size() + r.target.size() +
                            r.provider.size() + r.outcome.size() + r.detail.size() +
                            r.request_id.size() + r.client.size() + r.client_name.size() +
                            tried_texts;
  const std::size_t old = out.size();
  out.resize(old + json_expansion * texts + 32 * tried_count + 768);
  char* const begin = out.data() + old;
  char* p = begin;
  p = put_now(put_literal(p, "{\"time\":\""));
  p = put_literal(p, "\",\"type\":\"access\"");
  p = put_json_text_or_null(put_json_key(p, "request_id"), r.request_id);
  p = put_json_text_or_null(put_json_key(p, "client"), r.client);
  p = put_json_text_or_null(put_json_key(p, "client_name"), r.client_name);
  if (!r.protocol.empty()) p = put_json_string(put_json_key(p, "protocol"), r.protocol);
  p = put_json_string(put_json_key(p, "method"), r.method);
  p = put_json_string(put_json_key(p, "path"), r.path);
  p = put_json_text_or_null(put_json_key(p, "group"), r.group);
  p = put_json_text_or_null(put_json_key(p, "target"), r.target);
  p = put_json_text_or_null(put_json_key(p, "provider"), r.provider);
  p = put_int(put_json_key(p, "status"), r.status);
  p = put_int(put_json_key(p, "attempts"), r.attempts);
  p = put_json_key(p, "tried");
  *p++ = '[';
  bool first = true;
  for_each_tried(r, [&](std::string_view t, std::string_view c) {
    if (!first) *p++ = ',';
    first = false;
    p = put_json_string(put_literal(p, "{\"target\":"), t);
    p = put_json_string(put_literal(p, ",\"cause\":"), c);
    *p++ = '}';
  });
  *p++ = ']';
  p = put_int(put_json_key(p, "bytes_in"), static_cast<std::int64_t>(r.bytes_in));
  p = put_int(put_json_key(p, "bytes_out"), static_cast<std::int64_t>(r.bytes_out));
  p = put_json_millis_or_null(put_json_key(p, "ttfb_ms"), r.ttfb_ms);
  p = put_millis(put_json_key(p, "duration_ms"), r.duration_ms);
  p = put_json_millis_or_null(put_json_key(p, "upstream_ms"), r.upstream_ms);
  // Time spent in the gateway itself: all of it when no upstream was involved.
  const double overhead =
      r.upstream_ms >= 0 ? std::max(0.0, r.duration_ms - r.upstream_ms) : r.duration_ms;
  p = put_millis(put_json_key(p, "overhead_ms"), overhead);
  p = put_json_int_or_null(put_json_key(p, "prompt_tokens"), r.prompt_tokens);
  p = put_json_int_or_null(put_json_key(p, "completion_tokens"), r.completion_tokens);
  p = put_json_int_or_null(put_json_key(p, "total_tokens"), r.total_tokens);
  p = put_json_key(p, "stream");
  p = r.stream ? put_literal(p, "true") : put_literal(p, "false");
  p = put_json_string(put_json_key(p, "outcome"), r.outcome);
  p = put_json_text_or_null(put_json_key(p, "detail"), r.detail);
  *p++ = '}';
  *p++ = '\n';
  out.resize(old + static_cast<std::size_t>(p - begin));
}

}  // namespace ob::observe
