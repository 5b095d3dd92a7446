#include "dialect/headers.hpp"

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
  return h;
}

}  // namespace ob::dialect
