#include "upstream/connection.hpp"

namespace ob::upstream {

connection::connection(const asio::any_io_executor& ex, ssl::context* tls_ctx) : plain_(ex) {
  if (tls_ctx) tls_.emplace(ex, *tls_ctx);
}

void connection::close() {
  boost::system::error_code ec;
  lowest().close(ec);
}

}  // namespace ob::upstream
