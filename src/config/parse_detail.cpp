// Syntax pre-scan (Boost.JSON SAX parser: exact error offset and duplicate keys, which the DOM
// hides) and the address checks for `base` and `listen`.
#include "config/parse_detail.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <set>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/serialize.hpp>

namespace ob::config {
namespace detail {
namespace {

using boost::json::string_view;
using ec_t = boost::system::error_code;

// Tracks where the parser is (a path like "providers[2]") and the keys seen per object.
class duplicate_finder {
 public:
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;

  explicit duplicate_finder(std::map<std::string, std::vector<std::string>>* out) : out_(out) {}

  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_array_begin(ec_t&) { return open(false); }
  bool on_array_end(std::size_t, ec_t&) { return close(); }
  bool on_object_begin(ec_t&) { return open(true); }
  bool on_object_end(std::size_t, ec_t&) { return close(); }
  bool on_string_part(string_view, std::size_t, ec_t&) { return true; }
  bool on_string(string_view, std::size_t, ec_t&) { return scalar(); }
  bool on_key_part(string_view s, std::size_t, ec_t&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(string_view s, std::size_t, ec_t&) {
    key_.append(s.data(), s.size());
    auto& top = stack_.back();
    if (!top.keys.insert(key_).second) {
      auto& dups = (*out_)[top.path];
      if (std::find(dups.begin(), dups.end(), key_) == dups.end()) dups.push_back(key_);
    }
    top.key = std::move(key_);
    key_.clear();
    return true;
  }
  bool on_number_part(string_view, ec_t&) { return true; }
  bool on_int64(std::int64_t, string_view, ec_t&) { return scalar(); }
  bool on_uint64(std::uint64_t, string_view, ec_t&) { return scalar(); }
  bool on_double(double, string_view, ec_t&) { return scalar(); }
  bool on_bool(bool, ec_t&) { return scalar(); }
  bool on_null(ec_t&) { return scalar(); }
  bool on_comment_part(string_view, ec_t&) { return true; }
  bool on_comment(string_view, ec_t&) { return true; }

 private:
  struct frame {
    bool is_object = false;
    std::string path;
    std::size_t next_index = 0;
    std::string key;
    std::set<std::string> keys;
  };

  // Path of the value that starts now, as a child of the innermost container.
  std::string child_path() {
    if (stack_.empty()) return "";
    auto& top = stack_.back();
    if (top.is_object) return join(top.path, top.key);
    return top.path + "[" + std::to_string(top.next_index++) + "]";
  }
  bool open(bool is_object) {
    std::string path = child_path();
    auto& f = stack_.emplace_back();
    f.is_object = is_object;
    f.path = std::move(path);
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }
  bool scalar() {
    if (!stack_.empty() && !stack_.back().is_object) ++stack_.back().next_index;
    return true;
  }

  std::map<std::string, std::vector<std::string>>* out_;
  std::vector<frame> stack_;
  std::string key_;
};

std::string line_column(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  auto before = text.substr(0, offset);
  auto line = 1 + std::count(before.begin(), before.end(), '\n');
  auto last_nl = before.rfind('\n');
  auto column = last_nl == std::string_view::npos ? offset + 1 : offset - last_nl;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

bool is_digits(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

bool is_alnum(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

// A DNS name or IPv4 literal (no brackets, no port).
bool valid_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  if (!std::all_of(host.begin(), host.end(),
                   [](char ch) { return is_alnum(ch) || ch == '-' || ch == '.' || ch == '_'; }))
    return false;
  bool numeric = std::all_of(host.begin(), host.end(),
                             [](char ch) { return (ch >= '0' && ch <= '9') || ch == '.'; });
  if (!numeric) return true;
  in_addr a4;
  return inet_pton(AF_INET, std::string(host).c_str(), &a4) == 1;
}

bool valid_ipv6(std::string_view host) {
  in6_addr a6;
  return inet_pton(AF_INET6, std::string(host).c_str(), &a6) == 1;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  unsigned p = 0;
  if (!is_digits(s) || s.size() > 5) return std::nullopt;
  std::from_chars(s.data(), s.data() + s.size(), p);
  if (p < 1 || p > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(p);
}

// "host[:port]" or "[v6][:port]" -> host (brackets removed), port text ("" when absent).
bool split_host_port(std::string_view authority, std::string_view* host, std::string_view* port,
                     bool* ipv6, std::string* error) {
  *ipv6 = !authority.empty() && authority.front() == '[';
  if (*ipv6) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return (*error = "has an unclosed '['", false);
    *host = authority.substr(1, close - 1);
    auto rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':')
      return (*error = "has junk after the IPv6 address", false);
    *port = rest.empty() ? rest : rest.substr(1);
    if (!rest.empty() && port->empty()) return (*error = "has an empty port", false);
    if (!valid_ipv6(*host)) return (*error = "has an invalid IPv6 address", false);
    return true;
  }
  auto colon = authority.find(':');
  *host = authority.substr(0, colon);
  *port = colon == std::string_view::npos ? std::string_view() : authority.substr(colon + 1);
  if (colon != std::string_view::npos && port->empty())
    return (*error = "has an empty port", false);
  if (port->find(':') != std::string_view::npos)
    return (*error = "has more than one ':' (IPv6 addresses go in brackets)", false);
  return true;
}

}  // namespace

bool scan_syntax(std::string_view text, context& c) {
  boost::json::basic_parser<duplicate_finder> p(boost::json::parse_options{}, &c.duplicates);
  ec_t ec;
  std::size_t used = p.write_some(false, text.data(), text.size(), ec);
  if (!ec && used < text.size()) ec = boost::json::error::extra_data;
  if (!ec) return true;
  c.error("", "invalid JSON at " + line_column(text, used) + ": " + ec.message());
  return false;
}

bool check_listen(std::string_view text, std::string* error) {
  std::string_view host, port;
  bool ipv6 = false;
  if (!text.empty() && text.front() != '[' && text.find(':') != text.rfind(':'))
    return (*error = "IPv6 addresses must be in brackets, e.g. \"[::1]:8080\"", false);
  if (!split_host_port(text, &host, &port, &ipv6, error)) return false;
  if (port.empty()) return (*error = "expected \"host:port\", \"[v6]:port\" or \":port\"", false);
  if (!parse_port(port)) return (*error = "invalid port (expected 1-65535)", false);
  if (!ipv6 && !host.empty() && host != "*" && !valid_host_name(host))
    return (*error = "invalid host", false);
  return true;
}

bool is_loopback_listen(std::string_view text) {
  std::string_view host, port;
  bool ipv6 = false;
  std::string error;
  if (!split_host_port(text, &host, &port, &ipv6, &error)) return false;
  if (ipv6) return host == "::1";
  if (host == "localhost") return true;
  // 127.0.0.0/8 written as a dotted quad.
  if (!host.starts_with("127.")) return false;
  int dots = 0;
  for (char ch : host) {
    if (ch == '.')
      ++dots;
    else if (ch < '0' || ch > '9')
      return false;
  }
  return dots == 3;
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char ch) { return is_alnum(ch) || ch == '_'; });
}

}  // namespace detail

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& ch : out)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  return out;
}

