// The configuration as plain values. The file format is the old OpenResty gateway's
// ({"providers":[{group,name,base,key}],"security":[tokens]}) plus optional extension keys;
// docs/CONFIGURATION.md documents every key. Parsing and validation live in parse.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace ob::config {

using millis = std::chrono::milliseconds;

// A provider's `base` split into what the upstream layer needs.
struct base_url {
  bool tls = false;          // https
  std::string host;          // without brackets for IPv6 literals
  std::uint16_t port = 0;    // explicit or the scheme's default
  std::string path_prefix;   // "" or "/openai" (no trailing slash); request path is appended
  std::string host_header;   // "host" or "host:port" when the port is not the default
};

struct provider {
  std::string group;  // client-facing model group name
  std::string name;   // real model name sent upstream
  std::string base;   // as written in the file, e.g. "https://api.openai.com"
  std::string key;    // resolved provider key (after ${ENV} expansion); may be empty
  std::uint32_t weight = 1;  // extension: relative share inside the group (>= 1)
  base_url url;              // parsed from base
};

struct limits {
  std::size_t max_header_bytes = 64 * 1024;           // request head (line + headers)
  std::size_t max_body_bytes = 64 * 1024 * 1024;      // request body
  std::size_t max_response_bytes = 256 * 1024 * 1024; // buffered (non-stream) upstream answer
};

struct timeouts {
  millis connect{10'000};        // TCP + TLS handshake to a provider
  millis first_byte{300'000};    // request sent -> upstream response head
  millis idle{120'000};          // between two reads of an upstream answer (stream events)
  millis total{900'000};         // whole upstream exchange
  millis client_header{30'000};  // client: request head must arrive within this
  millis client_body{120'000};   // client: request body must arrive within this (per read)
  millis keepalive{75'000};      // idle client connection between requests
  millis shutdown_grace{30'000}; // SIGTERM: requests in flight may finish within this
};

struct config {
  std::vector<provider> providers;
  std::vector<std::string> security;  // client tokens (after ${ENV} expansion)
  std::string listen = "0.0.0.0:8080";  // extension: "host:port", "[::1]:port" or ":port"
  unsigned workers = 0;                 // extension: 0 = number of cores
  struct limits limits;
  struct timeouts timeouts;
};

}  // namespace ob::config
