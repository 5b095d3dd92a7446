#include "proxy/http/errors.hpp"

#include "proxy/json/model.hpp"

namespace ob::proxy::http {
namespace {

struct kind_info {
  int status;
  std::string_view type;
  std::string_view code;
};

kind_info info(error_kind k) {
  switch (k) {
    case error_kind::bad_json:
      return {400, "invalid_request_error", "invalid_json"};
    case error_kind::bad_model:
      return {400, "invalid_request_error", "invalid_model"};
    case error_kind::bad_request:
      return {400, "invalid_request_error", "bad_request"};
    case error_kind::bad_path:
      return {400, "invalid_request_error", "invalid_path"};
    case error_kind::unauthorized:
      return {401, "authentication_error", "invalid_api_key"};
    case error_kind::model_not_found:
      return {404, "invalid_request_error", "model_not_found"};
    case error_kind::route_not_found:
      return {404, "invalid_request_error", "not_found"};
    case error_kind::method_not_allowed:
      return {405, "invalid_request_error", "method_not_allowed"};
    case error_kind::body_too_large:
      return {413, "invalid_request_error", "request_too_large"};
    case error_kind::header_too_large:
      return {431, "invalid_request_error", "headers_too_large"};
    case error_kind::request_timeout:
      return {408, "invalid_request_error", "request_timeout"};
    case error_kind::upstream_unreachable:
      return {502, "upstream_error", "upstream_unreachable"};
    case error_kind::upstream_bad_answer:
      return {502, "upstream_error", "upstream_bad_response"};
    case error_kind::upstream_timeout:
      return {504, "upstream_error", "upstream_timeout"};
    case error_kind::unavailable:
      return {503, "server_error", "shutting_down"};
    case error_kind::internal:
      return {500, "server_error", "internal_error"};
    case error_kind::not_implemented:
      return {501, "invalid_request_error", "not_implemented"};
    case error_kind::model_not_allowed:
      return {403, "invalid_request_error", "model_not_allowed"};
    case error_kind::rate_limit_requests:
      return {429, "requests", "rate_limit_exceeded"};
    case error_kind::rate_limit_tokens:
      return {429, "tokens", "rate_limit_exceeded"};
    case error_kind::insufficient_quota:
      return {429, "insufficient_quota", "insufficient_quota"};
    case error_kind::state_unavailable:
      return {503, "server_error", "state_unavailable"};
    case error_kind::not_routable:
      return {404, "invalid_request_error", "unsupported_endpoint"};
  }
  return {500, "server_error", "internal_error"};
}

}  // namespace

int status_of(error_kind k) {
  return info(k).status;
}

std::string_view reason_of(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

void append_error_body(std::string& out, error_kind k, std::string_view message) {
  auto i = info(k);
  out.append(R"({"error":{"message":)");
  json::append_json_string(out, message);
  out.append(R"(,"type":")");
  out.append(i.type);
  out.append(R"(","param":null,"code":")");
  out.append(i.code);
  out.append("\"}}");
}

void append_error_response(std::string& out, error_kind k, std::string_view message,
                           bool keep_alive, std::string_view extra_headers, bool head_request) {
  std::string body;
  append_error_body(body, k, message);
  auto status = status_of(k);
  out.append("HTTP/1.1 ");
  out.append(std::to_string(status));
  out.push_back(' ');
  out.append(reason_of(status));
  out.append("\r\nContent-Type: application/json\r\nContent-Length: ");
  out.append(std::to_string(body.size()));
  out.append("\r\n");
  out.append(extra_headers);
  out.append(keep_alive ? "\r\n" : "Connection: close\r\n\r\n");
  if (!head_request) out.append(body);
}

}  // namespace ob::proxy::http
