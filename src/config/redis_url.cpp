#include "config/redis_url.hpp"

#include <charconv>

namespace ob::config {
namespace {

bool parse_uint(std::string_view s, unsigned long max, unsigned long& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && out <= max;
}

// %XX in a password (so '@' and ':' can be written).
bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    unsigned long v = 0;
    if (i + 2 >= in.size()) return false;
    auto [p, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
    if (ec != std::errc{} || p != in.data() + i + 3) return false;
    out += static_cast<char>(v);
    i += 2;
  }
  return true;
}

}  // namespace

std::optional<redis_url> parse_redis_url(std::string_view text, std::string* error) {
  auto fail = [&](const char* why) -> std::optional<redis_url> {
    if (error) *error = why;
    return std::nullopt;
  };
  constexpr std::string_view scheme = "redis://";
  if (text.substr(0, scheme.size()) != scheme)
    return fail("is not a redis:// URL (redis://[:password@]host:port/db)");
  std::string_view rest = text.substr(scheme.size());
  redis_url u;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = auth.find(':');
    std::string_view pw = colon == std::string_view::npos ? auth : auth.substr(colon + 1);
    if (!percent_decode(pw, u.password)) return fail("has a bad %-escape in its password");
    if (colon != std::string_view::npos && !percent_decode(auth.substr(0, colon), u.username))
      return fail("has a bad %-escape in its user name");
  }
  std::string_view hostport = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    unsigned long n = 0;
    if (!db.empty()) {
      if (!parse_uint(db, 1'000'000, n)) return fail("has a database that is not a number");
      u.db = static_cast<int>(n);
    }
  }
  std::string_view host = hostport;
  if (!hostport.empty() && hostport.front() == '[') {  // [::1]:6379
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return fail("has an unclosed '[' in its host");
    host = hostport.substr(1, close - 1);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      unsigned long p = 0;
      if (after.front() != ':' || !parse_uint(after.substr(1), 65535, p) || p == 0)
        return fail("has a bad port");
      u.port = static_cast<std::uint16_t>(p);
    }
  } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    unsigned long p = 0;
    if (!parse_uint(hostport.substr(colon + 1), 65535, p) || p == 0) return fail("has a bad port");
    u.port = static_cast<std::uint16_t>(p);
  }
  if (host.empty()) return fail("has no host");
  u.host = std::string(host);
  return u;
}

}  // namespace ob::config
