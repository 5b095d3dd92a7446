// Checks of a client's request head before it is routed: the Host rule and the body framing
// of RFC 9112 (sections 3.2 and 6), then the request-target (path_check.hpp). Pure; no
// allocation. client_connection::handle calls check_request once per request.
#pragma once

#include <string_view>

#include "proxy/http/errors.hpp"
#include "proxy/http/headers.hpp"

namespace ob::proxy::http {

struct request_verdict {
  error_kind kind = error_kind::bad_request;
  std::string_view message;  // empty when the request may go on; static text otherwise
  // The body's length cannot be trusted (framing problem, or an ambiguous message): the
  // connection must close after the answer, whatever the client asked.
  bool close = false;
  bool ok() const { return message.empty(); }
};

// `version` as Beast gives it (10 for HTTP/1.0, 11 for HTTP/1.1); `headers` as received.
// Refused, in this order (the first problem found is reported):
//   - more than one Host header (any version), or none in HTTP/1.1 or later: 400;
//   - Transfer-Encoding in an HTTP/1.0 request: 400;
//   - Transfer-Encoding together with Content-Length (request smuggling): 400;
//   - Transfer-Encoding whose codings (all its headers, comma-separated, empty elements
//     ignored) are not exactly one "chunked" (case-insensitive): 400 when the list is empty,
//     holds something that is not a token, or does not end in exactly one chunked (RFC 9112
//     6.3); 501 (not_implemented) for another coding before a final chunked ("gzip, chunked");
//   - a Host value valid_host refuses: 400 (RFC 9112 section 3.2);
//   - an absolute-form target (one the parser left whole: its authority is not valid): 400
//     bad_path;
//   - a request-target check_target refuses: 400 bad_path.
// Several Content-Length values that differ are refused by Beast's parser before this runs.
request_verdict check_request(int version, const header_list& headers, std::string_view target);

// Whether `host` is a valid Host value or request-target authority without userinfo (RFC 3986
// section 3.2.2 and 3.2.3): empty; or a reg-name (unreserved, sub-delims, "%" HEXDIG HEXDIG) or
// IPv4 address; or "[" an IP literal "]": an IPv6 address (hex digits, '.' and at least one
// ':'; zone ids are not allowed, RFC 9110 does not take RFC 6874's) or an IPvFuture ("v" hex
// digits "." then unreserved, sub-delims or ':'); then optionally ":" and a port of digits
// (possibly none). So no space, '/',
// '@', '?', '#', second ':' outside brackets, or byte >= 0x80 (RFC 3986 has no raw UTF-8: an
// internationalised name is sent as its xn-- form).
bool valid_host(std::string_view host);

// A request-target in absolute-form (RFC 9112 section 3.2.2), which a server must accept:
// "http://" or "https://" (scheme in any case), an authority, then the path and query.
struct absolute_target {
  bool absolute = false;    // target starts with an http or https scheme
  bool valid = false;       // ... and its authority passes valid_host, and is not empty
  std::string_view origin;  // the path and query after the authority (may be empty or "?q")
};
// The gateway serves an absolute-form request as the origin-form one ("/" + origin when origin
// does not start with '/'), and ignores the authority for routing, as it does the Host header.
absolute_target split_absolute(std::string_view target);

// A chunked request body's chunk line (size, extensions, CRLF) and its trailer section may each
// be at most this long; chunk extensions are ignored, so this only bounds what is buffered.
inline constexpr std::size_t max_chunk_line = 4096;

// `pending`: the bytes of a chunked request body the parser could not use yet (it waits for
// the end of a chunk line, or of the trailers; the CRLF ending the previous chunk's data may
// come first). False when they can never become valid, so the client gets a 400 now instead
// of a timeout: more than max_chunk_line bytes, or a LF without its CR (Beast's parser takes
// only CRLF as a line end and would wait for one).
bool chunk_pending_ok(std::string_view pending);

}  // namespace ob::proxy::http
