// `redis://[[user]:password@]host[:port][/db]`: AUTH [user] password and SELECT db on every
// connection of the shared-state client (src/state/redis). Parsed once at config time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ob::config {

struct redis_url {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username;  // Redis 6 ACL user; "" = the default user
  std::string password;  // "" = no AUTH
  int db = 0;            // SELECT when not 0
};

// nullopt and `*error` set to a sentence when `text` is not a redis:// URL.
std::optional<redis_url> parse_redis_url(std::string_view text, std::string* error);

}  // namespace ob::config
