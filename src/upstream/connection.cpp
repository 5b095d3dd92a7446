#include "upstream/connection.hpp"

namespace ob::upstream {

connection::connection(const asio::any_io_executor& ex, ssl::context* tls_ctx) : plain_(ex) {
  if (tls_ctx) tls_.emplace(tcp::socket(ex), tls_ctx->native_handle(), net::tls_socket::client);
}

bool connection::has_unread_input() {
  if (buffer.size() != 0) return true;
  if (!tls_) return false;
  // Bytes the socket's read brought and OpenSSL has not taken yet, records OpenSSL read (in
  // part or whole, read-ahead) and plaintext not yet handed out.
  return tls_->has_buffered_input();
}

void connection::close() {
  boost::system::error_code ec;
  lowest().close(ec);
}

}  // namespace ob::upstream
