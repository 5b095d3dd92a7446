// OpenAI-style error answers produced by the gateway itself:
//   {"error":{"message":"...","type":"...","param":null,"code":"..."}}
#pragma once

#include <string>
#include <string_view>

namespace ob::proxy::http {

enum class error_kind {
  bad_json,              // 400 invalid_request_error / invalid_json
  bad_model,             // 400 invalid_request_error / invalid_model
  bad_request,           // 400 invalid_request_error / bad_request
  bad_path,              // 400 invalid_request_error / invalid_path
  unauthorized,          // 401 authentication_error / invalid_api_key
  model_not_found,       // 404 invalid_request_error / model_not_found
  route_not_found,       // 404 invalid_request_error / not_found
  method_not_allowed,    // 405 invalid_request_error / method_not_allowed
  body_too_large,        // 413 invalid_request_error / request_too_large
  header_too_large,      // 431 invalid_request_error / headers_too_large
  request_timeout,       // 408 invalid_request_error / request_timeout
  upstream_unreachable,  // 502 upstream_error / upstream_unreachable
  upstream_bad_answer,   // 502 upstream_error / upstream_bad_response
  upstream_timeout,      // 504 upstream_error / upstream_timeout
  unavailable,           // 503 server_error / shutting_down
  internal,              // 500 server_error / internal_error
  not_implemented,       // 501 invalid_request_error / not_implemented
  model_not_allowed,     // 403 invalid_request_error / model_not_allowed (key's groups)
  rate_limit_requests,   // 429 requests / rate_limit_exceeded (rpm, rpd, concurrency)
  rate_limit_tokens,     // 429 tokens / rate_limit_exceeded (tpm, tpd)
  insufficient_quota,    // 429 insufficient_quota / insufficient_quota (budget)
  state_unavailable,     // 503 server_error / state_unavailable (limits backend down)
  not_routable,          // 404 invalid_request_error / unsupported_endpoint
};

int status_of(error_kind k);
std::string_view reason_of(int status);  // "Not Found", ... ("Unknown" for unlisted codes)

// Appends the JSON error body.
void append_error_body(std::string& out, error_kind k, std::string_view message);

// Appends a whole HTTP/1.1 error answer (status line, JSON content type, length, body).
// `keep_alive` false adds "Connection: close"; `extra_headers` ("Name: v\r\n"...) go in as-is.
// `head_request`: the answer is to a HEAD request, so the same head (Content-Length is the
// would-be body's) and no body (RFC 9110 9.3.2; a body would be read as the next answer).
void append_error_response(std::string& out, error_kind k, std::string_view message,
                           bool keep_alive, std::string_view extra_headers = {},
                           bool head_request = false);

}  // namespace ob::proxy::http
