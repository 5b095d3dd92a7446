#include "server/h2_translate.hpp"

#include <algorithm>
#include <charconv>

namespace ob::server::h2 {

namespace {

bool has_forbidden_byte(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

}  // namespace

void request_head::add(std::string_view name, std::string_view value) {
  bytes_ += name.size() + value.size() + 32;
  if (bytes_ > limit_) too_large_ = true;
  if (too_large_ || bad_) return;
  bool bad_name = name.empty() || has_forbidden_byte(name) ||
                  name.find(' ') != std::string_view::npos ||
                  (name[0] != ':' && name.find(':') != std::string_view::npos);
  if (bad_name || has_forbidden_byte(value)) {
    bad_ = true;
    return;
  }
  if (name[0] == ':') {
    if (name == ":method")
      method_.assign(value);
    else if (name == ":path")
      path_.assign(value);
    else if (name == ":authority")
      authority_.assign(value);
    else if (name == ":scheme")
      https_ = iequals(value, "https");
    else
      bad_ = true;  // :protocol (extended CONNECT) and unknown pseudo-headers
    if ((name == ":method" || name == ":path") &&
        (value.empty() || value.find(' ') != std::string_view::npos))
      bad_ = true;
    return;
  }
  if (name == "host") {
    host_.assign(value);
    return;
  }
  if (name == "content-length") {
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec == std::errc() && end == value.data() + value.size() && !value.empty())
      content_length_ = n;
    return;
  }
  if (connection_specific(name) || name == "expect") return;
  if (name == "content-type") content_type_.assign(value);
  fields_.append(name).append(": ").append(value).append("\r\n");
}

// `authority` without an empty port, or the scheme's default one ("gw:" and "gw:443" over
// https name "gw").
std::string_view request_head::normal_authority(std::string_view a) const {
  auto colon = a.rfind(':');
  if (colon == std::string_view::npos || a.find(']', colon) != std::string_view::npos) return a;
  auto port = a.substr(colon + 1);
  return port.empty() || port == (https_ ? "443" : "80") ? a.substr(0, colon) : a;
}

bool request_head::host_conflict() const {
  return !authority_.empty() && !host_.empty() &&
         !iequals(normal_authority(authority_), normal_authority(host_));
}

std::string request_head::finish(std::uint64_t content_length) const {
  return finish_with("Content-Length: " + std::to_string(content_length) + "\r\n\r\n");
}

std::string request_head::finish_chunked() const {
  return finish_with("Transfer-Encoding: chunked\r\n\r\n");
}

std::string request_head::finish_with(std::string_view framing) const {
  std::string out;
  const std::string& host = authority_.empty() ? host_ : authority_;
  out.reserve(method_.size() + path_.size() + host.size() + fields_.size() + 64);
  out.append(method_).append(" ").append(path_).append(" HTTP/1.1\r\n");
  if (!host.empty()) out.append("Host: ").append(host).append("\r\n");
  out.append(fields_);
  out.append(framing);
  return out;
}

bool connection_specific(std::string_view name) {
  for (std::string_view n : {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                             "upgrade", "te", "http2-settings"})
    if (iequals(name, n)) return true;
  return false;
}

bool reset_budget::spend(time_point now) {
  double elapsed = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

}  // namespace ob::server::h2
