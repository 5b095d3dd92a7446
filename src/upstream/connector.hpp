// Opens new provider connections: cached asynchronous DNS, TCP connect with TCP_NODELAY,
// TLS with SNI and certificate + host name verification. One per worker thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "config/schema.hpp"
#include "upstream/connection.hpp"

namespace ob::upstream {

// The process-wide client TLS context: verification on, system CA store
// (SSL_CERT_FILE / SSL_CERT_DIR honoured by OpenSSL's default paths).
std::shared_ptr<ssl::context> make_client_tls_context();

enum class connect_error { none, resolve, connect, tls, timeout };
const char* to_string(connect_error e);

struct connect_result {
  std::unique_ptr<connection> conn;  // set when error == none
  connect_error error = connect_error::none;
  std::string detail;  // human-readable cause, for logs and error messages
};

class connector {
 public:
  connector(asio::any_io_executor ex, std::shared_ptr<ssl::context> tls);

  // Resolves (cached), connects and, for https, handshakes within `timeout`.
  asio::awaitable<connect_result> connect(const config::base_url& url,
                                          std::chrono::milliseconds timeout);

 private:
  struct dns_entry {
    std::vector<tcp::endpoint> endpoints;
    std::chrono::steady_clock::time_point expires;
  };
  asio::awaitable<std::vector<tcp::endpoint>> resolve(const config::base_url& url,
                                                      boost::system::error_code& ec,
                                                      std::shared_ptr<void> guard);

  asio::any_io_executor ex_;
  std::shared_ptr<ssl::context> tls_;
  std::unordered_map<std::string, dns_entry> dns_;
};

}  // namespace ob::upstream
