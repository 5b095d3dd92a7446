// Config text -> validated `config`, or every problem with its JSON path.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/schema.hpp"

namespace ob::config {

struct diagnostic {
  enum class level { warning, error };
  level severity = level::error;
  std::string path;               // e.g. "providers[2].base" ("" for the document itself)
  std::string message;            // e.g. "\"htp://x\" is not an http(s) URL"
  std::string to_string() const;  // "providers[2].base: ..." (warnings prefixed "warning: ")
};

struct parse_result {
  std::optional<config> cfg;            // set only when there is no error (warnings allowed)
  std::vector<diagnostic> diagnostics;  // errors and warnings, in document order
  bool ok() const { return cfg.has_value(); }
};

// Looks up an environment variable; returns nullopt when unset. Injectable for tests.
using env_lookup = std::function<std::optional<std::string>(std::string_view name)>;
env_lookup process_env();

// Parses and validates. A string value of exactly "${NAME}" in providers[].key or security[]
// is replaced by the environment variable NAME (an error if it is unset).
parse_result parse(std::string_view text, const env_lookup& env = process_env());

// Splits and checks a provider base URL; nullopt + message on error.
std::optional<base_url> parse_base_url(std::string_view base, std::string* error);

// Reads a file and parses it; a read failure is one diagnostic with an empty path.
parse_result load_file(const std::string& path, const env_lookup& env = process_env());

}  // namespace ob::config
