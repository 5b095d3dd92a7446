// Client authentication against the config's `security` list.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ob::auth {

// Holds SHA-256 digests of the allowed tokens. A presented token is hashed, its digest looked
// up by a binary search over the stored digests' first 8 bytes, and the candidates compared
// whole with CRYPTO_memcmp: O(log n) for any number of keys (a linear scan of 1,000 keys cost
// ~20 µs per request). The lookup's timing depends only on the presented token's digest: it
// can tell nothing about a token's length or content, and even a stored digest learnt bit by
// bit would not let anyone in without a SHA-256 preimage.
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
    t.index();
    return t;
  }
  bool contains(std::string_view token) const { return find(token) >= 0; }
  // Index of the matching entry (the last one if a digest is listed twice), -1 when none.
  int find(std::string_view token) const;
  std::size_t size() const { return digests_.size(); }
  // A name for entry `i` that can be logged and used as a metric label: "key-" and the first
  // 8 hex digits of the token's SHA-256 (never the token).
  std::string name(std::size_t i) const;

 private:
  void index();  // builds by_prefix_ from digests_
  std::vector<std::array<unsigned char, 32>> digests_;
  // (first 8 bytes of the digest, index into digests_), sorted.
  std::vector<std::pair<std::uint64_t, std::uint32_t>> by_prefix_;
};

// "Bearer <token>" (scheme case-insensitive, any run of spaces/tabs after it, trailing
// whitespace trimmed) -> token; anything else -> nullopt.
std::optional<std::string_view> bearer_token(std::string_view authorization_value);

}  // namespace ob::auth
