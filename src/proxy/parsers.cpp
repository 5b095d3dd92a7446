#include "proxy/parsers.hpp"

namespace ob::proxy {

void request_parser::on_request_impl(beast::http::verb, beast::string_view method,
                                     beast::string_view target, int version, beast::error_code&) {
  out_.method.assign(method);
  out_.target.assign(target);
  out_.version = version;
}

void request_parser::on_field_impl(beast::http::field, beast::string_view name,
                                   beast::string_view value, beast::error_code&) {
  out_.headers.add(name, value);
}

void request_parser::on_body_init_impl(const boost::optional<std::uint64_t>& length,
                                       beast::error_code&) {
  out_.chunked = !length;
  if (length) out_.body.reserve_more(static_cast<std::size_t>(*length));
}

std::size_t request_parser::on_body_impl(beast::string_view body, beast::error_code&) {
  out_.body.append(body);
  return body.size();
}

std::size_t request_parser::on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                               beast::error_code&) {
  out_.body.append(body);
  return body.size();
}

void response_parser::on_response_impl(int code, beast::string_view reason, int version,
                                       beast::error_code&) {
  status_ = code;
  reason_.assign(reason);
  version_ = version;
}

void response_parser::on_field_impl(beast::http::field, beast::string_view name,
                                    beast::string_view value, beast::error_code&) {
  headers_.add(name, value);
}

std::size_t response_parser::on_body_impl(beast::string_view body, beast::error_code&) {
  sink_(ctx_, body);
  return body.size();
}

std::size_t response_parser::on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                                beast::error_code&) {
  sink_(ctx_, body);
  return body.size();
}

}  // namespace ob::proxy
