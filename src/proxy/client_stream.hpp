// The byte stream of one client connection: a plain TCP socket, TLS over one (the proxy
// listener's "tls", tls_socket.hpp), or an in-process pipe to an HTTP/2 stream
// (memory_pipe.hpp). The HTTP/1.1 code reads and writes through it without knowing which; a
// plain connection pays one predictable branch per operation and no allocation (the TLS socket
// and the pipe exist only for their kinds). Deadlines, the client watch and lingering close act
// on the TCP socket underneath (lowest()); for a pipe, lowest() is a socket never opened, and
// cancel(), close(), the client watch (memory_pipe::async_wait_gone) act on the pipe.
#pragma once

#include <memory>
#include <optional>

#include <sys/socket.h>

#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/write.hpp>

#include "net/recv_buffer.hpp"
#include "proxy/memory_pipe.hpp"
#include "proxy/tls_socket.hpp"

namespace ob::proxy {

class client_stream {
 public:
  using tcp = boost::asio::ip::tcp;
  // Gathers a write's buffers into one TLS record where the plain path writes them with one
  // writev.
  using tls_stream = tls_socket;

  explicit client_stream(tcp::socket s) : plain_(std::move(s)) {}
  // TLS: `ctx` is the listener's context in force at accept time; held so that a reload
  // replacing it leaves this connection's handshake and session untouched.
  client_stream(tcp::socket s, std::shared_ptr<boost::asio::ssl::context> ctx)
      : plain_(s.get_executor()), ctx_(std::move(ctx)) {
    tls_.emplace(std::move(s), ctx_->native_handle());
  }

  // An HTTP/2 stream's pipe; `ex`: the HTTP/2 connection's executor.
  client_stream(std::shared_ptr<memory_pipe> p, const tcp::socket::executor_type& ex)
      : plain_(ex), pipe_(std::move(p)) {}

  bool is_tls() const { return tls_.has_value(); }
  memory_pipe* pipe() { return pipe_.get(); }
  // An HTTP/2 stream whose request the HTTP/2 side answered itself (memory_pipe::take_over).
  bool taken_over() const { return pipe_ && pipe_->taken_over(); }
  tls_stream* tls() { return tls_ ? &*tls_ : nullptr; }
  tcp::socket& lowest() { return tls_ ? tls_->socket() : plain_; }
  tcp::socket::executor_type get_executor() { return lowest().get_executor(); }

  // TLS only: the server side of the handshake. Completion signature (error_code).
  template <class Token>
  auto async_handshake(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler) { tls_->async_handshake(std::move(handler)); }, token);
  }

  // TLS: sends close_notify if it can at once (tls_socket::close_notify). Before the gateway
  // closes a connection it chose to end; nothing for a plain one.
  void close_notify() {
    if (tls_) tls_->close_notify();
  }

  // Pending reads and writes fail with operation_aborted.
  void cancel() {
    boost::system::error_code ec;
    if (pipe_) [[unlikely]]
      pipe_->cancel();
    else
      lowest().cancel(ec);
  }
  void close() {
    boost::system::error_code ec;
    if (pipe_) [[unlikely]]
      pipe_->close();
    else
      lowest().close(ec);
  }
  bool is_open() { return pipe_ ? pipe_->is_open() : lowest().is_open(); }

  // Completion signature (error_code, std::size_t) for all kinds.
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (pipe_) [[unlikely]]
            pipe_->async_read_some(b, std::move(handler));
          else if (tls_)
            tls_->async_read_some(b, std::move(handler));
          else
            plain_.async_read_some(net::recv_into(b, &drained_), std::move(handler));
        },
        token, b);
  }
  // A read in the middle of a message (the rest of a head or of a body): tried on the socket
  // at once, not left to wait for an epoll edge. The read that took the socket's last bytes
  // may have marked it drained (net/recv_buffer.hpp), and a reset that came with those bytes is
  // in no hint and raises no edge: only a read finds it, so without this try the read would
  // wait for its deadline (then a 408 for nobody). The wait for a connection's next request
  // is the one read that waits without a try (async_read_some). Only a read after one that
  // drained the socket tries it itself; after any other, Asio's read starts with its own
  // speculative recv. `b`: one buffer, not empty.
  template <class MutableBuffer, class Token>
  auto async_read_more(const MutableBuffer& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffer& b) {
          if (pipe_) [[unlikely]] {
            pipe_->async_read_some(b, std::move(handler));
          } else if (tls_) {
            tls_->async_read_more(b, std::move(handler));
          } else {
            std::size_t n = 0;
            boost::system::error_code ec;
            if (drained_ && net::recv_some(plain_.native_handle(), boost::asio::mutable_buffer(b),
                                           MSG_DONTWAIT, n, ec, drained_)) {
              auto ex = plain_.get_executor();
              boost::asio::post(ex, boost::asio::append(std::move(handler), ec, n));
            } else {
              plain_.async_read_some(net::recv_into(b, &drained_), std::move(handler));
            }
          }
        },
        token, b);
  }
  // Writes all of `b` (asio::async_write).
  template <class ConstBuffers, class Token>
  auto async_write(const ConstBuffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (pipe_) [[unlikely]]
            pipe_->async_write(b, std::move(handler));
          else if (tls_)
            tls_->async_write(b, std::move(handler));
          else
            boost::asio::async_write(plain_, b, std::move(handler));
        },
        token, b);
  }

 private:
  tcp::socket plain_;  // unused (never opened) under TLS
  std::shared_ptr<boost::asio::ssl::context> ctx_;
  std::optional<tls_stream> tls_;
  std::shared_ptr<memory_pipe> pipe_;  // HTTP/2 streams only
  bool drained_ = false;               // the plain socket's last read drained it (recv_buffer.hpp)
};

}  // namespace ob::proxy
