#include "proxy/http/path_check.hpp"

#include <array>

namespace ob::proxy::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  char l = static_cast<char>(c | 0x20);
  if (l >= 'a' && l <= 'f') return l - 'a' + 10;
  return -1;
}

// Bytes no rule looks at beyond "part of a segment that is not a dot segment": printable
// ASCII except '%', '#', '\\', ';', '/', '?' and '.'. Most of a target is made of these.
constexpr auto plain_bytes = [] {
  std::array<bool, 256> t{};
  for (int c = 0x21; c < 0x7f; ++c) t[c] = true;
  for (char c : std::string_view("%#\\;/?.")) t[static_cast<unsigned char>(c)] = false;
  return t;
}();

// The byte rules shared by path and query; the byte at target[i] is not '%'.
path_problem check_plain(unsigned char c) {
  if (c < 0x21 || c == 0x7f) return path_problem::control;
  if (c == '#') return path_problem::fragment;
  return path_problem::none;
}

}  // namespace

path_problem check_target(std::string_view target) {
  if (target.empty() || target.front() != '/') return path_problem::not_origin_form;
  bool in_query = false;
  // The current path segment, percent-decoded: its length, and whether every byte is '.'.
  std::size_t seg_len = 0;
  bool seg_dots = true;
  auto end_segment = [&] {
    bool dot = seg_dots && (seg_len == 1 || seg_len == 2);
    seg_len = 0;
    seg_dots = true;
    return dot;
  };
  // A ';' starts the segment's parameters, which some servers strip before normalising
  // ("..;x" taken as ".."): the name before it must not be a dot segment either. True when it
  // is; the parameters then never make the segment a dot segment.
  auto params = [&] {
    bool dot = seg_dots && (seg_len == 1 || seg_len == 2);
    seg_dots = false;
    return dot;
  };
  for (std::size_t i = 1; i < target.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(target[i]);
    if (plain_bytes[c]) {  // what the rules below do with such a byte, path or query
      ++seg_len;
      seg_dots = false;
      continue;
    }
    if (c == '%') {
      if (i + 2 >= target.size()) return path_problem::bad_percent;
      int hi = hex_value(target[i + 1]), lo = hex_value(target[i + 2]);
      if (hi < 0 || lo < 0) return path_problem::bad_percent;
      i += 2;
      if (in_query) continue;
      unsigned char d = static_cast<unsigned char>(hi * 16 + lo);
      // '?' and '#' in disguise too: a provider that decodes, then splits off a query or a
      // fragment, would see the segment end there ("..%3Fx" -> ".." then "?x").
      if (d == '/' || d == '\\' || d == '?' || d == '#') return path_problem::encoded_separator;
      if (d == '%') return path_problem::encoded_percent;
      if (d < 0x20 || d == 0x7f) return path_problem::encoded_control;
      if (d == ';' && params()) return path_problem::dot_segment;
      ++seg_len;
      seg_dots = seg_dots && d == '.';
      continue;
    }
    if (auto p = check_plain(c); p != path_problem::none) return p;
    if (in_query) continue;
    if (c == '\\') return path_problem::backslash;
    if (c == ';' && params()) return path_problem::dot_segment;
    if (c == '/' || c == '?') {
      if (end_segment()) return path_problem::dot_segment;
      in_query = c == '?';
      continue;
    }
    ++seg_len;
    seg_dots = seg_dots && c == '.';
  }
  if (!in_query && end_segment()) return path_problem::dot_segment;
  return path_problem::none;
}

std::string_view describe(path_problem p) {
  switch (p) {
    case path_problem::none:
      return "";
    case path_problem::not_origin_form:
      return "The request target must be a path starting with '/'.";
    case path_problem::dot_segment:
      return "The request path must not contain '.' or '..' segments, in any encoding.";
    case path_problem::encoded_separator:
      return "The request path must not contain an encoded '/', '\\', '?' or '#' (%2F, %5C, %3F, "
             "%23).";
    case path_problem::encoded_percent:
      return "The request path must not contain an encoded '%' (%25).";
    case path_problem::encoded_control:
      return "The request path must not contain an encoded control character.";
    case path_problem::backslash:
      return "The request path must not contain '\\'.";
    case path_problem::control:
      return "The request target must not contain control characters or spaces.";
    case path_problem::fragment:
      return "The request target must not contain '#'.";
    case path_problem::bad_percent:
      return "The request target has an invalid percent-encoding.";
  }
  return "The request target is not valid.";
}

}  // namespace ob::proxy::http
