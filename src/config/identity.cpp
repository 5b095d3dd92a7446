#include "config/identity.hpp"

namespace ob::config {

std::string fnv1a_tag::hex12() const {
  static constexpr char hex[] = "0123456789abcdef";
  std::string tag(12, '0');
  auto h = h_;
  for (int i = 11; i >= 0; --i, h >>= 4) tag[static_cast<std::size_t>(i)] = hex[h & 0xf];
  return tag;
}

std::string variant_tag(const provider& p) {
  if (p.api == provider_api::openai && p.auth == auth_mode::bearer && p.api_version.empty() &&
      p.headers.empty())
    return {};
  fnv1a_tag h;
  auto field = [&](std::string_view v) {
    h.mix(std::to_string(v.size()));
    h.mix(":");
    h.mix(v);
  };
  field(std::to_string(static_cast<int>(p.api)));
  field(std::to_string(static_cast<int>(p.auth)));
  field(p.api_version);
  for (const auto& [name, value] : p.headers) {
    field(name);
    field(value);
  }
  return h.hex12();
}

}  // namespace ob::config
