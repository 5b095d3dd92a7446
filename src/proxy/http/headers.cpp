#include "proxy/http/headers.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace ob::proxy::http {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Lower-case names, indexed by header_id.
constexpr std::array<std::string_view, header_id_count> names = {
    "",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "host",
    "authorization",
    "content-length",
    "accept-encoding",
    "expect",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-auth-token",
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "openai-organization",
    "openai-project",
    "set-cookie",
    "content-type",
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-request-id",
};

// Which headers are dropped in which direction, indexed by header_id.
//  - Hop-by-hop (RFC 9110 7.6.1) and proxy-only headers: never forwarded.
//  - Towards the provider the gateway sets host and credentials (the provider's), the body
//    length (it changes with the rewrite) and asks for an uncompressed answer so it can be
//    rewritten. Client credentials in any common header, cookies and the client's address
//    (X-Forwarded-*, Forwarded, X-Real-IP) are dropped so they never reach a provider.
//  - Towards the client the length/framing are ours after the rewrite.
constexpr std::uint8_t drop_up = 1, drop_client = 2, drop_both = drop_up | drop_client;
constexpr std::array<std::uint8_t, header_id_count> drops = [] {
  std::array<std::uint8_t, header_id_count> d{};
  for (auto id :
       {header_id::connection, header_id::keep_alive, header_id::proxy_connection, header_id::te,
        header_id::trailer, header_id::transfer_encoding, header_id::upgrade,
        header_id::proxy_authenticate, header_id::proxy_authorization})
    d[static_cast<int>(id)] = drop_both;
  for (auto id : {header_id::host, header_id::authorization, header_id::accept_encoding,
                  header_id::expect, header_id::x_api_key, header_id::api_key,
                  header_id::x_goog_api_key, header_id::x_auth_token, header_id::cookie,
                  header_id::forwarded, header_id::x_forwarded_for, header_id::x_forwarded_host,
                  header_id::x_forwarded_proto, header_id::x_real_ip})
    d[static_cast<int>(id)] = drop_up;
  d[static_cast<int>(header_id::openai_organization)] = drop_both;
  d[static_cast<int>(header_id::openai_project)] = drop_both;
  d[static_cast<int>(header_id::set_cookie)] = drop_client;
  d[static_cast<int>(header_id::content_length)] = drop_both;
  d[static_cast<int>(header_id::x_request_id)] = drop_both;
  return d;
}();

std::uint8_t drop_bit(direction dir) {
  return dir == direction::to_upstream ? drop_up : drop_client;
}

// Bit L is set when some listed name has length L (names of 63 bytes or more share bit 63),
// so most names are rejected by one test instead of a comparison per listed name.
std::uint64_t length_bit(std::size_t n) {
  return std::uint64_t{1} << (n < 63 ? n : 63);
}

constexpr std::uint64_t known_lengths = [] {
  std::uint64_t m = 0;
  for (std::size_t i = 1; i < names.size(); ++i) m |= std::uint64_t{1} << names[i].size();
  return m;
}();

