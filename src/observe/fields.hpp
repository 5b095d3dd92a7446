// Field writers shared by the log line formatters (access, process, health, reload lines).
// Each writes at a raw pointer into a buffer the caller sized for the worst case and returns
// the new end: a line is one resize plus plain stores, no allocation. Not part of the module's
// interface (tests include it to check the escaping directly).
#pragma once

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace ob::observe::detail {

// Writes all of `s` to `fd` (retrying short writes and EINTR); false when the write failed.
bool write_all(int fd, std::string_view s);

// "YYYY-MM-DDTHH:MM:SS.mmmZ" (RFC 3339, UTC, milliseconds).
constexpr std::size_t time_size = 24;
// Now on the coarse wall clock (within a tick, like nginx's cached time); the part up to the
// seconds is formatted once per second per thread.
char* put_now(char* p);
// Any time point (health "until"); no cache.
char* put_time(char* p, std::chrono::system_clock::time_point t);

inline char* put_int(char* p, std::int64_t v) {
  return std::to_chars(p, p + 20, v).ptr;
}

// Milliseconds with three decimals (microsecond resolution), e.g. 12.345; negative -> 0.000.
inline char* put_millis(char* p, double ms) {
  if (!(ms >= 0)) ms = 0;
  if (ms > 1e12) ms = 1e12;  // ~31 years: keeps the conversion defined
  const auto us = static_cast<std::int64_t>(ms * 1000.0 + 0.5);
  p = put_int(p, us / 1000);
  const auto frac = static_cast<int>(us % 1000);
  p[0] = '.';
  p[1] = static_cast<char>('0' + frac / 100);
  p[2] = static_cast<char>('0' + frac / 10 % 10);
  p[3] = static_cast<char>('0' + frac % 10);
  return p + 4;
}

template <std::size_t N>
char* put_literal(char* p, const char (&text)[N]) {
  std::memcpy(p, text, N - 1);
  return p + N - 1;
}

// ---- logfmt ------------------------------------------------------------------------------

// The bytes that make a logfmt value need quotes: controls, space, '"', '=', '\\', DEL.
inline constexpr auto quote_bytes = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c <= ' '; ++c) t[c] = true;
  t['"'] = t['='] = t['\\'] = t[0x7f] = true;
  return t;
}();

// Values are quoted when they hold anything that would break a logfmt field (space, quote, '=',
// backslash, control bytes); inside quotes '"' and '\\' are escaped and control bytes become
// spaces, so one record is always one line.
inline bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v)
    if (quote_bytes[c]) return true;
  return false;
}

// Room: 2 * v.size() + 2.
inline char* put_value(char* p, std::string_view v) {
  if (!needs_quotes(v)) {
    std::memcpy(p, v.data(), v.size());
    return p + v.size();
  }
  *p++ = '"';
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') *p++ = '\\';
    *p++ = (c < ' ' || c == 0x7f) ? ' ' : static_cast<char>(c);
  }
  *p++ = '"';
  return p;
}

// " key=" (key is a literal)
template <std::size_t N>
char* put_key(char* p, const char (&key)[N]) {
  *p++ = ' ';
  std::memcpy(p, key, N - 1);
  p += N - 1;
  *p++ = '=';
  return p;
}

// ---- JSON --------------------------------------------------------------------------------

// Worst-case output bytes per input byte of put_json_string (a control byte becomes \u00XX).
constexpr std::size_t json_expansion = 6;

