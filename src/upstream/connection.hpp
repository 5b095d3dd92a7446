// One connection to a provider origin: plain TCP or TLS over TCP, with its own read buffer
// (reserved large, so answers arrive in few reads). Owned by one worker thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>

namespace ob::upstream {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

class connection {
 public:
  connection(const asio::any_io_executor& ex, ssl::context* tls_ctx);

  bool is_tls() const { return tls_.has_value(); }
  tcp::socket& lowest() { return tls_ ? tls_->next_layer() : plain_; }
  ssl::stream<tcp::socket>* tls() { return tls_ ? &*tls_ : nullptr; }

  template <class MutableBuffers>
  auto read_some(const MutableBuffers& b) {
    return tls_ ? tls_->async_read_some(b, use_tuple) : plain_.async_read_some(b, use_tuple);
  }
  template <class ConstBuffers>
  auto write(const ConstBuffers& b) {
    return tls_ ? asio::async_write(*tls_, b, use_tuple) : asio::async_write(plain_, b, use_tuple);
  }

  // Closes the socket; pending operations complete with operation_aborted. Idempotent.
  void close();

  boost::beast::flat_buffer buffer{1 << 20};  // upstream answer bytes not yet parsed
  std::chrono::steady_clock::time_point idle_since{};
  std::uint64_t uses = 0;  // requests sent on this connection
  bool big_reads = false;  // a read filled its buffer: read 16 KiB at a time from now on

 private:
  tcp::socket plain_;
  std::optional<ssl::stream<tcp::socket>> tls_;
};

}  // namespace ob::upstream
