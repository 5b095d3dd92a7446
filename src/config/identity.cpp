#include "config/identity.hpp"

#include <cstdint>
#include <string_view>

namespace ob::config {

std::string variant_tag(const provider& p) {
  if (p.api == provider_api::openai && p.auth == auth_mode::bearer && p.api_version.empty() &&
      p.headers.empty())
    return {};
  std::uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
  };
  auto field = [&](std::string_view v) {
    mix(std::to_string(v.size()));
    mix(":");
    mix(v);
  };
  field(std::to_string(static_cast<int>(p.api)));
  field(std::to_string(static_cast<int>(p.auth)));
  field(p.api_version);
  for (const auto& [name, value] : p.headers) {
    field(name);
    field(value);
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string tag(12, '0');
  for (int i = 11; i >= 0; --i, h >>= 4) tag[static_cast<std::size_t>(i)] = hex[h & 0xf];
  return tag;
}

}  // namespace ob::config
