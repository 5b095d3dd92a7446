#include "proxy/http/headers.hpp"

#include <array>
#include <cstdint>

namespace ob::proxy::http {
namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Hop-by-hop (RFC 9110 7.6.1) and proxy-only headers: never forwarded in either direction.
constexpr std::array<std::string_view, 9> hop_by_hop = {
    "connection", "keep-alive",         "proxy-connection",   "te", "trailer", "transfer-encoding",
    "upgrade",    "proxy-authenticate", "proxy-authorization"};

// Set by the gateway towards the provider: host and credentials are the provider's, the body
// length changes with the rewrite, and we ask for an uncompressed answer so it can be
// rewritten. Client credentials in any common header are dropped so they never reach a provider.
constexpr std::array<std::string_view, 7> set_to_upstream = {
    "host", "authorization", "content-length", "accept-encoding", "expect", "x-api-key", "api-key"};

// Set by the gateway towards the client: length/framing are ours after the rewrite.
constexpr std::array<std::string_view, 1> set_to_client = {"content-length"};

// Bit L is set when some listed name has length L, so most header names are rejected by one
// test instead of a comparison per listed name (measured ~6% of a small request's
// instructions before).
template <std::size_t N>
constexpr std::uint64_t length_mask(const std::array<std::string_view, N>& names) {
  std::uint64_t m = 0;
  for (auto n : names) m |= std::uint64_t{1} << n.size();
  return m;
}

template <std::size_t N>
bool in(const std::array<std::string_view, N>& names, std::uint64_t mask, std::string_view name) {
  if (name.size() >= 64 || !(mask & (std::uint64_t{1} << name.size()))) return false;
  for (auto n : names)
    if (iequals(n, name)) return true;
  return false;
}

constexpr std::uint64_t hop_by_hop_lengths = length_mask(hop_by_hop);
constexpr std::uint64_t to_upstream_lengths = length_mask(set_to_upstream);
constexpr std::uint64_t to_client_lengths = length_mask(set_to_client);

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = trim(list.substr(0, comma));
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

void header_list::clear() {
  arena_.clear();
  refs_.clear();
}

void header_list::add(std::string_view name, std::string_view value) {
  ref r;
  r.name_off = static_cast<std::uint32_t>(arena_.size());
  r.name_len = static_cast<std::uint32_t>(name.size());
  arena_.append(name);
  r.value_off = static_cast<std::uint32_t>(arena_.size());
  r.value_len = static_cast<std::uint32_t>(value.size());
  arena_.append(value);
  refs_.push_back(r);
}

std::string_view header_list::name(std::size_t i) const {
  return std::string_view(arena_).substr(refs_[i].name_off, refs_[i].name_len);
}

std::string_view header_list::value(std::size_t i) const {
  return std::string_view(arena_).substr(refs_[i].value_off, refs_[i].value_len);
}

std::string_view header_list::get(std::string_view n) const {
  for (std::size_t i = 0; i < refs_.size(); ++i)
    if (iequals(name(i), n)) return value(i);
  return {};
}

bool header_list::contains(std::string_view n) const {
  for (std::size_t i = 0; i < refs_.size(); ++i)
    if (iequals(name(i), n)) return true;
  return false;
}

void header_list::shrink_if_above(std::size_t bytes) {
  if (arena_.capacity() > bytes) std::string().swap(arena_);
  if (refs_.capacity() * sizeof(ref) > bytes) std::vector<ref>().swap(refs_);
}

bool is_filtered(std::string_view name, direction dir, std::string_view connection_value) {
  if (in(hop_by_hop, hop_by_hop_lengths, name)) return true;
  if (dir == direction::to_upstream ? in(set_to_upstream, to_upstream_lengths, name)
                                    : in(set_to_client, to_client_lengths, name))
    return true;
  return !connection_value.empty() && has_token(connection_value, name);
}

void append_forwarded(std::string& out, const header_list& in, direction dir) {
  auto connection = in.get("connection");
  for (std::size_t i = 0; i < in.size(); ++i) {
    auto n = in.name(i);
    if (is_filtered(n, dir, connection)) continue;
    out.append(n);
    out.append(": ");
    out.append(in.value(i));
    out.append("\r\n");
  }
}

}  // namespace ob::proxy::http