// Length bits of the tokens of a Connection value (as has_token splits them).
std::uint64_t token_lengths(std::string_view list) {
  std::uint64_t m = 0;
  while (true) {
    auto comma = list.find(',');
    m |= length_bit(trim(list.substr(0, comma)).size());
    if (comma == std::string_view::npos) return m;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace

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

header_id classify(std::string_view name) {
  if (!(known_lengths & length_bit(name.size()))) return header_id::other;
  for (std::size_t i = 1; i < names.size(); ++i)
    if (names[i].size() == name.size() && iequals(names[i], name)) return static_cast<header_id>(i);
  return header_id::other;
}

std::string_view name_of(header_id id) {
  return names[static_cast<int>(id)];
}

void header_list::clear() {
  arena_size_ = 0;
  refs_.clear();
}

void header_list::grow(std::size_t need) {
  std::size_t cap = std::max({need, 2 * arena_cap_, std::size_t{512}});
  auto bigger = std::make_unique_for_overwrite<char[]>(cap);
  if (arena_size_) std::memcpy(bigger.get(), arena_.get(), arena_size_);
  arena_ = std::move(bigger);
  arena_cap_ = cap;
}

void header_list::add(std::string_view name, std::string_view value, header_id id) {
  // One capacity check and plain copies: this runs for every header of every message.
  const std::size_t off = arena_size_;
  const std::size_t end = off + name.size() + value.size() + 4;
  if (end > arena_cap_) grow(end);
  char* p = arena_.get() + off;
  if (!name.empty()) std::memcpy(p, name.data(), name.size());  // data() may be null if empty
  p += name.size();
  *p++ = ':';
  *p++ = ' ';
  if (!value.empty()) std::memcpy(p, value.data(), value.size());
  p += value.size();
  *p++ = '\r';
  *p = '\n';
  arena_size_ = end;
  refs_.push_back(ref{static_cast<std::uint32_t>(off), static_cast<std::uint32_t>(name.size()),
                      static_cast<std::uint32_t>(value.size()), id});
}

std::string_view header_list::get(std::string_view n) const {
  for (std::size_t i = 0; i < refs_.size(); ++i)
    if (refs_[i].name_len == n.size() && iequals(name(i), n)) return value(i);
  return {};
}

bool header_list::contains(std::string_view n) const {
  for (std::size_t i = 0; i < refs_.size(); ++i)
    if (refs_[i].name_len == n.size() && iequals(name(i), n)) return true;
  return false;
}

void header_list::shrink_if_above(std::size_t bytes) {
  if (arena_cap_ > bytes) {
    arena_.reset();
    arena_size_ = arena_cap_ = 0;
    refs_.clear();
  }
  if (refs_.capacity() * sizeof(ref) > bytes) std::vector<ref>().swap(refs_);
}

bool is_filtered(std::string_view name, direction dir, std::string_view connection_value) {
  if (drops[static_cast<int>(classify(name))] & drop_bit(dir)) return true;
  return !connection_value.empty() && has_token(connection_value, name);
}

namespace {
bool is_replaced(std::string_view name, const std::vector<std::string>& replaced) {
  for (const auto& r : replaced)
    if (iequals(name, r)) return true;
  return false;
}
}  // namespace

void append_forwarded(std::string& out, const header_list& in, direction dir,
                      const forward_filter& filter) {
  const std::string_view secret = filter.secret;
  const bool drop_rate_limits = filter.rate_limit_headers == forward_filter::rate_limits::drop;
  const std::vector<std::string>* replaced = filter.replaced;
  const std::uint8_t drop = drop_bit(dir);
  // Names listed in Connection are hop-by-hop too (every Connection line of the message: RFC
  // 9110 section 5.3 combines them); most messages have none, or only "keep-alive"/"close", so
  // names are compared only when a token has their length.
  // One Connection line is read where it is; several are joined once (rare), so a candidate
  // name costs one token scan whatever the message holds.
  std::uint64_t listed = 0;
  std::string_view connection;
  std::string joined;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in.id(i) != header_id::connection) continue;
    listed |= token_lengths(in.value(i));
    if (connection.empty() && joined.empty()) {
      connection = in.value(i);
    } else {
      if (joined.empty()) joined.assign(connection);
      joined += ',';
      joined += in.value(i);
      connection = joined;
    }
  }
  auto listed_in_connection = [&](std::string_view n) { return has_token(connection, n); };
  // Kept headers next to each other in `in` are copied with one append.
  const char* run = nullptr;
  std::size_t run_len = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (drops[static_cast<int>(in.id(i))] & drop) continue;
    if (listed) {
      auto n = in.name(i);
      if ((listed & length_bit(n.size())) && listed_in_connection(n)) continue;
    }
    // One search per kept header, only when a token is known (requests to a provider).
    if (!secret.empty() && in.value(i).find(secret) != std::string_view::npos) continue;
    if (drop_rate_limits) {
      auto n = in.name(i);
      if (n.size() > 12 && iequals(n.substr(0, 12), "x-ratelimit-")) continue;
    }
    if (replaced && is_replaced(in.name(i), *replaced)) continue;
    auto line = in.line(i);
    if (line.data() != run + run_len) {
      if (run_len) out.append(run, run_len);
      run = line.data();
      run_len = 0;
    }
    run_len += line.size();
  }
  if (run_len) out.append(run, run_len);
}

}  // namespace ob::proxy::http
