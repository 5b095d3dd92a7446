// The request-target check (proxy::http::check_target). Invariants: an accepted target starts
// with '/'; its path, under a provider prefix made of plain segments, is unchanged by RFC 3986
// remove_dot_segments as written, after percent-decoding once and twice, and with every
// segment's ";parameters" removed; so a path accepted under "/v1/" never leaves
// "<prefix>/v1/" however the provider decodes or normalises it.
#include <string>
#include <vector>

#include "fuzz/split.hpp"
#include "proxy/http/path_check.hpp"

namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// RFC 3986 section 5.2.4, treating '\' as '/' too (as some servers do).
std::string remove_dot_segments(std::string in) {
  for (auto& c : in)
    if (c == '\\') c = '/';
  std::vector<std::string> out;
  std::size_t pos = 0;
  bool absolute = !in.empty() && in[0] == '/';
  if (absolute) pos = 1;
  while (pos <= in.size()) {
    auto slash = in.find('/', pos);
    std::string seg = in.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
    } else if (seg != ".") {
      out.push_back(seg);
    }
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  std::string r = absolute ? "/" : "";
  for (std::size_t i = 0; i < out.size(); ++i) r += (i ? "/" : "") + out[i];
  return r;
}

std::string strip_params(std::string_view p) {
  std::string out;
  bool in_param = false;
  for (char c : p) {
    if (c == '/') in_param = false;
    if (c == ';') in_param = true;
    if (!in_param) out += c;
  }
  return out;
}

// The path stays under prefix + "/v1/" as written and after every reading above.
void check_stays(const std::string& prefix, std::string_view path) {
  for (const std::string& variant : {std::string(path), decode(path), decode(decode(path)),
                                     strip_params(path), strip_params(decode(path))}) {
    auto full = prefix + variant;
    auto norm = remove_dot_segments(full);
    OB_FUZZ_CHECK(norm.starts_with(prefix + "/v1/"));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The fuzzer's bytes after "/v1/": the gateway only forwards paths under /v1/.
  std::string target = "/v1/";
  target.append(reinterpret_cast<const char*>(data), size);
  auto problem = ob::proxy::http::check_target(target);
  OB_FUZZ_CHECK(problem == ob::proxy::http::path_problem::none ||
                !ob::proxy::http::describe(problem).empty());
  if (problem != ob::proxy::http::path_problem::none) return 0;
  std::string_view path = target;
  if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  for (const std::string prefix : {"", "/openai", "/a/b"}) check_stays(prefix, path);
  // And the raw input as a whole target (it need not start with /v1/): accepted means origin form.
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  if (ob::proxy::http::check_target(raw) == ob::proxy::http::path_problem::none)
    OB_FUZZ_CHECK(!raw.empty() && raw.front() == '/');
  return 0;
}
