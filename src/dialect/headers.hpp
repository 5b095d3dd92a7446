// The header lines a target adds to every upstream request: its credential in the header its
// auth mode names, then its configured "headers". Built once per target when a snapshot is
// built, written per request as one prepared string (as the Authorization line always was).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/schema.hpp"

namespace ob::dialect {

struct fixed_headers {
  std::string lines;  // "Authorization: Bearer k\r\nHTTP-Referer: https://x\r\n" ("" = none)
  // Lower-case names of the configured headers: a client header of the same name is not
  // forwarded (the configured value replaces it). Empty for most targets.
  std::vector<std::string> replaced;
  // Bytes at the end of `lines` that are the default "anthropic-version" line (an Anthropic
  // target without a configured one): left out when an Anthropic client sends its own version.
  std::size_t default_version = 0;
};

fixed_headers make_fixed_headers(const config::provider& p);

// The header a credential goes in for an auth mode ("" for none).
std::string_view auth_header_name(config::auth_mode m);

}  // namespace ob::dialect
