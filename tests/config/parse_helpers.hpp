// Shared helpers for the config parser tests.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "config/parse.hpp"

namespace ob::config::testing {

// An environment holding exactly `vars`.
inline env_lookup fake_env(std::map<std::string, std::string> vars = {}) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

inline parse_result parse_text(std::string_view text, env_lookup env = fake_env()) {
  return parse(text, env);
}

inline std::vector<std::string> lines(const parse_result& r, diagnostic::level lv) {
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics)
    if (d.severity == lv) out.push_back(d.to_string());
  return out;
}
inline std::vector<std::string> errors(const parse_result& r) {
  return lines(r, diagnostic::level::error);
}
inline std::vector<std::string> warnings(const parse_result& r) {
  return lines(r, diagnostic::level::warning);
}

// True if some diagnostic of that level has exactly `path` and a message containing `part`.
inline bool has(const parse_result& r, diagnostic::level lv, std::string_view path,
                std::string_view part) {
  for (const auto& d : r.diagnostics)
    if (d.severity == lv && d.path == path && d.message.find(part) != std::string::npos)
      return true;
  return false;
}
inline bool has_error(const parse_result& r, std::string_view path, std::string_view part = "") {
  return has(r, diagnostic::level::error, path, part);
}
inline bool has_warning(const parse_result& r, std::string_view path, std::string_view part = "") {
  return has(r, diagnostic::level::warning, path, part);
}

// Everything printed, for failure messages.
inline std::string dump(const parse_result& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.to_string() + "\n";
  return out;
}

// A valid file with `extra` spliced in as further top-level members ("" for none) and one
// provider whose members are `provider` (default: a complete one).
inline std::string doc(
    std::string_view extra = "",
    std::string_view provider =
        R"("group":"fast","name":"m","base":"https://api.example.com","key":"k")") {
  std::string out = R"({"providers":[{)" + std::string(provider) + R"(}],"security":["tok"])";
  if (!extra.empty()) out += "," + std::string(extra);
  return out + "}";
}

}  // namespace ob::config::testing
