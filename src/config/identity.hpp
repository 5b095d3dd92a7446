// What tells two provider entries apart beyond their base URL, model and key, for the ids that
// key a target's state (health, round-robin slot, active checks, provider limits in memory and
// in Redis).
#pragma once

#include <string>

#include "config/schema.hpp"

namespace ob::config {

// The entry's API dialect, auth header, API version and configured headers: empty for an
// entry with none of them set apart (OpenAI API, Bearer auth, no API version, no headers), so
// such entries keep the ids they always had; otherwise 12 hex digits of a stable 64-bit FNV-1a
// hash of those fields, each length-prefixed. Two entries with one base, model and key but,
// say, two `OpenAI-Project` headers are two accounts at the provider, with their own quotas:
// they get two ids, and one's 429s eject only itself.
std::string variant_tag(const provider& p);

}  // namespace ob::config
