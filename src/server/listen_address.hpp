// "host:port", "[v6]:port", ":port" -> endpoint.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

namespace ob::server {

// Host may be an IP literal, "localhost", "*" or empty (all interfaces), or a name resolved
// once at start.
std::optional<boost::asio::ip::tcp::endpoint> parse_listen_address(std::string_view text,
                                                                   std::string* error);

}  // namespace ob::server
