#include "upstream/connector.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>

namespace ob::upstream {
namespace {

constexpr std::chrono::seconds dns_ttl{30};

// Shared between a connect attempt and its timeout handler, so whichever runs last is safe.
struct attempt_state {
  explicit attempt_state(const asio::any_io_executor& ex) : resolver(ex), timer(ex) {}
  tcp::resolver resolver;
  asio::steady_timer timer;
  connection* conn = nullptr;
  bool done = false;
  bool timed_out = false;
};

}  // namespace

const char* to_string(connect_error e) {
  switch (e) {
    case connect_error::none:
      return "none";
    case connect_error::resolve:
      return "dns";
    case connect_error::connect:
      return "connect";
    case connect_error::tls:
      return "tls";
    case connect_error::timeout:
      return "connect_timeout";
  }
  return "?";
}

std::shared_ptr<ssl::context> make_client_tls_context() {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_default_verify_paths();
  ctx->set_verify_mode(ssl::verify_peer);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  return ctx;
}

connector::connector(asio::any_io_executor ex, std::shared_ptr<ssl::context> tls)
    : ex_(std::move(ex)), tls_(std::move(tls)) {}

asio::awaitable<std::vector<tcp::endpoint>> connector::resolve(const config::base_url& url,
                                                               boost::system::error_code& ec,
                                                               std::shared_ptr<void> guard) {
  auto* st = static_cast<attempt_state*>(guard.get());
  boost::system::error_code aec;
  auto addr = asio::ip::make_address(url.host, aec);
  if (!aec) co_return std::vector<tcp::endpoint>{tcp::endpoint(addr, url.port)};

  std::string key = url.host + ":" + std::to_string(url.port);
  auto now = std::chrono::steady_clock::now();
  if (auto it = dns_.find(key); it != dns_.end() && it->second.expires > now)
    co_return it->second.endpoints;

  auto [rec, results] =
      co_await st->resolver.async_resolve(url.host, std::to_string(url.port), use_tuple);
  ec = rec;
  std::vector<tcp::endpoint> eps;
  if (rec) co_return eps;
  for (const auto& r : results) eps.push_back(r.endpoint());
  dns_[key] = dns_entry{eps, std::chrono::steady_clock::now() + dns_ttl};
  co_return eps;
}

asio::awaitable<connect_result> connector::connect(const config::base_url& url,
                                                   std::chrono::milliseconds timeout) {
  connect_result res;
  auto conn = std::make_unique<connection>(ex_, url.tls ? tls_.get() : nullptr);
  auto st = std::make_shared<attempt_state>(ex_);
  st->conn = conn.get();
  st->timer.expires_after(timeout);
  st->timer.async_wait([st](boost::system::error_code ec) {
    if (ec || st->done) return;
    st->timed_out = true;
    st->resolver.cancel();
    st->conn->close();
  });
  auto finish = [&](connect_error e, std::string detail) {
    st->done = true;
    st->timer.cancel();
    if (st->timed_out) {
      e = connect_error::timeout;
      detail = "no connection within " + std::to_string(timeout.count()) + " ms";
    }
    res.error = e;
    res.detail = std::move(detail);
    if (e == connect_error::none) res.conn = std::move(conn);
  };

  boost::system::error_code ec;
  auto endpoints = co_await resolve(url, ec, st);
  if (ec || endpoints.empty()) {
    finish(connect_error::resolve, "cannot resolve " + url.host + ": " + ec.message());
    co_return res;
  }
  auto [cec, ep] = co_await asio::async_connect(conn->lowest(), endpoints, use_tuple);
  if (cec) {
    finish(connect_error::connect, "cannot connect to " + url.host_header + ": " + cec.message());
    co_return res;
  }
  conn->lowest().set_option(tcp::no_delay(true), ec);

  if (auto* tls = conn->tls()) {
    boost::system::error_code addr_ec;
    asio::ip::make_address(url.host, addr_ec);
    if (addr_ec)  // SNI only for names, never for IP literals (RFC 6066)
      SSL_set_tlsext_host_name(tls->native_handle(), url.host.c_str());
    tls->set_verify_callback(ssl::host_name_verification(url.host));
    auto [hec] = co_await tls->async_handshake(ssl::stream_base::client, use_tuple);
    if (hec) {
      finish(connect_error::tls,
             "TLS handshake with " + url.host_header + " failed: " + hec.message());
      co_return res;
    }
  }
  finish(connect_error::none, {});
  co_return res;
}

}  // namespace ob::upstream
