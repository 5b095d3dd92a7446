// Single pass over the top-level object; see fast_scan.hpp for what it accepts and why.
#include "proxy/json/fast_scan.hpp"

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include <simdjson.h>

namespace ob::proxy::json {
namespace {

constexpr int max_depth = 64;  // nesting below the root object

enum cls : std::uint8_t { bad, ws, scalar, quote, open, close, comma, colon };

// Bytes outside strings. Number and literal bytes are `scalar`; anything else unusual is `bad`.
constexpr std::array<std::uint8_t, 256> classes = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alnum || c == '-' || c == '+' || c == '.') t[c] = scalar;
  }
  t[' '] = t['\t'] = t['\n'] = t['\r'] = ws;
  t['"'] = quote;
  t['{'] = t['['] = open;
  t['}'] = t[']'] = close;
  t[','] = comma;
  t[':'] = colon;
  return t;
}();

cls class_of(char c) {
  return static_cast<cls>(classes[static_cast<unsigned char>(c)]);
}

const char* skip_ws(const char* p, const char* end) {
  while (p < end && class_of(*p) == ws) ++p;
  return p;
}

// Per 8 bytes, the high bit of each byte that needs a look: '"', '\\', a control character and,
// until the first one is seen, a non-ASCII byte. Every flag is exact (no carries across bytes).
std::uint64_t special_bytes(std::uint64_t x, bool high_seen) {
  constexpr std::uint64_t ones = 0x0101010101010101, hi = ones * 0x80, lo7 = ones * 0x7F;
  auto zero_bytes = [&](std::uint64_t v) { return ~(((v & lo7) + lo7) | v) & hi; };
  const std::uint64_t at_least_0x20 = ((x & lo7) + ones * 0x60) & hi;
  const std::uint64_t control = ~(x | at_least_0x20) & hi;
  return zero_bytes(x ^ (ones * '"')) | zero_bytes(x ^ (ones * '\\')) | control |
         (high_seen ? 0 : x & hi);
}

struct scanner {
  const char* end;
  bool high = false;  // a byte >= 0x80 was seen: UTF-8 is validated at the end

  // `p` at an opening quote: past the closing quote, or nullptr (unterminated, control char).
  const char* skip_string(const char* p, bool& escaped) {
    ++p;
    for (;;) {
      while (end - p >= 8) {  // 8 plain bytes at a time
        std::uint64_t x;
        std::memcpy(&x, p, 8);
        const std::uint64_t m = special_bytes(x, high);
        if (m == 0) {
          p += 8;
          continue;
        }
        if constexpr (std::endian::native == std::endian::little) {
          p += std::countr_zero(m) / 8;
        } else {
          p += std::countl_zero(m) / 8;
        }
        break;
      }
      if (p == end) return nullptr;
      const auto c = static_cast<unsigned char>(*p);
      if (c == '"') return p + 1;
      if (c == '\\') {  // the escaped byte is skipped: a backslash run pairs up on its own
        escaped = true;
        if (end - p < 2 || static_cast<unsigned char>(p[1]) < 0x20) return nullptr;
        high |= static_cast<unsigned char>(p[1]) >= 0x80;
        p += 2;
        continue;
      }
      if (c < 0x20) return nullptr;
      high |= c >= 0x80;
      ++p;
    }
  }

  // `p` at '{' or '[': past the matching bracket, or nullptr. Content is skipped unvalidated,
  // as simdjson skips it, but brackets must match and strings must be well formed.
  const char* skip_nested(const char* p) {
    std::uint64_t arrays = 0;  // bit i: the container i levels up is an array
    int depth = 0;
    while (p < end) {
      switch (class_of(*p)) {
        case open:
          if (depth++ == max_depth) return nullptr;
          arrays = (arrays << 1) | (*p++ == '[' ? 1 : 0);
          break;
        case close:
          if ((arrays & 1) != (*p++ == ']' ? 1u : 0u)) return nullptr;
          arrays >>= 1;
          if (--depth == 0) return p;
          break;
        case quote: {
          bool escaped = false;
          if (!(p = skip_string(p, escaped))) return nullptr;
          break;
        }
        case bad:
          return nullptr;
        default:
          ++p;
      }
    }
    return nullptr;
  }
};

bool is(std::string_view s, const char* p, const char* end) {
  return static_cast<std::size_t>(end - p) == s.size() && std::memcmp(p, s.data(), s.size()) == 0;
}

// One top-level `"key": value` with `p` at the key's quote: past the value, or nullptr.
const char* field(scanner& s, const char* p, const char* doc, answer_info& info) {
  bool escaped = false;
  const char* key = p + 1;
  if (*p != '"' || !(p = s.skip_string(p, escaped)) || escaped) return nullptr;
  const char* key_end = p - 1;
  p = skip_ws(p, s.end);
  if (p == s.end || *p != ':') return nullptr;
  p = skip_ws(p + 1, s.end);
  if (p == s.end) return nullptr;
  const char* value = p;
  const cls kind = class_of(*p);
  if (kind == quote) {
    p = s.skip_string(p, escaped);
  } else if (kind == open) {
    p = s.skip_nested(p);
  } else {  // a number or a literal (simdjson types a value by its first byte)
    while (p < s.end && class_of(*p) == scalar) ++p;
    const bool number = *value == '-' || (*value >= '0' && *value <= '9');
    if (!number && !is("true", value, p) && !is("false", value, p) && !is("null", value, p))
      return nullptr;
  }
  if (!p) return nullptr;
  if (is("model", key, key_end)) {
    if (kind == quote) {
      if (info.model_count == answer_info::max_models) return nullptr;
      info.models[info.model_count++] = {static_cast<std::size_t>(value - doc),
                                         static_cast<std::size_t>(p - doc)};
    }
  } else if (is("type", key, key_end)) {
    if (kind == quote && escaped) return nullptr;
    if (kind == quote)
      info.type = std::string_view(value + 1, static_cast<std::size_t>(p - value) - 2);
  } else if (is("error", key, key_end)) {
    info.has_error |= !is("null", value, p);
  } else if (is("usage", key, key_end)) {
    if (!is("null", value, p)) return nullptr;  // a usage object: simdjson reads it
  } else if (is("response", key, key_end)) {
    return nullptr;  // Responses API: nested response.model and response.usage
  }
  return p;
}

}  // namespace

bool fast_inspect_answer(std::string_view doc, answer_info& info) {
  info = answer_info{};
  scanner s{doc.data() + doc.size()};
  const char* p = skip_ws(doc.data(), s.end);
  if (p == s.end || *p != '{') return false;
  p = skip_ws(p + 1, s.end);
  if (p == s.end) return false;
  if (*p != '}') {
    for (;;) {
      if (!(p = field(s, p, doc.data(), info))) return false;
      p = skip_ws(p, s.end);
      if (p == s.end) return false;
      if (*p == '}') break;
      if (*p != ',') return false;
      p = skip_ws(p + 1, s.end);
      if (p == s.end) return false;
    }
  }
  if (skip_ws(p + 1, s.end) != s.end) return false;  // trailing bytes
  if (s.high && !simdjson::validate_utf8(doc.data(), doc.size())) return false;
  info.is_object = true;
  return true;
}

}  // namespace ob::proxy::json
