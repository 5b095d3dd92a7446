// Config parsing from text (src/config/parse.*). Invariants: no exception escapes (every input
// maps to diagnostics); the result is deterministic; an accepted config carries no error, a
// rejected one at least one; an accepted config is accepted again after a round trip through a
// JSON serializer (the same document in other bytes), with the same diagnostics.
#include <boost/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/parse.hpp"
#include "fuzz/split.hpp"

namespace {

using namespace ob::config;

std::optional<std::string> fake_env(std::string_view name) {
  if (name.empty() || name[0] == 'U') return std::nullopt;  // some variables are unset
  return "value-of-" + std::string(name);
}

std::vector<std::string> texts(const parse_result& r) {
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics) out.push_back(d.to_string());
  return out;
}

parse_result parse_no_throw(std::string_view text) {
  try {
    return parse(text, fake_env);
  } catch (...) {
    ob::fuzz::fail("config::parse threw");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const parse_result r = parse_no_throw(text);
  bool has_error = false;
  for (const auto& d : r.diagnostics) has_error |= d.severity == diagnostic::level::error;
  OB_FUZZ_CHECK(r.ok() == !has_error);
  const parse_result again = parse_no_throw(text);
  OB_FUZZ_CHECK(again.ok() == r.ok() && texts(again) == texts(r));
  if (!r.ok()) return 0;

  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) return 0;  // accepted by a more lenient reader (comments, ...): nothing to compare
  const std::string reserialized = boost::json::serialize(v);
  const parse_result round = parse_no_throw(reserialized);
  OB_FUZZ_CHECK(round.ok());
  OB_FUZZ_CHECK(round.cfg->providers.size() == r.cfg->providers.size());
  OB_FUZZ_CHECK(round.cfg->security == r.cfg->security);
  OB_FUZZ_CHECK(round.cfg->listen == r.cfg->listen);
  return 0;
}
