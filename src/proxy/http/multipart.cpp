#include "proxy/http/multipart.hpp"

#include <string>

#include "proxy/http/headers.hpp"

namespace ob::proxy::http {

namespace {

constexpr std::size_t max_boundary = 70;  // RFC 2046 5.1.1

std::string_view boundary_of(std::string_view ct) {
  // Parameters after ';': look for boundary= (case-insensitive name).
  for (std::size_t i = 0; i < ct.size(); ++i) {
    if (ct[i] != ';') continue;
    auto rest = ct.substr(i + 1);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    constexpr std::string_view key = "boundary=";
    if (rest.size() <= key.size() || !iequals(rest.substr(0, key.size()), key)) continue;
    rest.remove_prefix(key.size());
    if (rest.front() == '"') {
      auto close = rest.find('"', 1);
      if (close == std::string_view::npos) return {};
      return rest.substr(1, close - 1);
    }
    auto end = rest.find_first_of("; \t");
    return rest.substr(0, end);
  }
  return {};
}

// The value of parameter `param` (name="x" or filename="x") in a Content-Disposition value;
// `found` tells a missing parameter from an empty one.
std::string_view disposition_param(std::string_view v, std::string_view param, bool& found) {
  found = false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] != ';') continue;
    auto rest = v.substr(i + 1);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    if (rest.size() <= param.size() || !iequals(rest.substr(0, param.size()), param) ||
        rest[param.size()] != '=')
      continue;
    rest.remove_prefix(param.size() + 1);
    found = true;
    if (!rest.empty() && rest.front() == '"') {
      auto close = rest.find('"', 1);
      return close == std::string_view::npos ? rest.substr(1) : rest.substr(1, close - 1);
    }
    return rest.substr(0, rest.find(';'));
  }
  return {};
}

}  // namespace

form_field find_form_field(std::string_view content_type, std::string_view body,
                           std::string_view name) {
  form_field out;
  auto boundary = boundary_of(content_type);
  if (boundary.empty() || boundary.size() > max_boundary) return {form_status::no_boundary};
  // Every delimiter but a first one at the very start follows a CRLF.
  std::string delim = "\r\n--";
  delim += boundary;
  std::size_t pos;
  if (body.substr(0, delim.size() - 2) == std::string_view(delim).substr(2))
    pos = delim.size() - 2;
  else if (auto first = body.find(delim); first != std::string_view::npos)
    pos = first + delim.size();
  else
    return {form_status::malformed};
  bool seen = false;
  std::size_t text_bytes = 0;
  for (;;) {
    // After a delimiter: "--" ends the body, else optional whitespace and CRLF start a part.
    if (body.substr(pos, 2) == "--") break;
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.substr(pos, 2) != "\r\n") return {form_status::malformed};
    pos += 2;
    auto head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) return {form_status::malformed};
    auto headers = body.substr(pos, head_end + 2 - pos);
    std::size_t value_begin = head_end + 4;
    auto next = body.find(delim, value_begin);
    if (next == std::string_view::npos) return {form_status::malformed};
    // The part's Content-Disposition.
    std::string_view disposition;
    while (!headers.empty()) {
      auto eol = headers.find("\r\n");
      auto line = headers.substr(0, eol);
      headers.remove_prefix(eol == std::string_view::npos ? headers.size() : eol + 2);
      constexpr std::string_view cd = "content-disposition:";
      if (line.size() >= cd.size() && iequals(line.substr(0, cd.size()), cd))
        disposition = line.substr(cd.size());
    }
    bool has_name = false, has_file = false;
    auto field = disposition_param(disposition, "name", has_name);
    disposition_param(disposition, "filename", has_file);
    if (!has_file) text_bytes += next - value_begin;
    if (has_name && field == name) {
      if (seen) return {form_status::duplicate};
      seen = true;
      out = {form_status::ok, value_begin, next};
      if (has_file || next == value_begin) out.status = form_status::bad_value;
      for (auto c : body.substr(value_begin, next - value_begin))
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) out.status = form_status::bad_value;
    }
    pos = next + delim.size();
  }
  if (!seen) return {form_status::missing};
  if (out.status == form_status::ok) out.text_bytes = text_bytes;
  return out;
}

}  // namespace ob::proxy::http
