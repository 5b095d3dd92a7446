#include "proxy/http/endpoints.hpp"

namespace ob::proxy::http {

std::string_view unroutable_family(std::string_view path) {
  static constexpr std::string_view families[] = {
      "files",   "uploads", "batches",       "fine_tuning", "vector_stores", "assistants",
      "threads", "evals",   "conversations", "containers",  "organization",  "realtime",
  };
  constexpr std::string_view v1 = "/v1/";
  if (path.size() <= v1.size() || path.compare(0, v1.size(), v1) != 0) return {};
  auto rest = path.substr(v1.size());
  for (auto f : families) {
    if (rest.size() < f.size() || rest.compare(0, f.size(), f) != 0) continue;
    if (rest.size() == f.size() || rest[f.size()] == '/') return f;
  }
  return {};
}

}  // namespace ob::proxy::http
