// Provider `base` URL parsing (config::parse_base_url). Invariants: never throws; a rejection
// says why; an accepted URL has a host and a port, a path prefix that is empty or starts with '/'
// and does not end with '/', and a Host header naming the host; rebuilding the URL from its
// parts parses back to the same parts.
#include <string>

#include "config/parse.hpp"
#include "fuzz/split.hpp"

namespace {

using namespace ob::config;

std::optional<base_url> parse_no_throw(std::string_view s, std::string* error) {
  try {
    return parse_base_url(s, error);
  } catch (...) {
    ob::fuzz::fail("parse_base_url threw");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto u = parse_no_throw(s, &error);
  if (!u) {
    OB_FUZZ_CHECK(!error.empty());
    return 0;
  }
  OB_FUZZ_CHECK(!u->host.empty());
  OB_FUZZ_CHECK(u->port != 0);
  OB_FUZZ_CHECK(u->path_prefix.empty() ||
                (u->path_prefix.front() == '/' && u->path_prefix.back() != '/'));
  OB_FUZZ_CHECK(u->host_header.find(u->host) != std::string::npos);

  const bool v6 = u->host.find(':') != std::string::npos;
  std::string rebuilt = std::string(u->tls ? "https://" : "http://") +
                        (v6 ? "[" + u->host + "]" : u->host) + ":" + std::to_string(u->port) +
                        u->path_prefix;
  std::string error2;
  const auto back = parse_no_throw(rebuilt, &error2);
  OB_FUZZ_CHECK(back.has_value());
  OB_FUZZ_CHECK(back->tls == u->tls && back->host == u->host && back->port == u->port &&
                back->path_prefix == u->path_prefix && back->host_header == u->host_header);
  return 0;
}