// Length of the valid UTF-8 sequence starting at s (a byte >= 0x80), 0 if it is not one
// (overlong forms, surrogates, code points above U+10FFFF, truncated sequences).
inline std::size_t utf8_length(const unsigned char* s, const unsigned char* end) {
  auto cont = [](unsigned char c) { return (c & 0xC0) == 0x80; };
  const unsigned char c = s[0];
  const std::size_t left = static_cast<std::size_t>(end - s);
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && cont(s[1]) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !cont(s[1]) || !cont(s[2])) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0;   // overlong
    if (c == 0xED && s[1] >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !cont(s[1]) || !cont(s[2]) || !cont(s[3])) return 0;
    if (c == 0xF0 && s[1] < 0x90) return 0;   // overlong
    if (c == 0xF4 && s[1] >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// Whether any of the 8 bytes in `x` needs more than a copy: a control byte, '"', '\\' or a byte
// >= 0x80. Exact (no false negatives): a byte below n borrows in x - n * ones only if some
// byte is below n.
inline bool json_needs_escape8(std::uint64_t x) {
  constexpr std::uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
  auto has_zero = [](std::uint64_t y) { return ((y - ones) & ~y & high) != 0; };
  return (x & high) != 0 || ((x - 0x20 * ones) & ~x & high) != 0 || has_zero(x ^ ('"' * ones)) ||
         has_zero(x ^ ('\\' * ones));
}

// A JSON string literal of v. Room: json_expansion * v.size() + 2. '"', '\\' and control
// bytes are escaped; each byte that does not start a valid UTF-8 sequence becomes U+FFFD, so
// the line is valid UTF-8 JSON whatever a client sent.
inline char* put_json_string(char* p, std::string_view v) {
  static constexpr char hex[] = "0123456789abcdef";
  *p++ = '"';
  auto s = reinterpret_cast<const unsigned char*>(v.data());
  const auto end = s + v.size();
  while (s < end) {
    // Runs of plain ASCII (most of an access line) are copied 8 bytes at a time.
    while (end - s >= 8) {
      std::uint64_t x;
      std::memcpy(&x, s, 8);
      if (json_needs_escape8(x)) break;
      std::memcpy(p, s, 8);
      p += 8;
      s += 8;
    }
    if (s == end) break;
    // The last few bytes, by the string's last 8 (some already written): usually plain too.
    if (end - s < 8 && v.size() >= 8) {
      std::uint64_t x;
      std::memcpy(&x, end - 8, 8);
      if (!json_needs_escape8(x)) {
        const auto n = static_cast<std::size_t>(end - s);
        std::memcpy(p, s, n);
        p += n;
        break;
      }
    }
    const unsigned char c = *s;
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      *p++ = static_cast<char>(c);
      ++s;
      continue;
    }
    if (c < 0x80) {
      *p++ = '\\';
      switch (c) {
        case '"':
          *p++ = '"';
          break;
        case '\\':
          *p++ = '\\';
          break;
        case '\n':
          *p++ = 'n';
          break;
        case '\r':
          *p++ = 'r';
          break;
        case '\t':
          *p++ = 't';
          break;
        case '\b':
          *p++ = 'b';
          break;
        case '\f':
          *p++ = 'f';
          break;
        default:
          p = put_literal(p, "u00");
          *p++ = hex[c >> 4];
          *p++ = hex[c & 0xF];
      }
      ++s;
      continue;
    }
    if (auto n = utf8_length(s, end)) {
      std::memcpy(p, s, n);
      p += n;
      s += n;
    } else {
      p = put_literal(p, "\xEF\xBF\xBD");  // U+FFFD
      ++s;
    }
  }
  *p++ = '"';
  return p;
}

// A string, or null when empty (optional text fields).
inline char* put_json_text_or_null(char* p, std::string_view v) {
  return v.empty() ? put_literal(p, "null") : put_json_string(p, v);
}

inline char* put_json_int_or_null(char* p, std::int64_t v) {
  return v < 0 ? put_literal(p, "null") : put_int(p, v);
}

inline char* put_json_millis_or_null(char* p, double ms) {
  return ms < 0 ? put_literal(p, "null") : put_millis(p, ms);
}

// ,"key": (key is a literal)
template <std::size_t N>
char* put_json_key(char* p, const char (&key)[N]) {
  *p++ = ',';
  *p++ = '"';
  std::memcpy(p, key, N - 1);
  p += N - 1;
  *p++ = '"';
  *p++ = ':';
  return p;
}

}  // namespace ob::observe::detail
