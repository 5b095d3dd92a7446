// What tells two provider entries apart beyond their base URL, model and key, for the ids that
// key a target's state (health, round-robin slot, active checks, provider limits in memory and
// in Redis).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/schema.hpp"

namespace ob::config {

// 64-bit FNV-1a over the bytes mixed in, as 12 hex digits (its low 48 bits): stable across
// gateways and builds, so ids made of it name the same shared (Redis) state everywhere.
class fnv1a_tag {
 public:
  void mix(std::string_view s) {
    for (unsigned char c : s) {
      h_ ^= c;
      h_ *= 0x100000001b3ull;
    }
  }
  std::string hex12() const;

 private:
  std::uint64_t h_ = 0xcbf29ce484222325ull;
};

// The entry's API dialect, auth header, API version and configured headers: empty for an
// entry with none of them set apart (OpenAI API, Bearer auth, no API version, no headers), so
// such entries keep the ids they always had; otherwise 12 hex digits of a stable 64-bit FNV-1a
// hash of those fields, each length-prefixed. Two entries with one base, model and key but,
// say, two `OpenAI-Project` headers are two accounts at the provider, with their own quotas:
// they get two ids, and one's 429s eject only itself.
std::string variant_tag(const provider& p);

}  // namespace ob::config
