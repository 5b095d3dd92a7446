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
#include <boost/asio/steady_timer.hpp>

#include "config/schema.hpp"
#include "upstream/connection.hpp"

namespace ob::upstream {

// The process-wide client TLS context: verification on, system CA store
// (SSL_CERT_FILE / SSL_CERT_DIR honoured by OpenSSL's default paths), and sessions handed to
// the connector that made each connection (its per-origin cache), never kept inside OpenSSL.
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

  // Resolves (cached), connects and, for https, handshakes within `timeout`, resuming the
  // origin's last TLS session when there is one.
  asio::awaitable<connect_result> connect(const config::base_url& url,
                                          std::chrono::milliseconds timeout);

  // TLS handshakes done by this connector: full, and resumed from the origin's cached session.
  struct tls_counts {
    std::uint64_t full = 0, resumed = 0;
  };
  tls_counts tls_handshakes() const { return tls_counts_; }

  // The newest resumable session of one origin (host name or address, and port). Filled by
  // OpenSSL's new-session callback, which under TLS 1.3 runs when a ticket arrives after the
  // handshake (during a later read), so the slot must outlive every connection that points
  // at it: slots are never removed while the connector lives.
  struct session_slot {
    session_slot() = default;
    session_slot(const session_slot&) = delete;
    session_slot& operator=(const session_slot&) = delete;
    ~session_slot();
    void set(SSL_SESSION* s);  // takes the reference
    SSL_SESSION* session = nullptr;
  };

 private:
  struct dns_entry {
    std::vector<tcp::endpoint> endpoints;
    std::chrono::steady_clock::time_point expires;
  };
  // A lookup in progress, shared by every connection attempt to its host:port meanwhile.
  struct lookup {
    std::vector<asio::steady_timer*> waiters;  // each attempt's deadline, cancelled when done
    bool done = false;
    boost::system::error_code ec;
    std::vector<tcp::endpoint> endpoints;
  };
  // The addresses of url's host (cached for dns_ttl), or `timed_out` when the lookup has not
  // answered by `deadline`: a lookup cannot be cancelled, but an attempt stops waiting for it
  // (it goes on for the attempts that come later).
  asio::awaitable<std::vector<tcp::endpoint>> resolve(
      const config::base_url& url, std::chrono::steady_clock::time_point deadline,
      boost::system::error_code& ec, bool& timed_out);
  asio::awaitable<void> run_lookup(std::string key, std::string host, std::string port,
                                   std::shared_ptr<lookup> l);

  asio::any_io_executor ex_;
  std::shared_ptr<ssl::context> tls_;
  std::unordered_map<std::string, dns_entry> dns_;
  std::unordered_map<std::string, std::shared_ptr<lookup>> lookups_;  // by "host:port"
  // Per origin ("host:port"), stable addresses (each slot is its own allocation).
  std::unordered_map<std::string, std::unique_ptr<session_slot>> sessions_;
  tls_counts tls_counts_;
};

}  // namespace ob::upstream
