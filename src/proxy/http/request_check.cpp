#include "proxy/http/request_check.hpp"

#include "proxy/http/path_check.hpp"

namespace ob::proxy::http {
namespace {

bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct codings {
  int count = 0;    // non-empty elements
  int chunked = 0;  // ... that are "chunked"
  bool last_chunked = false;
  bool malformed = false;
};

// Adds the elements of one Transfer-Encoding value to `c`.
void add_codings(std::string_view list, codings& c) {
  for (;;) {
    auto comma = list.find(',');
    auto item = trim_ows(list.substr(0, comma));
    if (!item.empty()) {
      // A coding is a token, optionally followed by ";" parameters (never valid for chunked).
      auto name = trim_ows(item.substr(0, item.find(';')));
      bool token = !name.empty();
      for (unsigned char ch : name) token = token && is_tchar(ch);
      c.malformed = c.malformed || !token;
      ++c.count;
      c.last_chunked = iequals(item, "chunked");
      c.chunked += c.last_chunked;
    }
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

bool is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

// RFC 3986 unreserved and sub-delims: the bytes a reg-name may hold besides pct-encodings.
bool is_name_char(unsigned char c) {
  if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return true;
  return std::string_view("-._~!$&'()*+,;=").find(static_cast<char>(c)) != std::string_view::npos;
}

bool all_digits(std::string_view s) {
  for (unsigned char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

request_verdict refuse(std::string_view message, bool close = true,
                       error_kind kind = error_kind::bad_request) {
  return {kind, message, close};
}

}  // namespace

request_verdict check_request(int version, const header_list& headers, std::string_view target) {
  int hosts = 0;
  bool te = false, cl = false;
  codings c;
  for (std::size_t i = 0; i < headers.size(); ++i) {
    switch (headers.id(i)) {
      case header_id::host:
        ++hosts;
        break;
      case header_id::content_length:
        cl = true;
        break;
      case header_id::transfer_encoding:
        te = true;
        add_codings(headers.value(i), c);
        break;
      default:
        break;
    }
  }
  if (hosts > 1) return refuse("The request has more than one Host header.");
  if (hosts == 0 && version >= 11) return refuse("An HTTP/1.1 request must have a Host header.");
  if (te) {
    if (version < 11) return refuse("Transfer-Encoding is not allowed in an HTTP/1.0 request.");
    if (cl) return refuse("The request has both Transfer-Encoding and Content-Length.");
    if (c.count == 0 || c.malformed) return refuse("The request's Transfer-Encoding is malformed.");
    if (c.chunked != 1 || !c.last_chunked)
      return refuse("The request's Transfer-Encoding must end with one \"chunked\".");
    if (c.count > 1)
      return refuse("Only the \"chunked\" transfer coding is supported.", true,
                    error_kind::not_implemented);
  }
  // After the framing checks, which decide whether the connection can go on.
  if (hosts == 1 && !valid_host(headers.get(header_id::host)))
    return refuse("The request's Host header is not a valid host name, address or port.", false);
  // A valid absolute-form target was turned into its origin form by the parser: one still here
  // has an authority that is not a host and port.
  if (split_absolute(target).absolute)
    return refuse(
        "The request target's authority must be a host and optional port, without userinfo.", false,
        error_kind::bad_path);
  if (auto p = check_target(target); p != path_problem::none)
    return refuse(describe(p), false, error_kind::bad_path);
  return {};
}

bool valid_host(std::string_view host) {
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    auto literal = host.substr(1, close - 1);
    if ((literal.front() | 0x20) == 'v') {
      // IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
      auto dot = literal.find('.');
      if (dot == std::string_view::npos || dot < 2 || dot + 1 == literal.size()) return false;
      for (unsigned char c : literal.substr(1, dot - 1))
        if (!is_hex(c)) return false;
      for (unsigned char c : literal.substr(dot + 1))
        if (!is_name_char(c) && c != ':') return false;
    } else {
      // IPv6address, held to its alphabet (hex digits, ':' and '.' for an embedded IPv4) and
      // at least one ':'; the gateway never connects to it, so its exact shape is not checked.
      if (literal.find(':') == std::string_view::npos) return false;
      for (unsigned char c : literal)
        if (!is_hex(c) && c != ':' && c != '.') return false;
    }
    auto rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    port = rest.empty() ? rest : rest.substr(1);
  } else {
    auto colon = host.find(':');
    auto name = host.substr(0, colon);
    for (std::size_t i = 0; i < name.size(); ++i) {
      auto c = static_cast<unsigned char>(name[i]);
      if (c == '%') {
        if (i + 2 >= name.size() || !is_hex(name[i + 1]) || !is_hex(name[i + 2])) return false;
        i += 2;
      } else if (!is_name_char(c)) {
        return false;
      }
    }
    port = colon == std::string_view::npos ? std::string_view() : host.substr(colon + 1);
  }
  return all_digits(port);
}

absolute_target split_absolute(std::string_view target) {
  absolute_target a;
  std::size_t skip = 0;
  if (target.size() >= 7 && iequals(target.substr(0, 7), "http://"))
    skip = 7;
  else if (target.size() >= 8 && iequals(target.substr(0, 8), "https://"))
    skip = 8;
  else
    return a;
  a.absolute = true;
  auto rest = target.substr(skip);
  auto end = rest.find_first_of("/?#");
  auto authority = rest.substr(0, end);
  a.valid = !authority.empty() && valid_host(authority);
  a.origin = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  return a;
}

bool chunk_pending_ok(std::string_view pending) {
  if (pending.size() > max_chunk_line) return false;
  for (auto lf = pending.find('\n'); lf != std::string_view::npos; lf = pending.find('\n', lf + 1))
    if (lf == 0 || pending[lf - 1] != '\r') return false;
  return true;
}

}  // namespace ob::proxy::http
