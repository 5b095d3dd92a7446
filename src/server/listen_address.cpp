#include "server/listen_address.hpp"

#include <charconv>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/v6_only.hpp>

namespace ob::server {

std::string format_listen_address(const boost::asio::ip::tcp::endpoint& ep) {
  auto host = ep.address().to_string();
  if (ep.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

std::optional<boost::asio::ip::tcp::endpoint> parse_listen_address(std::string_view text,
                                                                   std::string* error) {
  namespace ip = boost::asio::ip;
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      *error = "expected [address]:port";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      *error = "expected host:port";
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || ptr != port.data() + port.size() || p > 65535) {
    *error = "invalid port '" + std::string(port) + "'";
    return std::nullopt;
  }
  auto port16 = static_cast<unsigned short>(p);
  if (host.empty() || host == "*" || host == "0.0.0.0")
    return ip::tcp::endpoint(ip::address_v4::any(), port16);
  if (host == "localhost") return ip::tcp::endpoint(ip::address_v4::loopback(), port16);
  boost::system::error_code aec;
  auto addr = ip::make_address(std::string(host), aec);
  if (!aec) return ip::tcp::endpoint(addr, port16);
  boost::asio::io_context ioc;
  ip::tcp::resolver resolver(ioc);
  auto results = resolver.resolve(std::string(host), std::string(port), aec);
  if (aec || results.empty()) {
    *error = "cannot resolve '" + std::string(host) + "': " + aec.message();
    return std::nullopt;
  }
  return results.begin()->endpoint();
}

}  // namespace ob::server

namespace ob::server {

std::optional<std::string> check_address_free(const boost::asio::ip::tcp::endpoint& ep) {
  if (ep.port() == 0) return std::nullopt;
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor probe(ioc);
  boost::system::error_code ec;
  probe.open(ep.protocol(), ec);
  // SO_REUSEADDR as the workers have it: a restart must not wait for TIME_WAIT connections,
  // and it never allows binding next to a listening socket.
  if (!ec) probe.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec && ep.protocol() == boost::asio::ip::tcp::v6())
    probe.set_option(boost::asio::ip::v6_only(false), ec);
  if (!ec) probe.bind(ep, ec);
  if (ec) return ec.message();
  return std::nullopt;
}

}  // namespace ob::server
