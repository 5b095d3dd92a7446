// The proxy listener's TLS side: the server SSL context in force, replaced whole when the
// certificate, key or client CA files are reloaded. A connection takes the context in force
// when it is accepted and keeps it (its SSL object holds a reference), so a reload never
// touches an established connection; new handshakes use the new pair.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <openssl/ssl.h>
#include <boost/asio/ssl/context.hpp>

#include "config/schema.hpp"

namespace ob::server {

// The application protocols the TLS listener offers by ALPN, in order of preference. Each one
// needs a connection handler (worker::handshake picks it): h2 (tls.http2) then HTTP/1.1.
enum class app_protocol { http1, h2 };
// The protocol ALPN chose on a finished handshake (none chosen: HTTP/1.1).
app_protocol negotiated_protocol(SSL* ssl);

class tls_context {
 public:
  explicit tls_context(config::tls_config files) : files_(std::move(files)) {}

  // Reads the files and, when they make a usable context, puts it in force. Returns false
  // with *error (naming the config key and file) and keeps the context in force otherwise.
  // Thread-safe (the file watchers and the signal handler may call it at once).
  bool load(std::string* error);
  // What the context in force serves, for the log: "serial 0A1B..., expires 2027-01-01".
  std::string describe() const;

  // The context for a new connection. Lock-free for readers in practice (one atomic load).
  std::shared_ptr<boost::asio::ssl::context> current() const {
    return current_.load(std::memory_order_acquire);
  }
  const config::tls_config& files() const { return files_; }

 private:
  const config::tls_config files_;
  mutable std::mutex load_mutex_;
  std::string describe_;  // under load_mutex_
  std::atomic<std::shared_ptr<boost::asio::ssl::context>> current_;
};

}  // namespace ob::server
