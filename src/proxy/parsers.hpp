// HTTP/1.1 message parsers built on Beast's basic_parser: Beast does the strict parsing and
// limits; these subclasses store what the proxy needs without Beast's per-field allocations,
// and hand body bytes to the proxy as they arrive (no intermediate message body).
#pragma once

#include <string>

#include <boost/beast/http/basic_parser.hpp>

#include "proxy/byte_buffer.hpp"
#include "proxy/http/headers.hpp"

namespace ob::proxy {

namespace beast = boost::beast;

// The gateway's id for a header Beast parsed as `f` (Beast recognises every registered field
// name before on_field_impl; only names it does not know are compared here).
http::header_id header_id_of(beast::http::field f, std::string_view name);

// Everything the gateway keeps of one client request; reused across a connection's requests.
struct request_data {
  std::string method;
  std::string target;
  int version = 11;
  http::header_list headers;
  byte_buffer body;
  bool chunked = false;

  void clear() {
    method.clear();
    target.clear();
    headers.clear();
    body.clear();
    chunked = false;
  }
};

// Whether a parser may be given `buffered` bytes now. Beast 1.81's basic_parser, once it has seen
// a final chunk "0\r\n" and asked for more (the trailers' end), asserts when called again with
// fewer than 5 bytes (basic_parser.ipp parse_chunk_header), which a client or provider sending
// a few bytes at a time can cause. The rest of an unfinished chunked body is always at least 5
// bytes ("0\r\n\r\n"), so waiting for 5 never stalls a message that is being completed.
template <class Parser>
bool ready_to_feed(const Parser& p, std::size_t buffered) {
  return buffered >= 5 || !p.is_header_done() || !p.chunked() || p.is_done();
}

class request_parser final : public beast::http::basic_parser<true> {
 public:
  explicit request_parser(request_data& out) : out_(out) {}

 private:
  void on_request_impl(beast::http::verb, beast::string_view method, beast::string_view target,
                       int version, beast::error_code&) override;
  void on_response_impl(int, beast::string_view, int, beast::error_code&) override {}
  void on_field_impl(beast::http::field, beast::string_view name, beast::string_view value,
                     beast::error_code&) override;
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, beast::error_code&) override;
  std::size_t on_body_impl(beast::string_view body, beast::error_code&) override;
  // Refuses chunk extensions longer than http::max_chunk_line (they are otherwise ignored).
  void on_chunk_header_impl(std::uint64_t, beast::string_view extensions,
                            beast::error_code& ec) override;
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                 beast::error_code&) override;
  void on_finish_impl(beast::error_code&) override {}

  request_data& out_;
};

// Upstream answers. Body bytes go to `sink(ctx, bytes)` as they are parsed (de-chunked).
class response_parser final : public beast::http::basic_parser<false> {
 public:
  using sink_fn = void (*)(void* ctx, std::string_view bytes);
  response_parser(http::header_list& headers, sink_fn sink, void* ctx)
      : headers_(headers), sink_(sink), ctx_(ctx) {}

  int status() const { return status_; }
  const std::string& reason() const { return reason_; }
  int version() const { return version_; }

 private:
  void on_request_impl(beast::http::verb, beast::string_view, beast::string_view, int,
                       beast::error_code&) override {}
  void on_response_impl(int code, beast::string_view reason, int version,
                        beast::error_code&) override;
  void on_field_impl(beast::http::field, beast::string_view name, beast::string_view value,
                     beast::error_code&) override;
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  std::size_t on_body_impl(beast::string_view body, beast::error_code&) override;
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                 beast::error_code&) override;
  void on_finish_impl(beast::error_code&) override {}

  http::header_list& headers_;
  sink_fn sink_;
  void* ctx_;
  int status_ = 0;
  int version_ = 11;
  std::string reason_;
};

}  // namespace ob::proxy
