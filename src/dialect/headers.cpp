#include "dialect/headers.hpp"

#include <algorithm>

namespace ob::dialect {

std::string_view auth_header_name(config::auth_mode m) {
  switch (m) {
    case config::auth_mode::bearer:
      return "Authorization";
    case config::auth_mode::api_key:
      return "api-key";
    case config::auth_mode::x_api_key:
      return "x-api-key";
    case config::auth_mode::none:
      break;
  }
  return {};
}

fixed_headers make_fixed_headers(const config::provider& p) {
  fixed_headers h;
  if (!p.key.empty() && p.auth != config::auth_mode::none) {
    h.lines += auth_header_name(p.auth);
    h.lines += p.auth == config::auth_mode::bearer ? ": Bearer " : ": ";
    h.lines += p.key;
    h.lines += "\r\n";
  }
  for (const auto& [name, value] : p.headers) {
    h.lines += name;
    h.lines += ": ";
    h.lines += value;
    h.lines += "\r\n";
    std::string lower = name;
    for (auto& c : lower)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    h.replaced.push_back(std::move(lower));
  }
  // Anthropic requires its API version on every request: the one the codecs follow, unless the
  // configured headers name one (then that one, once).
  if (p.api == config::provider_api::anthropic &&
      std::find(h.replaced.begin(), h.replaced.end(), "anthropic-version") == h.replaced.end()) {
    constexpr std::string_view line = "anthropic-version: 2023-06-01\r\n";
    h.lines += line;
    h.default_version = line.size();
    h.replaced.push_back("anthropic-version");
  }
  return h;
}

}  // namespace ob::dialect
