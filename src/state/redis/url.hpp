// `redis://[:password@]host[:port][/db]` (also `redis://user:password@...`, user ignored:
// Redis 5 AUTH takes the password alone). Parsed once at config time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ob::state::redis {

struct url {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string password;  // "" = no AUTH
  int db = 0;            // SELECT when not 0
};

// nullopt and `*error` set to a sentence when `text` is not a redis:// URL.
std::optional<url> parse_url(std::string_view text, std::string* error);

}  // namespace ob::state::redis
