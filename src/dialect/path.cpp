#include "dialect/path.hpp"

namespace ob::dialect {

namespace {

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// Calls f(segment) for each non-empty segment of a path; stops when f returns true.
template <class F>
bool any_segment(std::string_view path, F f) {
  while (!path.empty()) {
    auto slash = path.find('/');
    auto seg = path.substr(0, slash);
    if (!seg.empty() && f(seg)) return true;
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return false;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool names_param(std::string_view param, std::string_view name) {
  std::size_t j = 0;
  for (std::size_t i = 0; i < param.size() && param[i] != '=';) {
    char c = param[i++];
    if (c == '%' && i + 1 < param.size() && hex_value(param[i]) >= 0 &&
        hex_value(param[i + 1]) >= 0) {
      c = static_cast<char>(hex_value(param[i]) * 16 + hex_value(param[i + 1]));
      i += 2;
    }
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (j == name.size() || c != name[j]) return false;
    ++j;
  }
  return j == name.size();
}

bool is_version_segment(std::string_view s) {
  if (s.size() < 2 || (s[0] != 'v' && s[0] != 'V') || s[1] < '0' || s[1] > '9') return false;
  std::size_t i = 2;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  for (; i < s.size(); ++i)
    if (!is_lower_alnum(s[i])) return false;
  return true;
}

std::optional<route> make_route(const config::provider& p, std::string* error) {
  const std::string& base_path = p.url.path_prefix;
  bool versioned = any_segment(base_path, is_version_segment);
  route r;
  if (p.api != config::provider_api::azure) {
    r.prefix = base_path;
    r.strip_v1 = versioned;
    return r;
  }
  if (versioned || any_segment(base_path, [](std::string_view s) {
        return iequals_ascii(s, "openai") || iequals_ascii(s, "deployments");
      })) {
    *error = "\"" + p.base +
             "\": for api \"azure\" the base is the resource endpoint (e.g. "
             "https://NAME.openai.azure.com) without /openai/...: the gateway adds "
             "/openai/deployments/{name}/... itself (api_version \"v1\" selects /openai/v1/...)";
    return std::nullopt;
  }
  r.strip_v1 = true;
  if (p.api_version == "v1") {
    r.prefix = base_path + "/openai/v1";
    return r;
  }
  r.prefix = base_path + "/openai/deployments/" + p.name;
  r.query_name = "api-version";
  r.query = r.query_name + "=";
  r.query += p.api_version.empty() ? config::default_azure_api_version : p.api_version;
  return r;
}

std::string map_path(const route& r, std::string_view target) {
  std::string out;
  out.reserve(r.max_size(target));
  r.write(target, [&](std::string_view piece) { out += piece; });
  return out;
}

std::string map_check_path(const config::provider& p, const route& r, std::string_view path) {
  if (p.api == config::provider_api::azure && !r.query.empty() && path == "/v1/models")
    return p.url.path_prefix + "/openai/models?" + r.query;
  return map_path(r, path);
}

}  // namespace ob::dialect
