// The TLS stream lives in net/ (the upstream connections use it too); the client side knows it
// under its old name.
#pragma once

#include "net/tls_socket.hpp"

namespace ob::proxy {
using net::tls_socket;
}  // namespace ob::proxy
