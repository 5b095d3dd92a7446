// Client tokens are compared as SHA-256 digests: a binary search on the digests' first 8 bytes,
// then equal-length inputs to CRYPTO_memcmp, so the time taken depends on neither the token's
// length nor on how many of its leading bytes match a stored token.
#include "auth/token_check.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace ob::auth {
namespace {

// Fetched once: with OpenSSL 3, passing EVP_sha256() re-fetches the implementation (and takes
// the provider store's lock) on every call, which would serialize worker threads.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

bool sha256(std::string_view text, digest& out) {
  unsigned int len = 0;
  const EVP_MD* md = sha256_md();
  return md && EVP_Digest(text.data(), text.size(), out.data(), &len, md, nullptr) == 1 &&
         len == out.size();
}

bool is_space(char ch) {
  return ch == ' ' || ch == '\t';
}

// True when `s` starts with `lower`, a lower-case word (letters only), in any case: setting a
// letter's case bit (0x20) gives its lower case, and no other byte gives that letter.
bool starts_with_word_ci(std::string_view s, std::string_view lower) {
  if (s.size() < lower.size()) return false;
  for (std::size_t i = 0; i < lower.size(); ++i)
    if (static_cast<char>(s[i] | 0x20) != lower[i]) return false;
  return true;
}

}  // namespace

token_set::token_set(const std::vector<std::string>& tokens) {
  digests_.reserve(tokens.size());
  // An empty token could never be presented (bearer_token rejects it); skip it so an empty
  // entry cannot turn into "anyone whose header parses to nothing".
  for (const auto& t : tokens) {
    if (t.empty()) continue;
    digest d{};
    // Only reachable while a snapshot is built (start or reload), where exceptions are fine.
    if (!sha256(t, d)) throw std::runtime_error("SHA-256 is not available from OpenSSL");
    digests_.push_back(d);
  }
  index();
}

namespace {
std::uint64_t prefix_of(const digest& d) {
  std::uint64_t p;
  std::memcpy(&p, d.data(), sizeof p);
  return p;
}
}  // namespace

void token_set::index() {
  by_prefix_.clear();
  by_prefix_.reserve(digests_.size());
  for (std::size_t i = 0; i < digests_.size(); ++i)
    by_prefix_.emplace_back(prefix_of(digests_[i]), static_cast<std::uint32_t>(i));
  std::sort(by_prefix_.begin(), by_prefix_.end());
}

int token_set::find(std::string_view token) const {
  digest d{};
  if (token.empty() || !sha256(token, d)) return -1;
  // The entries whose first 8 bytes match (one, unless digests collide there or a token is
  // listed twice), each compared whole; the last matching index wins, as listed.
  const std::uint64_t p = prefix_of(d);
  auto it = std::lower_bound(by_prefix_.begin(), by_prefix_.end(),
                             std::pair<std::uint64_t, std::uint32_t>(p, 0));
  int found = -1;
  for (; it != by_prefix_.end() && it->first == p; ++it) {
    if (CRYPTO_memcmp(digests_[it->second].data(), d.data(), d.size()) == 0)
      found = static_cast<int>(it->second);
  }
  return found;
}

std::string token_set::name(std::size_t i) const {
  return i < digests_.size() ? digest_name(digests_[i]) : std::string("key-");
}

digest sha256_digest(std::string_view text) {
  digest d{};
  if (!sha256(text, d)) throw std::runtime_error("SHA-256 is not available from OpenSSL");
  return d;
}

std::string digest_name(const digest& d) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "key-";
  for (int b = 0; b < 4; ++b) {
    out += hex[d[b] >> 4];
    out += hex[d[b] & 15];
  }
  return out;
}

std::optional<std::string_view> bearer_token(std::string_view value) {
  while (!value.empty() && is_space(value.front())) value.remove_prefix(1);
  while (!value.empty() && is_space(value.back())) value.remove_suffix(1);
  constexpr std::string_view scheme = "bearer";
  if (value.size() <= scheme.size() || !starts_with_word_ci(value, scheme)) return std::nullopt;
  value.remove_prefix(scheme.size());
  if (!is_space(value.front())) return std::nullopt;  // "Bearerabc" is another scheme
  while (!value.empty() && is_space(value.front())) value.remove_prefix(1);
  if (value.empty()) return std::nullopt;
  return value;
}

}  // namespace ob::auth
