// Writing JSON text: string literals and byte splices. Both only append; no DOM, no re-encoding
// of bytes that are already valid.
#include <cstdint>
#include <cstring>

#include "proxy/json/model.hpp"

namespace ob::proxy::json {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid (overlong,
// surrogate, beyond U+10FFFF, truncated).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = at(i);
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size() || at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  return n;
}

void append_escape(std::string& out, unsigned char c) {
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    default:
      break;
  }
  const char u[] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 0xF]};
  out.append(u, sizeof u);
}

// True when none of the 8 bytes at p needs a look: all ASCII >= 0x20, none '"' or '\\'. (The
// classic word tests for a byte below n or equal to c: exact as a yes/no answer.)
inline bool plain8(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  const std::uint64_t quote = v ^ (ones * '"'), slash = v ^ (ones * '\\');
  const std::uint64_t special =
      ((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) | ((slash - ones) & ~slash) | v;
  return (special & highs) == 0;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  std::size_t run = 0;  // start of the pending run of bytes that need no escaping
  std::size_t i = 0;
  while (i < s.size()) {
    // Text is mostly plain ASCII: 8 bytes per step while no byte needs escaping.
    while (i + 8 <= s.size() && plain8(s.data() + i)) i += 8;
    if (i >= s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (std::size_t n = utf8_length(s, i)) {
        i += n;
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    if (c >= 0x80) {
      out += "\xEF\xBF\xBD";  // U+FFFD for one invalid byte
    } else {
      append_escape(out, c);
    }
    run = ++i;
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

void append_spliced(std::string& out, std::string_view doc, const span* spans, int count,
                    std::string_view replacement) {
  out.reserve(out.size() + doc.size() + replacement.size() * static_cast<std::size_t>(count));
  std::size_t pos = 0;
  for (int i = 0; i < count; ++i) {
    // A span out of order or out of range is ignored rather than trusted (no out-of-bounds read).
    if (spans[i].begin < pos || spans[i].begin > spans[i].end || spans[i].end > doc.size())
      continue;
    out.append(doc.data() + pos, spans[i].begin - pos);
    out.append(replacement);
    pos = spans[i].end;
  }
  out.append(doc.data() + pos, doc.size() - pos);
}

}  // namespace ob::proxy::json
