// One connection to a provider origin: plain TCP or TLS over TCP, with its own read buffer
// (reserved large, so answers arrive in few reads). Owned by one worker thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>

namespace ob::upstream {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
// Completion token for `co_await op(..., use_tuple)` inside an asio::awaitable coroutine: the
// result is a tuple (error_code first), never an exception. A deferred operation is awaited in
// the caller's frame; use_awaitable would allocate a coroutine frame per operation.
constexpr auto use_tuple = asio::as_tuple(asio::deferred);

class connection {
 public:
  connection(const asio::any_io_executor& ex, ssl::context* tls_ctx);

  bool is_tls() const { return tls_.has_value(); }
  tcp::socket& lowest() { return tls_ ? tls_->next_layer() : plain_; }
  ssl::stream<tcp::socket>* tls() { return tls_ ? &*tls_ : nullptr; }

  // co_await read_some(b) / write(b): tuple of error_code and bytes transferred. read_some
  // takes another token for the completion (error_code, std::size_t) too.
  template <class MutableBuffers, class Token = std::decay_t<decltype(use_tuple)>>
  auto read_some(const MutableBuffers& b, Token token = use_tuple) {
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_)
            tls_->async_read_some(b, std::move(handler));
          else
            plain_.async_read_some(b, std::move(handler));
        },
        token, b);
  }
  template <class ConstBuffers>
  auto write(const ConstBuffers& b) {
    return asio::async_initiate<decltype(use_tuple), void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_)
            asio::async_write(*tls_, b, std::move(handler));
          else
            asio::async_write(plain_, b, std::move(handler));
        },
        use_tuple, b);
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
