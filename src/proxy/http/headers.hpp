// Header handling shared by the request and answer paths: a compact list of (name, value)
// pairs stored in one reusable arena, and the hop-by-hop rules (RFC 9110 section 7.6.1).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ob::proxy::http {

// Case-insensitive ASCII comparison (header names, tokens). Inline: it is mostly called on
// short strings, where a call costs as much as the comparison.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x == y) continue;
    // Different bytes are equal case-insensitively only when they differ in the case bit
    // and are letters.
    char l = static_cast<char>(x | 0x20);
    if (l != static_cast<char>(y | 0x20) || l < 'a' || l > 'z') return false;
  }
  return true;
}
// True when `list` (a comma-separated header value) contains `token` case-insensitively.
bool has_token(std::string_view list, std::string_view token);

// The headers the gateway filters or reads. A header is recognised once, when it is stored,
// so filtering and lookups compare small integers instead of names.
enum class header_id : std::uint8_t {
  other,  // any other name
  // Hop-by-hop and proxy-only: never forwarded.
  connection,
  keep_alive,
  proxy_connection,
  te,
  trailer,
  transfer_encoding,
  upgrade,
  proxy_authenticate,
  proxy_authorization,
  // Set by the gateway towards the provider (content-length also towards the client).
  host,
  authorization,
  content_length,
  accept_encoding,
  expect,
  // Client credentials and client identity: never sent to a provider (the provider gets the
  // gateway's key; who the client is and where it connects from is not its business).
  x_api_key,
  api_key,
  x_goog_api_key,
  x_auth_token,
  cookie,
  forwarded,
  x_forwarded_for,
  x_forwarded_host,
  x_forwarded_proto,
  x_real_ip,
  // Account selectors of OpenAI's API: the client's would apply to the gateway's key (OpenAI
  // refuses a pairing that does not match, 401), and the provider's name the operator's
  // account. Never forwarded either way; a target's configured `headers` may set them.
  openai_organization,
  openai_project,
  // The provider's cookies (its CDN's): for its own domain, never the client's business.
  set_cookie,
  // Read by the gateway, forwarded as they came.
  content_type,
  retry_after,
  retry_after_ms,
  x_ratelimit_remaining_requests,
  x_ratelimit_remaining_tokens,
  // Set by the gateway in both directions: the request's id (a provider's own id goes to the
  // client as x-upstream-request-id).
  x_request_id,
};
inline constexpr int header_id_count = static_cast<int>(header_id::x_request_id) + 1;
// The id of header `name` (case-insensitive); header_id::other for names not listed above.
header_id classify(std::string_view name);
// Lower-case name of `id` ("" for header_id::other).
std::string_view name_of(header_id id);

// Headers of one message. Each is copied into one buffer as it goes on the wire,
// "Name: value\r\n", so a list can be cleared and refilled per message without allocating
// once it has grown, and forwarding copies runs of kept headers at once.
class header_list {
 public:
  void clear();
  void add(std::string_view name, std::string_view value) { add(name, value, classify(name)); }
  // `id` must be classify(name); for callers that already know it (the parsers get it from
  // Beast, which recognises every field name anyway).
  void add(std::string_view name, std::string_view value, header_id id);
  std::size_t size() const { return refs_.size(); }
  std::string_view name(std::size_t i) const {
    return {arena_.get() + refs_[i].off, refs_[i].name_len};
  }
  std::string_view value(std::size_t i) const {
    const ref& r = refs_[i];
    return {arena_.get() + r.off + r.name_len + 2, r.value_len};
  }
  // "Name: value\r\n"; the lines of consecutive headers are adjacent in memory.
  std::string_view line(std::size_t i) const {
    const ref& r = refs_[i];
    return {arena_.get() + r.off, std::size_t{r.name_len} + r.value_len + 4};
  }
  header_id id(std::size_t i) const { return refs_[i].id; }
  // First value of header `id` (not header_id::other), empty when absent.
  std::string_view get(header_id id) const {
    for (std::size_t i = 0; i < refs_.size(); ++i)
      if (refs_[i].id == id) return value(i);
    return {};
  }
  bool contains(header_id id) const {
    for (const ref& r : refs_)
      if (r.id == id) return true;
    return false;
  }
  // First value of `name` (case-insensitive), empty when absent.
  std::string_view get(std::string_view name) const;
  bool contains(std::string_view name) const;
  // Releases memory grown by an unusually large message (the list is then empty).
  void shrink_if_above(std::size_t bytes);
  // Drops header i (its bytes stay in the arena until clear(); no allocation).
  void remove(std::size_t i) { refs_.erase(refs_.begin() + static_cast<std::ptrdiff_t>(i)); }

 private:
  struct ref {
    std::uint32_t off;  // of the line
    std::uint32_t name_len, value_len;
    header_id id;
  };
  void grow(std::size_t need);

  std::unique_ptr<char[]> arena_;
  std::size_t arena_size_ = 0, arena_cap_ = 0;
  std::vector<ref> refs_;
};

// Header names a proxy never forwards as they came: hop-by-hop headers, plus the ones the
// gateway sets itself (per direction).
enum class direction { to_upstream, to_client };
// True when header `name` must not be copied in `dir`; `connection_value` is the message's
// Connection header (its tokens name more hop-by-hop headers).
bool is_filtered(std::string_view name, direction dir, std::string_view connection_value);

// What append_forwarded drops besides the hop-by-hop headers. Named fields (designated
// initializers at the call site), so a value cannot land in another's place unnoticed.
struct forward_filter {
  // Non-empty (the client's token): also drops every header whose value contains it, whatever
  // its name: a credential the client put in a header the hop-by-hop list does not know.
  std::string_view secret = {};
  // drop: also drop x-ratelimit-* (the gateway sends its own key's numbers).
  enum class rate_limits : bool { keep, drop };
  rate_limits rate_limit_headers = rate_limits::keep;
  // Lower-case names whose headers are dropped (a provider's configured headers, which take
  // their place); null: none.
  const std::vector<std::string>* replaced = nullptr;
};

// Appends "Name: value\r\n" for every header of `in` that is not filtered, in order.
void append_forwarded(std::string& out, const header_list& in, direction dir,
                      const forward_filter& filter = {});

}  // namespace ob::proxy::http
