// One connection to a provider origin: plain TCP or TLS over TCP, with its own read buffer
// (reserved large, so answers arrive in few reads). Owned by one worker thread.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_prefix.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "net/recv_buffer.hpp"
#include "net/tls_socket.hpp"

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
  connection(const connection&) = delete;  // alive_ points at this object
  connection& operator=(const connection&) = delete;

  bool is_tls() const { return tls_.has_value(); }
  tcp::socket& lowest() { return tls_ ? tls_->socket() : plain_; }
  net::tls_socket* tls() { return tls_ ? &*tls_ : nullptr; }

  // co_await read_some(b) / write(b) / write_some(b): tuple of error_code and bytes transferred.
  // read_some takes another token for the completion (error_code, std::size_t) too.
  // A plain connection's read into one buffer is a net::recv_buffer read, and so is a TLS
  // connection's read of the socket into its input buffer (net::tls_socket::set_draining):
  // when it takes every byte the kernel holds (no FIN behind), the socket's next read waits
  // for its epoll edge without a recv that would find nothing: the pool's idle watch, the next
  // answer's first read, a stream's next event. A RST behind the last bytes is not in that
  // hint: a write on the connection then fails at once (a pooled one is retried on a fresh
  // connection), and a read that waits is checked by exchange::sweep (check_stalled_read).
  // may_drain::no keeps Asio's own read (a read beside a write, the health checker's).
  enum class may_drain : bool { no, yes };
  template <class MutableBuffers, class Token = std::decay_t<decltype(use_tuple)>>
  auto read_some(const MutableBuffers& b, Token token = use_tuple,
                 may_drain drain = may_drain::yes) {
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this, drain](auto handler, const MutableBuffers& b) {
          if (tls_) {
            tls_->set_draining(drain == may_drain::yes);
            tls_->async_read_some(b, std::move(handler));
          } else if constexpr (std::is_convertible_v<MutableBuffers, asio::mutable_buffer>) {
            if (drain == may_drain::yes)
              plain_.async_read_some(net::recv_into(b), std::move(handler));
            else
              plain_.async_read_some(asio::mutable_buffer(b), std::move(handler));
          } else {
            plain_.async_read_some(b, std::move(handler));
          }
        },
        token, b);
  }
  template <class ConstBuffers>
  auto write(const ConstBuffers& b) {
    return asio::async_initiate<decltype(use_tuple), void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_)
            tls_->async_write(b, std::move(handler));
          else
            asio::async_write(plain_, b, std::move(handler));
        },
        use_tuple, b);
  }

  // One write of as much of `b` as the socket takes at once (a TLS stream: one record).
  template <class ConstBuffers>
  auto write_some(const ConstBuffers& b) {
    return asio::async_initiate<decltype(use_tuple), void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_)  // at most one record, written whole
            tls_->async_write(boost::beast::buffers_prefix(net::tls_socket::record_size, b),
                              std::move(handler));
          else
            plain_.async_write_some(b, std::move(handler));
        },
        use_tuple, b);
  }
  // write(b) with a plain callback for the completion (a write that runs beside a read).
  template <class ConstBuffers, class Handler>
  void write_then(const ConstBuffers& b, Handler&& h) {
    if (tls_)
      tls_->async_write(b, std::forward<Handler>(h));
    else
      asio::async_write(plain_, b, std::forward<Handler>(h));
  }

  // Closes the socket; pending operations complete with operation_aborted. Idempotent.
  void close();

  // Whether answer bytes were received but not consumed: in `buffer`, or (TLS) records or
  // plaintext held inside OpenSSL. Such a connection must not carry another request.
  bool has_unread_input();

  // Expires when this object is destroyed: lets a pending handler tell whether `*this` is gone.
  std::weak_ptr<connection*> alive() const { return alive_; }

  boost::beast::flat_buffer buffer{1 << 20};  // upstream answer bytes not yet parsed
  std::chrono::steady_clock::time_point idle_since{};
  // How long the pool may keep this connection idle, from the provider's last answer
  // (keep_alive_limit below); the pool's own max_idle bounds it too.
  std::chrono::milliseconds keep_limit = std::chrono::milliseconds::max();
  std::uint64_t uses = 0;  // requests sent on this connection
  bool big_reads = false;  // a read filled its buffer: read 16 KiB at a time from now on

  // Pool state while idle (upstream/pool.cpp): the queue holding this connection (nullptr when
  // leased) and the byte its idle watch reads into.
  std::deque<std::unique_ptr<connection>>* idle_in = nullptr;
  char probe = 0;
  // The idle watch found EOF or an error on this connection and closed it after it had been
  // leased: the provider had closed it, so it never read what was sent on it (stray bytes
  // instead leave this false: such a provider may have read the request).
  bool closed_by_watch = false;

 private:
  tcp::socket plain_;
  std::optional<net::tls_socket> tls_;  // client side: reads through its input buffer
  std::shared_ptr<connection*> alive_ = std::make_shared<connection*>(this);
};

}  // namespace ob::upstream
