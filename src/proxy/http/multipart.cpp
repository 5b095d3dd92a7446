#include "proxy/http/multipart.hpp"

#include <algorithm>
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

// What a part's headers say of it: its Content-Disposition's name and whether it is a file.
struct part_info {
  std::string_view field;
  bool has_name = false, has_file = false;
};

part_info part_of(std::string_view headers) {
  std::string_view disposition;
  while (!headers.empty()) {
    auto eol = headers.find("\r\n");
    auto line = headers.substr(0, eol);
    headers.remove_prefix(eol == std::string_view::npos ? headers.size() : eol + 2);
    constexpr std::string_view cd = "content-disposition:";
    if (line.size() >= cd.size() && iequals(line.substr(0, cd.size()), cd))
      disposition = line.substr(cd.size());
  }
  part_info p;
  p.field = disposition_param(disposition, "name", p.has_name);
  disposition_param(disposition, "filename", p.has_file);
  return p;
}

// A routing value: a non-empty text field without control bytes.
bool value_ok(const part_info& p, std::string_view value) {
  if (p.has_file || value.empty()) return false;
  for (auto c : value)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  return true;
}

}  // namespace

bool is_multipart(std::string_view content_type) {
  constexpr std::string_view m = "multipart/";
  return content_type.size() >= m.size() && iequals(content_type.substr(0, m.size()), m);
}

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
    auto p = part_of(headers);
    if (!p.has_file) text_bytes += next - value_begin;
    if (p.has_name && p.field == name) {
      if (seen) return {form_status::duplicate};
      seen = true;
      out = {form_status::ok, value_begin, next};
      if (!value_ok(p, body.substr(value_begin, next - value_begin)))
        out.status = form_status::bad_value;
    }
    pos = next + delim.size();
  }
  if (!seen) return {form_status::missing};
  if (out.status == form_status::ok) out.text_bytes = text_bytes;
  return out;
}

form_scanner::form_scanner(std::string_view content_type, std::string_view name) : name_(name) {
  auto boundary = boundary_of(content_type);
  if (boundary.empty() || boundary.size() > max_boundary) {
    result_.status = form_status::no_boundary;
    stage_ = stage::done;
    return;
  }
  delim_ = "\r\n--";
  delim_ += boundary;
}

form_field form_scanner::scan(std::string_view body) {
  const std::string_view delim = delim_;
  // A search that found nothing resumes where a match could still start.
  auto resume_at = [&](std::size_t from, std::size_t needle) {
    return std::max(from, body.size() >= needle ? body.size() - needle + 1 : 0);
  };
  auto pending = [] { return form_field{form_status::pending}; };
  auto stop = [&](form_status s) {
    result_ = {s};
    stage_ = stage::done;
    return result_;
  };
  for (;;) {
    switch (stage_) {
      case stage::done:
        return result_;
      case stage::preamble: {
        // A first delimiter at the very start has no CRLF before it.
        auto first = delim.substr(2);
        if (body.size() < first.size()) {
          if (first.substr(0, body.size()) == body) return pending();
        } else if (body.substr(0, first.size()) == first) {
          pos_ = first.size();
          stage_ = stage::after_delimiter;
          break;
        }
        auto at = body.find(delim, search_from_);
        if (at == std::string_view::npos) {
          search_from_ = resume_at(search_from_, delim.size());
          return pending();
        }
        pos_ = at + delim.size();
        stage_ = stage::after_delimiter;
        break;
      }
      case stage::after_delimiter: {
        // "--" ends the body, else optional whitespace and CRLF start a part.
        auto p = pos_;
        if (body.size() < p + 2) return pending();
        if (body.substr(p, 2) == "--") return stop(form_status::missing);
        while (p < body.size() && (body[p] == ' ' || body[p] == '\t')) ++p;
        if (body.size() < p + 2) return pending();
        if (body.substr(p, 2) != "\r\n") return stop(form_status::malformed);
        pos_ = search_from_ = p + 2;
        stage_ = stage::head;
        break;
      }
      case stage::head: {
        auto head_end = body.find("\r\n\r\n", search_from_);
        if (head_end == std::string_view::npos) {
          search_from_ = resume_at(pos_, 4);
          return pending();
        }
        value_begin_ = search_from_ = head_end + 4;
        stage_ = stage::value;
        break;
      }
      case stage::value: {
        auto next = body.find(delim, search_from_);
        if (next == std::string_view::npos) {
          search_from_ = resume_at(value_begin_, delim.size());
          return pending();
        }
        auto p = part_of(body.substr(pos_, value_begin_ - 2 - pos_));
        auto value = body.substr(value_begin_, next - value_begin_);
        if (!p.has_file) text_bytes_ += value.size();
        if (p.has_name && p.field == name_) {
          result_ = {value_ok(p, value) ? form_status::ok : form_status::bad_value, value_begin_,
                     next, text_bytes_};
          stage_ = stage::done;
          return result_;
        }
        pos_ = next + delim.size();
        stage_ = stage::after_delimiter;
        break;
      }
    }
  }
}

void form_end_watch::start(std::string_view delimiter, std::string_view tail,
                           std::string_view field) {
  delim_.assign(delimiter);
  field_.assign(field);
  carry_.clear();
  head_.clear();
  state_ = delim_.empty() ? state::failed : state::search;
  problem_ = delim_.empty() ? form_status::malformed : form_status::ok;
  feed(tail);
}

void form_end_watch::feed(std::string_view piece) {
  for (;;) {
    if (state_ == state::search) {
      const std::size_t keep = delim_.size() - 1;
      // A delimiter that straddles the carry and the piece, then one inside the piece.
      const std::size_t had = carry_.size();
      carry_.append(piece.substr(0, keep));
      std::size_t after = std::string_view::npos;  // in the piece, just past the delimiter
      if (auto at = carry_.find(delim_); at != std::string::npos)
        after = at + delim_.size() - had;
      else if (auto in = piece.find(delim_); in != std::string_view::npos)
        after = in + delim_.size();
      if (after == std::string_view::npos) {
        if (piece.size() >= keep) {
          carry_.assign(piece.substr(piece.size() - keep));
        } else if (carry_.size() > keep) {
          carry_.erase(0, carry_.size() - keep);
        }
        return;
      }
      piece.remove_prefix(after);
      carry_.clear();
      head_.clear();
      state_ = state::after_delimiter;
      continue;
    }
    if (state_ != state::after_delimiter) return;
    // After a delimiter: "--" ends the form; else optional whitespace, CRLF, and the part's
    // head up to its blank line (as find_form_field reads a whole body).
    const std::size_t had = head_.size();
    head_.append(piece.substr(0, max_part_head - had));
    const std::string_view h = head_;
    if (h.size() < 2) return;
    if (h.substr(0, 2) == "--") {
      state_ = state::closed;
      return;
    }
    auto p = h.find_first_not_of(" \t");
    if (p != std::string_view::npos && h.size() >= p + 2 && h.substr(p, 2) != "\r\n")
      return fail(form_status::malformed);
    auto blank = p == std::string_view::npos ? p : h.find("\r\n\r\n", p);
    if (blank == std::string_view::npos) {
      if (h.size() >= max_part_head) fail(form_status::malformed);
      return;
    }
    auto info = part_of(h.substr(p + 2, blank + 2 - (p + 2)));
    if (info.has_name && info.field == field_) return fail(form_status::duplicate);
    piece.remove_prefix(blank + 4 - had);  // the part's value: search it for the next delimiter
    head_.clear();
    state_ = state::search;
  }
}

}  // namespace ob::proxy::http
