// The request-target check: which request paths the gateway agrees to append to a provider's
// base URL (after the provider's path prefix, with the provider's key). Pure; no allocation.
#pragma once

#include <cstdint>
#include <string_view>

namespace ob::proxy::http {

enum class path_problem : std::uint8_t {
  none,
  not_origin_form,    // does not start with '/' (absolute-form, "*", empty)
  dot_segment,        // a segment that is "." or ".." once percent-decoded (%2e, %2E)
  encoded_separator,  // %2F, %5C, %3F or %23 (any case) in the path: '/', '\', '?', '#'
                      // in disguise
  encoded_percent,    // %25 in the path: decoding twice could make any of the above
  encoded_control,    // %00-%1F or %7F in the path
  backslash,          // a raw '\' in the path (some servers treat it as '/')
  control,            // a raw byte < 0x21 or 0x7F anywhere in the target
  fragment,           // a raw '#' anywhere in the target (never valid in a request-target)
  bad_percent,        // '%' not followed by two hex digits, anywhere in the target
};

// Checks `target`, the request-target exactly as received (path, then optionally '?' query).
//
// Contract: returns path_problem::none if and only if all of these hold:
//   - target starts with '/';
//   - no byte of target is < 0x21, 0x7F or '#';
//   - every '%' in target is followed by two hex digits;
//   - in the path (the bytes before the first '?'):
//       - no raw '\';
//       - no %2F, %5C, %3F, %23, %25, %00-%1F, %7F (hex digits of either case);
//       - no segment (the bytes between two '/', or after the last one) that percent-decodes
//         to "." or "..", nor one whose bytes before its first ';' (raw or %3B) do ("..;x":
//         some servers strip path parameters before normalising).
// The query (from the first '?') is not interpreted as a path: it may hold '/', '.', '\' and
// any percent-encoded byte; it is only held to the byte rules above.
//
// Invariant (what a fuzz target asserts): for an accepted target with path p and any prefix P
// made of non-dot segments (a provider's base path such as "/openai"), RFC 3986
// remove_dot_segments(P + p) == P + p, as written, after percent-decoding p once or twice
// (decoding keeps the segments: no separator, dot or '%' can appear), and with every segment's
// ";parameters" removed; so an accepted
// path that starts with "/v1/" stays under P + "/v1/" for the provider, whatever it decodes
// or normalises. Bytes >= 0x80 are accepted as they are.
path_problem check_target(std::string_view target);

// A sentence for the client's 400 answer ("" for path_problem::none).
std::string_view describe(path_problem p);

}  // namespace ob::proxy::http
