// "host:port", "[v6]:port", ":port" -> endpoint.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

namespace ob::server {

// "127.0.0.1:8080", "[::1]:8080": the form parse_listen_address reads, for logs.
std::string format_listen_address(const boost::asio::ip::tcp::endpoint& ep);

// Host may be an IP literal, "localhost", "*" or empty (all interfaces), or a name resolved
// once at start.
std::optional<boost::asio::ip::tcp::endpoint> parse_listen_address(std::string_view text,
                                                                   std::string* error);

}  // namespace ob::server

namespace ob::server {

// Workers listen with SO_REUSEPORT, which would let a second process (same user) silently share
// the address. So before they bind, one socket without SO_REUSEPORT is bound and closed: it
// fails if anything already listens there, whatever its options. Returns why the address is
// unusable, or nothing when it is free. Port 0 is never checked. The check and the workers'
// binds are not atomic: two processes started within microseconds of each other could both
// pass (see docs/ARCHITECTURE.md).
std::optional<std::string> check_address_free(const boost::asio::ip::tcp::endpoint& ep);

}  // namespace ob::server
