#include "upstream/connector.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/loop_resolver.hpp"
#include "net/recv_buffer.hpp"

namespace ob::upstream {
namespace {

constexpr std::chrono::seconds dns_ttl{30};

// The SSL ex_data index where a connection keeps its connector's session slot.
int session_slot_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// OpenSSL's new-session callback: a copy of the session goes to the slot of the connection's
// origin. A copy, because OpenSSL marks the connection's own session not resumable when that
// connection later ends in an error, which a provider closing without close_notify causes.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<connector::session_slot*>(SSL_get_ex_data(ssl, session_slot_index()));
  if (!slot || !SSL_SESSION_is_resumable(session)) return 0;
  if (SSL_SESSION* copy = SSL_SESSION_dup(session)) slot->set(copy);
  return 0;  // OpenSSL keeps (and frees) its own reference
}

// Shared between a connect attempt and its timeout handler, so whichever runs last is safe.
struct attempt_state {
  explicit attempt_state(const asio::any_io_executor& ex) : timer(ex) {}
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
  // Sessions are cached per origin by each connector (on_new_session), not in the context:
  // no lock shared by the workers, and a session is only offered to the origin it came from.
  SSL_CTX_set_session_cache_mode(ctx->native_handle(),
                                 SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx->native_handle(), on_new_session);
  session_slot_index();  // allocated once, before any worker thread races for it
  return ctx;
}

connector::session_slot::~session_slot() {
  if (session) SSL_SESSION_free(session);
}

void connector::session_slot::set(SSL_SESSION* s) {
  if (session) SSL_SESSION_free(session);
  session = s;
}

connector::connector(asio::any_io_executor ex, std::shared_ptr<ssl::context> tls)
    : ex_(std::move(ex)), tls_(std::move(tls)) {}

asio::awaitable<std::vector<tcp::endpoint>> connector::resolve(
    const config::base_url& url, std::chrono::steady_clock::time_point deadline,
    boost::system::error_code& ec, bool& timed_out) {
  boost::system::error_code aec;
  auto addr = asio::ip::make_address(url.host, aec);
  if (!aec) co_return std::vector<tcp::endpoint>{tcp::endpoint(addr, url.port)};

  std::string key = url.host + ":" + std::to_string(url.port);
  auto now = std::chrono::steady_clock::now();
  if (auto it = dns_.find(key); it != dns_.end() && it->second.expires > now)
    co_return it->second.endpoints;

  // One lookup per name at a time, whatever the number of requests that need it.
  auto& slot = lookups_[key];
  if (!slot) {
    slot = std::make_shared<lookup>();
    asio::co_spawn(ex_, run_lookup(key, url.host, std::to_string(url.port), slot), asio::detached);
  }
  auto l = slot;
  if (!l->done) {
    asio::steady_timer wait(ex_, deadline);
    l->waiters.push_back(&wait);
    co_await wait.async_wait(use_tuple);  // cancelled by the lookup's end, or the deadline
    if (!l->done) {
      std::erase(l->waiters, &wait);
      timed_out = true;
      co_return std::vector<tcp::endpoint>{};
    }
  }
  ec = l->ec;
  co_return l->endpoints;
}

asio::awaitable<void> connector::run_lookup(std::string key, std::string host, std::string port,
                                            std::shared_ptr<lookup> l) {
  // Not an asio resolver of ex_: a worker's loop runs without the scheduler's lock, which
  // asio's resolver thread would need (net/loop_resolver.hpp).
  auto [ec, eps] = co_await net::resolve(ex_, std::move(host), std::move(port));
  l->done = true;
  l->ec = ec;
  if (!ec) {
    dns_[key] = dns_entry{eps, std::chrono::steady_clock::now() + dns_ttl};
    l->endpoints = std::move(eps);
  }
  if (auto it = lookups_.find(key); it != lookups_.end() && it->second == l) lookups_.erase(it);
  for (auto* w : l->waiters) w->cancel();
  l->waiters.clear();
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
    st->conn->close();
  });
  auto finish = [&](connect_error e, std::string detail) {
    st->done = true;
    st->timer.cancel();
    if (st->timed_out && e != connect_error::timeout) {
      e = connect_error::timeout;
      detail = "no connection within " + std::to_string(timeout.count()) + " ms";
    }
    res.error = e;
    res.detail = std::move(detail);
    if (e == connect_error::none) res.conn = std::move(conn);
  };

  boost::system::error_code ec;
  bool dns_late = false;
  auto endpoints = co_await resolve(url, std::chrono::steady_clock::now() + timeout, ec, dns_late);
  if (dns_late) {
    finish(connect_error::timeout, "no address for " + url.host + " within " +
                                       std::to_string(timeout.count()) + " ms (DNS)");
    co_return res;
  }
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
  // The kernel's hint for the connection's reads of the socket (connection::read_some).
  net::enable_drain_hint(conn->lowest());

  if (auto* tls = conn->tls()) {
    boost::system::error_code addr_ec;
    asio::ip::make_address(url.host, addr_ec);
    SSL* h = tls->native_handle();
    if (addr_ec)  // SNI only for names, never for IP literals (RFC 6066)
      SSL_set_tlsext_host_name(h, url.host.c_str());
    // The certificate must name the host: X509_check_host (or X509_check_ip_asc for an address
    // literal) on the leaf, no flags, as Asio's host_name_verification did; the chain is
    // verified against the system store (verify_peer on the context).
    if (SSL_set1_host(h, url.host.c_str()) != 1) {  // never a handshake without the check
      finish(connect_error::tls, "cannot verify " + url.host_header + ": bad host name");
      co_return res;
    }
    auto& slot = sessions_[url.host + ":" + std::to_string(url.port)];
    if (!slot) slot = std::make_unique<session_slot>();
    SSL_set_ex_data(h, session_slot_index(), slot.get());
    // A copy again: the slot's session must stay resumable whatever becomes of this connection.
    if (SSL_SESSION* offer = slot->session ? SSL_SESSION_dup(slot->session) : nullptr) {
      SSL_set_session(h, offer);
      SSL_SESSION_free(offer);  // the SSL holds its own reference
    }
    auto [hec] = co_await tls->async_handshake(use_tuple);
    if (hec) {
      slot->set(nullptr);  // a session that ended in a failed handshake is not offered again
      SSL_set_ex_data(h, session_slot_index(), nullptr);
      finish(connect_error::tls,
             "TLS handshake with " + url.host_header + " failed: " + hec.message());
      co_return res;
    }
    ++(SSL_session_reused(h) ? tls_counts_.resumed : tls_counts_.full);
  }
  finish(connect_error::none, {});
  co_return res;
}

}  // namespace ob::upstream
