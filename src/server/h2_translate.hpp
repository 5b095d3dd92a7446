// Pure pieces of the HTTP/2 listener (server/h2_connection.cpp): each HTTP/2 request stream is
// served by the HTTP/1.1 connection code over an in-process pipe, so a stream's header fields
// become an HTTP/1.1 request head here, and the HTTP/1.1 answer's header fields are filtered for
// HTTP/2 here. No sockets, no nghttp2.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ob::server::h2 {

// Collects one request's header fields (pseudo-headers first, as HTTP/2 sends them) and writes
// the HTTP/1.1 head that carries them.
class request_head {
 public:
  // `limit`: the header list budget (limits.max_header_bytes), counted as HTTP/2 does
  // (name + value + 32 per field).
  explicit request_head(std::size_t limit) : limit_(limit) {}

  void add(std::string_view name, std::string_view value);
  // The header list went past the limit: the stream is answered 431.
  bool too_large() const { return too_large_; }
  // A field that cannot be carried (CR, LF or NUL, a space in the method or path, a missing
  // :method or :path): the stream is answered 400.
  bool bad() const { return bad_ || method_.empty() || path_.empty(); }
  // Both :authority and a host field, naming different hosts (RFC 9113 section 8.3.1: the
  // request is malformed); compared case-insensitively, an empty port or the :scheme's default
  // one left out. The stream is answered 400. (nghttp2 itself drops a host field holding a
  // byte no host can: space, '/', '?', '#', '\', '"' or one >= 0x80; the :authority is used.)
  bool host_conflict() const;
  bool is_head() const { return method_ == "HEAD"; }
  std::string_view method() const { return method_; }
  std::string_view path() const { return path_; }
  // The client's content-length, when it sent one (nghttp2 checked that its DATA match it).
  std::optional<std::uint64_t> content_length() const { return content_length_; }
  std::string_view content_type() const { return content_type_; }

  // "METHOD path HTTP/1.1", Host (from :authority, else the host field), the other fields,
  // "Content-Length: n" and the blank line. Connection-specific fields and the client's own
  // Content-Length / Expect are left out (the framing is the gateway's).
  std::string finish(std::uint64_t content_length) const;
  // The same head for a body of unknown length: "Transfer-Encoding: chunked".
  std::string finish_chunked() const;

 private:
  std::size_t limit_;
  std::size_t bytes_ = 0;
  std::string_view normal_authority(std::string_view a) const;

  bool too_large_ = false, bad_ = false;
  bool https_ = true;  // :scheme (https when missing: the listener is TLS)
  std::string method_, path_, authority_, host_;
  std::string fields_;  // "name: value\r\n"...
  std::optional<std::uint64_t> content_length_;
  std::string content_type_;
  std::string finish_with(std::string_view framing) const;
};

// Whether an HTTP/1.1 answer's field is left out of the HTTP/2 answer (connection-specific,
// RFC 9113 8.2.2). `name` in any case.
bool connection_specific(std::string_view name);

// A client's RST_STREAM budget (rapid reset, CVE-2023-44487): `burst` resets at once, refilled
// at `per_second`. spend() is false once the budget is gone: the connection gets a GOAWAY.
class reset_budget {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  reset_budget(double burst, double per_second, time_point now)
      : burst_(burst), rate_(per_second), tokens_(burst), last_(now) {}
  bool spend(time_point now);

 private:
  double burst_, rate_, tokens_;
  time_point last_;
};

}  // namespace ob::server::h2
