#include "proxy/parsers.hpp"

#include "proxy/http/request_check.hpp"

namespace ob::proxy {

http::header_id header_id_of(beast::http::field f, std::string_view name) {
  using field = beast::http::field;
  using id = http::header_id;
  switch (f) {
    case field::unknown:
      return http::classify(name);  // x-api-key, x-forwarded-for, retry-after-ms, any other
    case field::connection:
      return id::connection;
    case field::keep_alive:
      return id::keep_alive;
    case field::proxy_connection:
      return id::proxy_connection;
    case field::te:
      return id::te;
    case field::trailer:
      return id::trailer;
    case field::transfer_encoding:
      return id::transfer_encoding;
    case field::upgrade:
      return id::upgrade;
    case field::proxy_authenticate:
      return id::proxy_authenticate;
    case field::proxy_authorization:
      return id::proxy_authorization;
    case field::host:
      return id::host;
    case field::authorization:
      return id::authorization;
    case field::content_length:
      return id::content_length;
    case field::accept_encoding:
      return id::accept_encoding;
    case field::expect:
      return id::expect;
    case field::cookie:
      return id::cookie;
    case field::forwarded:
      return id::forwarded;
    case field::content_type:
      return id::content_type;
    case field::retry_after:
      return id::retry_after;
    case field::set_cookie:
      return id::set_cookie;
    default:
      return id::other;
  }
}

void request_parser::on_request_impl(beast::http::verb, beast::string_view method,
                                     beast::string_view target, int version, beast::error_code&) {
  out_.method.assign(method);
  // An absolute-form target ("http://host/v1/...") is served as its path and query; one with a
  // bad authority is kept whole, and the request check refuses it as not origin-form.
  if (auto a = http::split_absolute(target); a.valid) {
    out_.target.clear();
    if (a.origin.empty() || a.origin.front() != '/') out_.target.push_back('/');
    out_.target.append(a.origin);
  } else {
    out_.target.assign(target);
  }
  out_.version = version;
}

void request_parser::on_field_impl(beast::http::field f, beast::string_view name,
                                   beast::string_view value, beast::error_code&) {
  // Fields after the head are chunked trailers: they came after the request checks and must
  // not turn into headers the provider sees (RFC 9110 section 6.5.1). Dropped.
  if (is_header_done()) return;
  out_.headers.add(name, value, header_id_of(f, name));
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

void request_parser::on_chunk_header_impl(std::uint64_t, beast::string_view extensions,
                                          beast::error_code& ec) {
  if (extensions.size() > http::max_chunk_line) ec = beast::http::error::bad_chunk_extension;
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

void response_parser::on_field_impl(beast::http::field f, beast::string_view name,
                                    beast::string_view value, beast::error_code&) {
  if (is_header_done()) return;  // trailers of a chunked answer: not headers for the client
  headers_.add(name, value, header_id_of(f, name));
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
