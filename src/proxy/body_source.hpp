// The rest of a request body relayed to the provider as it arrives, after the prefix the
// gateway read to route the request (request_data::body). Used for multipart/form-data
// uploads whose `model` part came before the end of the body (server/client_form.cpp).
#pragma once

#include <cstdint>
#include <string_view>

#include <boost/asio/awaitable.hpp>

namespace ob::proxy {

enum class body_status {
  more,             // bytes: the next piece
  end,              // the body is complete (and, for a form, ends with its close delimiter)
  timeout,          // timeouts.client_body or client_body_total ran out: 408
  gone,             // the client closed or reset the connection: 499, nothing answered
  too_large,        // a chunked body grew past limits.max_body_bytes: 413
  bad_framing,      // broken chunked framing: 400
  malformed,        // the form ended without its close delimiter, or a part is broken: 400
  duplicate_field,  // the form has a second routing field ("model"): 400 invalid_model
  shutdown,         // the shutdown grace ended while reading: 503
};

struct body_piece {
  body_status status = body_status::end;
  std::string_view bytes;  // valid until the next call of next()
};

class body_source {
 public:
  // The next piece of the body after the prefix. Once called, the body can no longer be
  // sent again (failover stops); the source reads from the client only when asked, so the
  // client uploads as fast as the provider takes the body.
  virtual boost::asio::awaitable<body_piece> next() = 0;

  bool chunked = false;          // the client sent the body chunked: so does the upstream request
  std::uint64_t rest = 0;        // not chunked: the bytes that follow the prefix
  bool started = false;          // next() was called
  bool finished = false;         // next() returned end: every byte of the request was read
  std::uint64_t bytes_read = 0;  // the whole body's bytes read so far (prefix included)

 protected:
  ~body_source() = default;
};

}  // namespace ob::proxy
