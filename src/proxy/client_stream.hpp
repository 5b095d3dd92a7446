// The byte stream of one client connection: a plain TCP socket, or TLS over one (the proxy
// listener's "tls", tls_socket.hpp). The HTTP/1.1 code reads and writes through it without
// knowing which; a plain connection pays one predictable branch per operation and no
// allocation (the TLS socket is built only for TLS connections). Deadlines, the client watch
// and lingering close act on the TCP socket underneath (lowest()).
#pragma once

#include <memory>
#include <optional>

#include <boost/asio/async_result.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/write.hpp>

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

  bool is_tls() const { return tls_.has_value(); }
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

  // Completion signature (error_code, std::size_t) for both.
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_)
            tls_->async_read_some(b, std::move(handler));
          else
            plain_.async_read_some(b, std::move(handler));
        },
        token, b);
  }
  // Writes all of `b` (asio::async_write).
  template <class ConstBuffers, class Token>
  auto async_write(const ConstBuffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_)
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
};

}  // namespace ob::proxy
