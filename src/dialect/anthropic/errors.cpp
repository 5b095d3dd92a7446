// Error bodies in both dialects, and the status/type tables between them.
#include "dialect/anthropic/translate.hpp"
#include "dialect/anthropic/writer.hpp"

namespace ob::dialect::anthropic {

void append_openai_error(std::string& out, const failure& f) {
  json_writer w(out);
  w.begin_object().key("error").begin_object();
  w.kv("message", f.message).kv("type", f.type.empty() ? "invalid_request_error" : f.type);
  w.key("param");
  if (f.param.empty()) {
    w.null();
  } else {
    w.string(f.param);
  }
  w.key("code");
  if (f.code.empty()) {
    w.null();
  } else {
    w.string(f.code);
  }
  w.end_object().end_object();
}

void append_anthropic_error(std::string& out, std::string_view type, std::string_view message) {
  json_writer w(out);
  w.begin_object().kv("type", "error").key("error").begin_object();
  w.kv("type", type).kv("message", message).end_object().end_object();
}

void append_anthropic_error_event(std::string& out, std::string_view type,
                                  std::string_view message) {
  out += "event: error\ndata: ";
  append_anthropic_error(out, type, message);
  out += "\n\n";
}

std::string_view anthropic_error_type(int status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 402:
      return "billing_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 408:
    case 504:
      return "timeout_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

}  // namespace ob::dialect::anthropic
