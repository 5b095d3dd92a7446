#include "upstream/connection.hpp"

namespace ob::upstream {

connection::connection(const asio::any_io_executor& ex, ssl::context* tls_ctx) : plain_(ex) {
  if (tls_ctx) tls_.emplace(ex, *tls_ctx);
}

bool connection::has_unread_input() {
  if (buffer.size() != 0) return true;
  if (!tls_) return false;
  // Asio's TLS engine feeds OpenSSL through a memory BIO pair: bytes it read from the socket
  // and OpenSSL has not yet consumed wait in the BIO; records OpenSSL read (in part or whole)
  // and plaintext not yet handed out wait inside the SSL object. (The engine reads the socket
  // only once the BIO is empty, at most 17 KiB, the BIO's size: no bytes wait outside it.)
  SSL* ssl = tls_->native_handle();
  return SSL_pending(ssl) > 0 || SSL_has_pending(ssl) == 1 ||
         BIO_ctrl_pending(SSL_get_rbio(ssl)) > 0;
}

void connection::close() {
  boost::system::error_code ec;
  lowest().close(ec);
}

}  // namespace ob::upstream