bool valid_path(std::string_view path) {
  return std::none_of(path.begin(), path.end(), [](unsigned char ch) {
    return ch <= 0x20 || ch == 0x7f || ch == '\\' || ch == '"';
  });
}

}  // namespace

std::optional<base_url> parse_base_url(std::string_view base, std::string* error) {
  auto fail = [&](std::string_view why) {
    // The URL as the error shows it (logs, the admin API's reload answers and history): any
    // user info, a credential put where it does not belong, masked.
    std::string shown(base);
    // A password may hold '/', '?' or '#' unescaped, so everything up to the last '@' goes.
    auto start = shown.find("://");
    start = start == std::string::npos ? 0 : start + 3;
    if (auto at = shown.rfind('@'); at != std::string::npos && at >= start)
      shown.replace(start, at - start, "***");
    *error = boost::json::serialize(boost::json::string_view(shown)) + " " + std::string(why);
    return std::nullopt;
  };
  base_url url;
  auto scheme_end = base.find("://");
  std::string scheme =
      scheme_end == std::string_view::npos ? "" : lower(base.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") return fail("is not an http(s) URL");
  url.tls = scheme == "https";
  auto rest = base.substr(scheme_end + 3);
  // Checked on the whole rest, not the authority alone: "bob:pa/ss@host" is a password with a
  // slash, and parsing "bob:pa" as host and port would echo part of it in the error.
  if (rest.find('@') != std::string_view::npos)
    return fail(
        "must not contain user info (put the credential in \"key\"; an @ in the path is "
        "written %40)");
  if (rest.find_first_of("?#") != std::string_view::npos)
    return fail("must not contain a query or fragment");
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  auto path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  std::string_view host, port;
  bool ipv6 = false;
  std::string why;
  if (!detail::split_host_port(authority, &host, &port, &ipv6, &why)) return fail(why);
  if (host.empty()) return fail("has no host");
  if (!ipv6 && !detail::valid_host_name(host))
    return fail("has an invalid host \"" + std::string(host) + "\"");
  std::uint16_t default_port = url.tls ? 443 : 80;
  url.port = default_port;
  if (!port.empty()) {
    auto p = detail::parse_port(port);
    if (!p) return fail("has an invalid port \"" + std::string(port) + "\" (expected 1-65535)");
    url.port = *p;
  }
  if (!valid_path(path)) return fail("has a space, quote or control character in its path");
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  url.host = lower(host);
  url.path_prefix = std::string(path);
  std::string shown = ipv6 ? "[" + url.host + "]" : url.host;
  url.host_header = url.port == default_port ? shown : shown + ":" + std::to_string(url.port);
  return url;
}

}  // namespace ob::config
