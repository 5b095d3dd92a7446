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
  if (auto p = check_target(target); p != path_problem::none)
    return refuse(describe(p), false, error_kind::bad_path);
  return {};
}

bool chunk_pending_ok(std::string_view pending) {
  if (pending.size() > max_chunk_line) return false;
  for (auto lf = pending.find('\n'); lf != std::string_view::npos; lf = pending.find('\n', lf + 1))
    if (lf == 0 || pending[lf - 1] != '\r') return false;
  return true;
}

}  // namespace ob::proxy::http
