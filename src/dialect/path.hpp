// Where a request goes on a provider: the client's request target ("/v1/chat/completions?x=1")
// mapped onto the provider's base and API. Built once per target (make_route), applied per
// request with plain copies (no allocation, no search for pass-through targets).
//
// The rule (docs/CONFIGURATION.md, "Upstream path"):
//   api openai / anthropic
//     - base without a version segment in its path ("https://api.openai.com", "https://x/openai"):
//       base path + the client's target, as before: "/openai/v1/chat/completions";
//     - base whose path has a version segment ("v" + digits + optional letters/digits: "/v1",
//       "/v1beta/openai", "/openai/v1", "/api/v1"): the base names the API root, so the client
//       target's leading "/v1" is dropped: base "https://api.groq.com/openai/v1" sends
//       "/openai/v1/chat/completions" (no doubled "/v1").
//   api azure (base = the resource endpoint, no /openai in it)
//     - deployments API (default): "/openai/deployments/{name}" + target without "/v1", then
//       "api-version={api_version}" added to the query ('?' or '&'). The operator chose the
//       version the deployment supports: a client's own api-version is dropped (the client's
//       other query parameters are kept, in their order), so exactly one reaches Azure;
//     - v1 API (api_version "v1"): "/openai/v1" + target without "/v1", query unchanged.
// A target not starting with "/v1" (a health check path such as "/health") is appended as is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/schema.hpp"

namespace ob::dialect {

// Whether query parameter `param` ("name=value" or "name") is named `name` (lower case): its
// name compared without case, %XX escapes decoded ("API-Version", "api%2Dversion").
bool names_param(std::string_view param, std::string_view name);

struct route {
  std::string prefix;      // written first
  bool strip_v1 = false;   // drop the target's leading "/v1"
  std::string query;       // "api-version=..." appended to the query; "" = none
  std::string query_name;  // its name, "api-version": the client's own is dropped

  // The target's part that follows `prefix`.
  std::string_view rest(std::string_view target) const {
    if (strip_v1 && target.size() >= 3 && target.compare(0, 3, "/v1") == 0 &&
        (target.size() == 3 || target[3] == '/' || target[3] == '?'))
      return target.substr(3);
    return target;
  }
  // Upper bound of the mapped target's size.
  std::size_t max_size(std::string_view target) const {
    return prefix.size() + target.size() + 1 + query.size();
  }
  // The mapped target as pieces, out(std::string_view) for each in order (the exchange writes
  // them straight into its head buffer; map_path joins them). No allocation; without `query`
  // (every target but an Azure deployment) two pieces and no search.
  template <class Out>
  void write(std::string_view target, Out&& out) const {
    auto r = rest(target);
    out(std::string_view(prefix));
    if (query.empty()) {
      out(r);
      return;
    }
    auto q = r.find('?');
    out(r.substr(0, q));
    std::string_view sep = "?";
    if (q != std::string_view::npos) {
      // The client's parameters but its own `query_name`, each after '?' or '&' as before.
      auto params = r.substr(q + 1);
      for (;;) {
        auto amp = params.find('&');
        auto param = params.substr(0, amp);
        if (!names_param(param, query_name)) {
          out(sep);
          out(param);
          sep = "&";
        }
        if (amp == std::string_view::npos) break;
        params.remove_prefix(amp + 1);
      }
    }
    out(sep);
    out(std::string_view(query));
  }
};

// Whether a path segment is an API version: "v1", "v2", "v1beta", "v1beta1", "v2alpha".
bool is_version_segment(std::string_view segment);

// The route of one provider; nullopt + `error` (for providers[i].base) when its base cannot
// work with its api (an azure base that already names /openai/... or a version).
std::optional<route> make_route(const config::provider& p, std::string* error);

// The mapped target as a string (health checks, codecs, tests; the exchange writes the pieces
// straight into its head buffer instead).
std::string map_path(const route& r, std::string_view target);

// The target of an active health check (providers[].health_check.path), mapped like a request
// target, except that Azure's deployments API has no per-deployment model list: there the
// default "/v1/models" asks the resource's "/openai/models?api-version=...".
std::string map_check_path(const config::provider& p, const route& r, std::string_view path);

}  // namespace ob::dialect
