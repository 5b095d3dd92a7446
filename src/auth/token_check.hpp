// Client authentication against the config's `security` list.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ob::auth {

// Holds SHA-256 digests of the allowed tokens; `contains` compares digests in constant time
// and always looks at every entry, so neither content nor length of a token leaks via timing.
using digest = std::array<unsigned char, 32>;

// SHA-256 of `text`; throws std::runtime_error when OpenSSL has no SHA-256 (start/reload only).
digest sha256_digest(std::string_view text);
// "key-" + the first 8 hex digits of a digest: a loggable name for a token.
std::string digest_name(const digest& d);

class token_set {
 public:
  token_set() = default;
  explicit token_set(const std::vector<std::string>& tokens);
  static token_set from_digests(std::vector<digest> digests) {
    token_set t;
    t.digests_ = std::move(digests);
    return t;
  }
  bool contains(std::string_view token) const { return find(token) >= 0; }
  // Index of the matching entry, -1 when none; as constant-time as contains().
  int find(std::string_view token) const;
  std::size_t size() const { return digests_.size(); }
  // A name for entry `i` that can be logged and used as a metric label: "key-" and the first
  // 8 hex digits of the token's SHA-256 (never the token).
  std::string name(std::size_t i) const;

 private:
  std::vector<std::array<unsigned char, 32>> digests_;
};

// "Bearer <token>" (scheme case-insensitive, any run of spaces/tabs after it, trailing
// whitespace trimmed) -> token; anything else -> nullopt.
std::optional<std::string_view> bearer_token(std::string_view authorization_value);

}  // namespace ob::auth
