// Private pieces of the config parser shared by parse.cpp and parse_detail.cpp: the
// diagnostics sink, the syntax pre-scan (line/column, duplicate keys) and address checks.
// Not part of the module's interface.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/parse.hpp"

namespace ob::config::detail {

// "a" + "b" -> "a.b"; "" + "b" -> "b".
inline std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

struct context {
  context(const env_lookup& e, std::vector<diagnostic>& o) : env(e), out(o) {}

  const env_lookup& env;
  std::vector<diagnostic>& out;
  bool failed = false;
  // Object path -> keys written more than once in it, found by scan_syntax (the DOM keeps
  // only the last value, so duplicates must be seen while parsing).
  std::map<std::string, std::vector<std::string>> duplicates;

  void error(std::string path, std::string message) {
    failed = true;
    out.push_back({diagnostic::level::error, std::move(path), std::move(message)});
  }
  void warn(std::string path, std::string message) {
    out.push_back({diagnostic::level::warning, std::move(path), std::move(message)});
  }
  // True if an error with exactly `path` was reported since out[since] (since = out.size()
  // taken before reading), for checks across fields that must skip values already refused.
  bool error_at(std::string_view path, std::size_t since) const {
    for (std::size_t i = since; i < out.size(); ++i)
      if (out[i].severity == diagnostic::level::error && out[i].path == path) return true;
    return false;
  }
  const std::vector<std::string>& duplicates_of(const std::string& path) const {
    static const std::vector<std::string> none;
    auto it = duplicates.find(path);
    return it == duplicates.end() ? none : it->second;
  }
};

// Checks that `text` is one well-formed JSON document and records duplicate keys in
// c.duplicates. On a syntax error adds one diagnostic with line and column, returns false.
bool scan_syntax(std::string_view text, context& c);

// "host:port", "[v6]:port" or ":port" with port 1-65535; false + reason otherwise.
bool check_listen(std::string_view text, std::string* error);

// Letters, digits and '_', not starting with a digit.
bool valid_env_name(std::string_view name);
// Whether a checked listen address binds only the loopback interface (127.0.0.0/8, [::1],
// localhost).
bool is_loopback_listen(std::string_view text);

}  // namespace ob::config::detail
