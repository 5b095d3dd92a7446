// Config text -> validated config. Walks the Boost.JSON DOM object by object, in document
// order, dispatching each key to a small reader; unknown keys warn, wrong types and invalid
// values are errors, and every problem is collected (the user fixes a file in one go).
#include "config/parse.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <unordered_map>

#include <boost/json.hpp>

#include "config/parse_detail.hpp"
#include "config/parse_keys.hpp"
#include "config/parse_read.hpp"
#include "dialect/codec.hpp"
#include "dialect/headers.hpp"
#include "dialect/path.hpp"

namespace ob::config {
namespace {

namespace json = boost::json;
using namespace detail;

// ---- providers ------------------------------------------------------------------------------

void read_base(context& c, const json::value& v, const std::string& path, provider& p) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  p.base = std::string(*s);
  std::string err;
  auto url = parse_base_url(*s, &err);
  if (!url) return c.error(path, err);
  p.url = std::move(*url);
}

void read_key(context& c, const json::value& v, const std::string& path, provider& p) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  auto key = expand_env(c, *s, path);
  if (!key) return;
  // The key goes verbatim into an upstream header line: CR/LF would inject headers.
  if (has_control_char(*key)) return c.error(path, "must not contain control characters");
  if (key->empty()) c.warn(path, "empty: requests to this provider carry no Authorization header");
  p.key = std::move(*key);
}

// Per-provider "timeouts": only the upstream ones; unset keys fall back to the global value.
constexpr field<provider_timeouts> provider_timeout_fields[] = {
    {"connect", read_seconds<&provider_timeouts::connect>},
    {"first_byte", read_seconds<&provider_timeouts::first_byte>},
    {"idle", read_seconds<&provider_timeouts::idle>},
    {"total", read_seconds<&provider_timeouts::total>},
    {"pool_idle", read_seconds<&provider_timeouts::pool_idle>},
};

void read_provider_timeouts(context& c, const json::value& v, const std::string& path,
                            provider& p) {
  if (const auto* o = as_object(c, v, path))
    walk<provider_timeouts>(c, *o, path, provider_timeout_fields, p.timeouts);
}

// "health_check" object, as read before the cross-field check; `timeout` remembers whether it
// was written (its default depends on the interval).
struct health_check_draft {
  struct health_check hc;
  bool interval_ok = true;
  bool timeout_set = false;
  bool timeout_ok = true;
};

constexpr double max_check_interval = 24 * 3600;

constexpr field<health_check_draft> health_check_fields[] = {
    {"enabled", [](context& c, const json::value& v, const std::string& path,
                   health_check_draft& d) { read_bool(c, v, path, d.hc.enabled); }},
    {"interval",
     [](context& c, const json::value& v, const std::string& path, health_check_draft& d) {
       auto s = as_number_in(c, v, path, 1, max_check_interval, ">= 1 and <= 86400 seconds");
       if (s) d.hc.interval = to_millis(*s);
       d.interval_ok = s.has_value();
     }},
    {"timeout",
     [](context& c, const json::value& v, const std::string& path, health_check_draft& d) {
       d.timeout_set = true;
       d.timeout_ok = false;
       if (!v.is_number()) return type_error(c, path, "a number of seconds", v);
       double s = v.to_number<double>();
       if (!(s > 0) || s >= max_check_interval)
         return c.error(path, "must be > 0 and less than the interval, got " + json::serialize(v));
       d.hc.timeout = to_millis(s);
       d.timeout_ok = true;
     }},
    {"path",
     [](context& c, const json::value& v, const std::string& path, health_check_draft& d) {
       const auto* s = as_string(c, v, path);
       if (!s) return;
       if (s->empty() || s->front() != '/')
         return c.error(path, json::serialize(*s) + " must start with \"/\"");
       for (unsigned char ch : *s)
         if (ch <= 0x20 || ch == 0x7f)
           return c.error(path,
                          json::serialize(*s) + " must not contain spaces or control characters");
       d.hc.path = std::string(*s);
     }},
};

// An object turns the check on (unless it says "enabled": false); `true` turns it on with
// the defaults; `false` leaves it off.
void read_health_check(context& c, const json::value& v, const std::string& path, provider& p) {
  if (const bool* b = v.if_bool()) {
    p.health_check = {};
    p.health_check.enabled = *b;
    return;
  }
  const auto* o = v.if_object();
  if (!o) return type_error(c, path, "an object or a boolean", v);
  health_check_draft d;
  d.hc.enabled = true;
  walk<health_check_draft>(c, *o, path, health_check_fields, d);
  if (!d.timeout_set) {
    // Default 5 s, but always less than the interval: half of it for short intervals.
    d.hc.timeout = std::min(d.hc.timeout, d.hc.interval / 2);
  } else if (d.timeout_ok && d.interval_ok && d.hc.timeout >= d.hc.interval) {
    c.error(join(path, "timeout"), "must be less than the interval (" +
                                       seconds_text(d.hc.interval) + "), got " +
                                       seconds_text(d.hc.timeout));
  }
  p.health_check = std::move(d.hc);
}

// ---- provider dialect: api, auth, api_version, headers --------------------------------------

void read_api(context& c, const json::value& v, const std::string& path, provider& p) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  if (*s == "openai")
    p.api = provider_api::openai;
  else if (*s == "azure")
    p.api = provider_api::azure;
  else if (*s == "anthropic")
    p.api = provider_api::anthropic;
  else
    c.error(path, json::serialize(*s) + " is not a known api (openai, azure, anthropic)");
}

void read_auth(context& c, const json::value& v, const std::string& path, provider& p) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  if (*s == "bearer")
    p.auth = auth_mode::bearer;
  else if (*s == "api-key")
    p.auth = auth_mode::api_key;
  else if (*s == "x-api-key")
    p.auth = auth_mode::x_api_key;
  else if (*s == "none")
    p.auth = auth_mode::none;
  else
    c.error(path,
            json::serialize(*s) + " is not a known auth mode (bearer, api-key, x-api-key, none)");
}

void read_api_version(context& c, const json::value& v, const std::string& path, provider& p) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  bool ok = !s->empty() && s->size() <= 64;
  for (char ch : *s)
    ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                ch == '-' || ch == '.' || ch == '_');
  if (!ok)
    return c.error(path, json::serialize(*s) +
                             " is not an API version (e.g. \"2024-10-21\", "
                             "\"2025-01-01-preview\" or \"v1\")");
  p.api_version = std::string(*s);
}

void read_max_tokens_field(context& c, const json::value& v, const std::string& path, provider& p) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  if (*s == "max_completion_tokens")
    p.max_completion_tokens = true;
  else if (*s == "max_tokens")
    p.max_completion_tokens = false;
  else
    c.error(path, json::serialize(*s) + " is not \"max_tokens\" or \"max_completion_tokens\"");
}

bool is_tchar(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         std::strchr("!#$%&'*+-.^_`|~", ch) != nullptr;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (auto& ch : out)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch + 32);
  return out;
}

// Headers the gateway owns: framing and hop-by-hop ones (a wrong value breaks the exchange or
// the connection), and those it sets itself on every request.
const char* refused_header_reason(std::string_view lower) {
  for (const char* n : {"host", "content-length", "transfer-encoding", "connection", "keep-alive",
                        "proxy-connection", "te", "trailer", "upgrade", "expect"})
    if (lower == n) return "is a framing or hop-by-hop header the gateway sets itself";
  if (lower == "accept-encoding")
    return "is set by the gateway (identity: it reads and rewrites answers)";
  if (lower == "x-request-id") return "is set by the gateway (the request's id)";
  return nullptr;
}

void read_headers(context& c, const json::value& v, const std::string& path, provider& p) {
  const auto* o = as_object(c, v, path);
  if (!o) return;
  for (const auto& key : c.duplicates_of(path))
    c.warn(join(path, key), "key appears more than once; the last value wins");
  std::vector<std::string> seen;
  for (const auto& kv : *o) {
    std::string name(kv.key());
    std::string sub = join(path, name);
    bool token = !name.empty();
    for (char ch : name) token = token && is_tchar(ch);
    if (!token) {
      c.error(sub, "is not a valid header name");
      continue;
    }
    auto lower = lower_ascii(name);
    if (const char* why = refused_header_reason(lower)) {
      c.error(sub, std::string("cannot be configured: ") + name + " " + why);
      continue;
    }
    if (std::find(seen.begin(), seen.end(), lower) != seen.end()) {
      c.error(sub, "is configured twice (header names are case-insensitive)");
      continue;
    }
    seen.push_back(lower);
    const auto* s = as_string(c, kv.value(), sub);
    if (!s) continue;
    auto value = expand_env(c, *s, sub);
    if (!value) continue;
    // The value goes verbatim into an upstream header line: CR/LF would inject headers.
    if (has_control_char(*value)) {
      c.error(sub, "must not contain control characters");
      continue;
    }
    p.headers.emplace_back(std::move(name), std::move(*value));
  }
}

// Checks between a provider's keys, once all are read.
void check_dialect(context& c, const json::object& o, const std::string& path, provider& p) {
  if (!o.contains("auth"))
    p.auth = p.api == provider_api::azure       ? auth_mode::api_key
             : p.api == provider_api::anthropic ? auth_mode::x_api_key
                                                : auth_mode::bearer;
  if (p.api == provider_api::anthropic && !dialect::codec_for(p.api))
    c.error(join(path, "api"),
            "\"anthropic\" is not available in this build yet (its translation codec is not "
            "wired in); use the provider's OpenAI-compatible endpoint with api \"openai\"");
  if (o.contains("api_version") && p.api != provider_api::azure)
    c.error(join(path, "api_version"), "only applies to api \"azure\"");
  if (o.contains("max_tokens_field") && p.api == provider_api::anthropic)
    c.error(join(path, "max_tokens_field"),
            "only applies to OpenAI-API targets (Anthropic's API has max_tokens only)");
  // OpenAI's own API takes max_completion_tokens for every chat model (max_tokens is deprecated
  // there and refused by its reasoning models); OpenAI-compatible servers read max_tokens.
  if (!o.contains("max_tokens_field") && p.api == provider_api::openai)
    p.max_completion_tokens = lower_ascii(p.url.host) == "api.openai.com";
  if (p.api == provider_api::azure) {
    // The deployment name goes into the request path as is.
    bool ok = !p.name.empty();
    for (char ch : p.name)
      ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.');
    if (!p.name.empty() && !ok)
      c.error(join(path, "name"),
              json::serialize(json::string_view(p.name)) +
                  " is not an Azure deployment name (letters, digits, '-', '_', '.')");
  }
  if (!p.url.host.empty()) {
    std::string err;
    if (!dialect::make_route(p, &err)) c.error(join(path, "base"), err);
  }
  if (p.auth == auth_mode::none && !p.key.empty())
    c.warn(join(path, "key"), "not sent: auth is \"none\"");
  if (p.auth != auth_mode::none && !p.key.empty()) {
    auto auth_name = lower_ascii(dialect::auth_header_name(p.auth));
    for (const auto& [name, value] : p.headers)
      if (lower_ascii(name) == auth_name)
        c.error(join(join(path, "headers"), name),
                "conflicts with the key, which auth sends in " +
                    std::string(dialect::auth_header_name(p.auth)) +
                    "; set \"auth\": \"none\" to send your own");
  }
}

constexpr field<provider> provider_fields[] = {
    {"group", [](context& c, const json::value& v, const std::string& path,
                 provider& p) { read_required_text(c, v, path, p.group); }},
    {"name", [](context& c, const json::value& v, const std::string& path,
                provider& p) { read_required_text(c, v, path, p.name); }},
    {"base", read_base},
    {"key", read_key},
    {"weight", read_integer<&provider::weight, 1, 1'000'000>},
    {"timeouts", read_provider_timeouts},
    {"health_check", read_health_check},
    {"limits", read_provider_limits},
    {"price", read_provider_price},
    {"api", read_api},
    {"auth", read_auth},
    {"api_version", read_api_version},
    {"headers", read_headers},
    {"max_tokens_field", read_max_tokens_field},
};

std::optional<provider> read_provider(context& c, const json::value& v, const std::string& path) {
  const auto* o = as_object(c, v, path);
  if (!o) return std::nullopt;
  provider p;
  walk<provider>(c, *o, path, provider_fields, p);
  for (const char* k : {"group", "name", "base"})
    if (!o->contains(k)) c.error(join(path, k), "is required");
  check_dialect(c, *o, path, p);
  if (!o->contains("key"))
    c.warn(join(path, "key"), "missing: requests to this provider carry no Authorization header");
  return p;
}

// The same entry twice silently doubles its share of traffic; almost always a paste mistake.
void warn_duplicate_providers(context& c, const std::vector<provider>& ps) {
  std::unordered_map<std::string, std::size_t> first_seen;
  first_seen.reserve(ps.size());
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const auto& p = ps[i];
    std::string id = p.group + '\0' + p.name + '\0' + p.base + '\0' + p.key;
    auto [it, inserted] = first_seen.emplace(std::move(id), i);
    if (!inserted)
      c.warn(index_path("providers", i), "same group, name, base and key as providers[" +
                                             std::to_string(it->second) +
                                             "] (duplicate entry gets twice the traffic)");
  }
}

void read_providers(context& c, const json::value& v, const std::string& path, config& cfg) {
  const auto* a = v.if_array();
  if (!a) return type_error(c, path, "an array of provider objects", v);
  if (a->empty()) return c.error(path, "must list at least one provider");
  cfg.providers.reserve(a->size());
  for (std::size_t i = 0; i < a->size(); ++i)
    if (auto p = read_provider(c, (*a)[i], index_path(path, i))) cfg.providers.push_back(*p);
  warn_duplicate_providers(c, cfg.providers);
}

// ---- security -------------------------------------------------------------------------------

void read_token(context& c, const json::value& v, const std::string& path, config& cfg) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  auto token = expand_env(c, *s, path);
  if (!token) return;
  if (token->empty()) return c.error(path, "must not be empty");
  // A client's "Bearer <token>" is trimmed and cannot carry control characters.
  if (has_control_char(*token) || token->front() == ' ' || token->back() == ' ')
    c.warn(path, "starts/ends with a space or contains a control character: no client can send it");
  cfg.security.push_back(std::move(*token));
}

void read_security(context& c, const json::value& v, const std::string& path, config& cfg) {
  const auto* a = v.if_array();
  if (!a) return type_error(c, path, "an array of client token strings", v);
  // An empty list would lock every client out (or, read loosely, turn authentication off).
  if (a->empty()) return c.error(path, "must list at least one client token");
  for (std::size_t i = 0; i < a->size(); ++i) read_token(c, (*a)[i], index_path(path, i), cfg);
}

// ---- extensions -----------------------------------------------------------------------------

void read_listen(context& c, const json::value& v, const std::string& path, config& cfg) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  std::string err;
  if (!detail::check_listen(*s, &err)) return c.error(path, json::serialize(*s) + ": " + err);
  cfg.listen = std::string(*s);
  cfg.listen_set = true;
}

void read_workers(context& c, const json::value& v, const std::string& path, config& cfg) {
  if (auto n = as_integer(c, v, path, 0, 256)) cfg.workers = static_cast<unsigned>(*n);
}

constexpr std::uint64_t kib = 1024, mib = kib * kib, gib = mib * kib;
constexpr field<limits> limit_fields[] = {
    {"max_header_bytes", read_integer<&limits::max_header_bytes, kib, mib>},
    {"max_body_bytes", read_integer<&limits::max_body_bytes, 1, 4 * gib>},
    {"max_response_bytes", read_integer<&limits::max_response_bytes, 1, 4 * gib>},
    {"default_output_tokens", read_integer<&limits::default_output_tokens, 1, 10'000'000>},
    {"max_wait", read_wait<&limits::max_wait>},
    {"max_waiting", read_integer<&limits::max_waiting, 0, 1'000'000>},
};

constexpr field<timeouts> timeout_fields[] = {
    {"connect", read_seconds<&timeouts::connect>},
    {"first_byte", read_seconds<&timeouts::first_byte>},
    {"idle", read_seconds<&timeouts::idle>},
    {"total", read_seconds<&timeouts::total>},
    {"pool_idle", read_seconds<&timeouts::pool_idle>},
    {"stream_hold", read_seconds<&timeouts::stream_hold>},
    {"client_header", read_seconds<&timeouts::client_header>},
    {"client_body", read_seconds<&timeouts::client_body>},
    {"client_body_total", read_seconds<&timeouts::client_body_total>},
    {"keepalive", read_seconds<&timeouts::keepalive>},
    {"shutdown_grace", read_seconds<&timeouts::shutdown_grace>},
};

void read_limits(context& c, const json::value& v, const std::string& path, config& cfg) {
  if (const auto* o = as_object(c, v, path)) walk<limits>(c, *o, path, limit_fields, cfg.limits);
}

void read_timeouts(context& c, const json::value& v, const std::string& path, config& cfg) {
  if (const auto* o = as_object(c, v, path))
    walk<timeouts>(c, *o, path, timeout_fields, cfg.timeouts);
}

// ---- failover: groups, health, retry ---------------------------------------------------------

constexpr std::string_view policy_names[] = {"round_robin", "weighted", "least_inflight",
                                             "latency"};

void read_policy(context& c, const json::value& v, const std::string& path, group_options& g) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  for (auto name : policy_names)
    if (*s == name) {
      g.policy = std::string(name);
      return;
    }
  std::string allowed;
  for (auto name : policy_names)
    allowed += (allowed.empty() ? "\"" : ", \"") + std::string(name) + "\"";
  c.error(path, "must be one of " + allowed + ", got " + json::serialize(*s));
}

constexpr field<group_options> group_fields[] = {
    {"policy", read_policy},
    {"attempts", read_integer<&group_options::attempts, 0, 100>},
};

// {"<group>": {...}}: the keys are group names, so the object is walked by hand. Whether each
// names a group of `providers` is checked once the whole file is read (check_group_names).
void read_groups(context& c, const json::value& v, const std::string& path, config& cfg) {
  const auto* o = v.if_object();
  if (!o) return type_error(c, path, "an object of group name -> options", v);
  for (const auto& key : c.duplicates_of(path))
    c.warn(join(path, key), "key appears more than once; the last value wins");
  for (const auto& kv : *o) {
    std::string sub = join(path, kv.key());
    const auto* g = as_object(c, kv.value(), sub);
    if (!g) continue;
    group_options opts;
    walk<group_options>(c, *g, sub, group_fields, opts);
    cfg.groups[std::string(kv.key())] = std::move(opts);
  }
}

// Options for a group no provider belongs to would silently do nothing; usually a typo.
void check_group_names(context& c, config& cfg) {
  if (cfg.providers.empty()) return;  // already an error; every name would look unknown
  for (auto it = cfg.groups.begin(); it != cfg.groups.end();) {
    bool known = std::any_of(cfg.providers.begin(), cfg.providers.end(),
                             [&](const provider& p) { return p.group == it->first; });
    if (known) {
      ++it;
      continue;
    }
    c.warn(join("groups", it->first), "no provider has this group (ignored)");
    it = cfg.groups.erase(it);
  }
}

void read_error_ratio(context& c, const json::value& v, const std::string& path, health_config& h) {
  auto d = as_number(c, v, path);
  if (!d) return;
  if (!(*d > 0) || *d > 1) return c.error(path, "must be > 0 and <= 1, got " + json::serialize(v));
  h.error_ratio = *d;
}

constexpr field<health_config> health_fields[] = {
    {"consecutive_failures", read_integer<&health_config::consecutive_failures, 1, 1000>},
    {"error_ratio", read_error_ratio},
    {"min_requests", read_integer<&health_config::min_requests, 1, 1'000'000>},
    {"window", read_seconds<&health_config::window>},
    {"base_ejection", read_seconds<&health_config::base_ejection>},
    {"max_ejection", read_seconds<&health_config::max_ejection>},
};

void read_health(context& c, const json::value& v, const std::string& path, config& cfg) {
  const auto* o = as_object(c, v, path);
  if (!o) return;
  std::size_t before = c.out.size();
  walk<health_config>(c, *o, path, health_fields, cfg.health);
  // Compare only values that were read (or defaulted) without error; blame the key written.
  std::string base = join(path, "base_ejection"), max = join(path, "max_ejection");
  if (c.error_at(base, before) || c.error_at(max, before)) return;
  const auto& h = cfg.health;
  if (h.base_ejection <= h.max_ejection) return;
  if (o->contains("base_ejection"))
    c.error(base, "must be <= max_ejection (" + seconds_text(h.max_ejection) + "), got " +
                      seconds_text(h.base_ejection));
  else
    c.error(max, "must be >= base_ejection (" + seconds_text(h.base_ejection) + "), got " +
                     seconds_text(h.max_ejection));
}

constexpr field<retry_config> retry_fields[] = {
    {"budget_ratio",
     [](context& c, const json::value& v, const std::string& path, retry_config& r) {
       if (auto d = as_number_in(c, v, path, 0, 10, ">= 0 and <= 10")) r.budget_ratio = *d;
     }},
    {"budget_min_per_second",
     [](context& c, const json::value& v, const std::string& path, retry_config& r) {
       if (auto d = as_number_in(c, v, path, 0, 1e6, ">= 0 and <= 1000000"))
         r.budget_min_per_second = *d;
     }},
};

void read_retry(context& c, const json::value& v, const std::string& path, config& cfg) {
  if (const auto* o = as_object(c, v, path))
    walk<retry_config>(c, *o, path, retry_fields, cfg.retry);
}

// ---- log ------------------------------------------------------------------------------------

// One of `names` (in the enum's order) -> that enumerator.
template <class E, std::size_t N>
void read_choice(context& c, const json::value& v, const std::string& path,
                 const std::string_view (&names)[N], E& out) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  for (std::size_t i = 0; i < N; ++i)
    if (*s == names[i]) {
      out = static_cast<E>(i);
      return;
    }
  std::string allowed;
  for (auto name : names) allowed += (allowed.empty() ? "\"" : ", \"") + std::string(name) + "\"";
  c.error(path, "must be one of " + allowed + ", got " + json::serialize(*s));
}

constexpr std::string_view log_format_names[] = {"text", "json"};
constexpr std::string_view log_level_names[] = {"debug", "info", "warn", "error"};
constexpr std::string_view log_access_names[] = {"all", "errors", "off"};

constexpr field<log_config> log_fields[] = {
    {"format", [](context& c, const json::value& v, const std::string& path,
                  log_config& l) { read_choice(c, v, path, log_format_names, l.format); }},
    {"level", [](context& c, const json::value& v, const std::string& path,
                 log_config& l) { read_choice(c, v, path, log_level_names, l.level); }},
    {"access", [](context& c, const json::value& v, const std::string& path,
                  log_config& l) { read_choice(c, v, path, log_access_names, l.access); }},
    {"file",
     [](context& c, const json::value& v, const std::string& path, log_config& l) {
       const auto* s = as_string(c, v, path);
       if (!s) return;
       if (s->empty()) return c.error(path, "must not be empty (leave the key out for stderr)");
       if (has_control_char(*s)) return c.error(path, "must not contain control characters");
       if (s->front() != '/')
         return c.error(path, json::serialize(*s) + " must be an absolute path");
       if (s->back() == '/') return c.error(path, json::serialize(*s) + " names a directory");
       l.file = std::string(*s);
     }},
};

void read_log(context& c, const json::value& v, const std::string& path, config& cfg) {
  if (const auto* o = as_object(c, v, path)) walk<log_config>(c, *o, path, log_fields, cfg.log);
}

// ---- answer headers ---------------------------------------------------------------------------

constexpr field<header_options> header_fields[] = {
    {"expose_routing", [](context& c, const json::value& v, const std::string& path,
                          header_options& h) { read_bool(c, v, path, h.expose_routing); }},
    {"server_timing", [](context& c, const json::value& v, const std::string& path,
                         header_options& h) { read_bool(c, v, path, h.server_timing); }},
    {"request_id", [](context& c, const json::value& v, const std::string& path,
                      header_options& h) { read_bool(c, v, path, h.request_id); }},
};

void read_headers(context& c, const json::value& v, const std::string& path, config& cfg) {
  if (const auto* o = as_object(c, v, path))
    walk<header_options>(c, *o, path, header_fields, cfg.headers);
}

// ---- admin and metrics --------------------------------------------------------------------

void read_admin_listen(context& c, const json::value& v, const std::string& path, admin_config& a) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  std::string err;
  if (!detail::check_listen(*s, &err)) return c.error(path, json::serialize(*s) + ": " + err);
  a.listen = std::string(*s);
}

void read_admin_token(context& c, const json::value& v, const std::string& path, admin_config& a) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  auto token = expand_env(c, *s, path);
  if (!token) return;
  if (token->empty()) return c.error(path, "must not be empty (leave the key out for no token)");
  if (has_control_char(*token)) return c.error(path, "must not contain control characters");
  a.token = std::move(*token);
}

constexpr field<admin_config> admin_fields[] = {
    {"listen", read_admin_listen},
    {"token", read_admin_token},
};

void read_admin(context& c, const json::value& v, const std::string& path, config& cfg) {
  if (v.is_bool()) {
    cfg.admin.enabled = v.get_bool();
    return;
  }
  const auto* o = v.if_object();
  if (!o) return type_error(c, path, "an object or false", v);
  walk<admin_config>(c, *o, path, admin_fields, cfg.admin);
  if (!cfg.admin.token.empty() || detail::is_loopback_listen(cfg.admin.listen)) return;
  c.error(join(path, "listen"),
          json::serialize(json::string(cfg.admin.listen)) +
              " is not a loopback address: set admin.token so the admin API is not open to "
              "anyone who can reach it");
}

constexpr field<metrics_config> metrics_fields[] = {
    {"max_clients", read_integer<&metrics_config::max_clients, 1, 100000>},
    {"stream_usage",
     [](context& c, const json::value& v, const std::string& path, metrics_config& m) {
       if (!v.is_bool()) return type_error(c, path, "a boolean", v);
       m.stream_usage = v.get_bool();
     }},
};

void read_metrics(context& c, const json::value& v, const std::string& path, config& cfg) {
  if (const auto* o = as_object(c, v, path))
    walk<metrics_config>(c, *o, path, metrics_fields, cfg.metrics);
}

// ---- tls ----------------------------------------------------------------------------------

// A file path: a non-empty string without control characters. Whether the file can be read
// is checked when it is loaded (start-up and every reload), where the error names the key too.
template <std::string tls_config::*member>
void read_tls_path(context& c, const json::value& v, const std::string& path, tls_config& t) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  if (s->empty()) return c.error(path, "must be a file path, not empty");
  if (has_control_char(*s)) return c.error(path, "must not contain control characters");
  t.*member = std::string(*s);
}

void read_tls_listen(context& c, const json::value& v, const std::string& path, tls_config& t) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  std::string err;
  if (!detail::check_listen(*s, &err)) return c.error(path, json::serialize(*s) + ": " + err);
  t.listen = std::string(*s);
}

constexpr field<tls_config> tls_fields[] = {
    {"listen", read_tls_listen},
    {"cert", read_tls_path<&tls_config::cert>},
    {"key", read_tls_path<&tls_config::key>},
    {"client_ca", read_tls_path<&tls_config::client_ca>},
    {"http2",
     [](context& c, const json::value& v, const std::string& path, tls_config& t) {
       if (!v.is_bool()) return type_error(c, path, "a boolean", v);
       t.http2 = v.get_bool();
     }},
    {"http2_max_concurrent_streams",
     [](context& c, const json::value& v, const std::string& path, tls_config& t) {
       if (auto n = as_integer(c, v, path, 1, 1000))
         t.http2_max_concurrent_streams = static_cast<std::uint32_t>(*n);
     }},
    {"http2_connection_body_bytes",
     [](context& c, const json::value& v, const std::string& path, tls_config& t) {
       if (auto n = as_integer(c, v, path, 1024, std::uint64_t(4) << 30))
         t.http2_connection_body_bytes = static_cast<std::size_t>(*n);
     }},
};

void read_tls(context& c, const json::value& v, const std::string& path, config& cfg) {
  const auto* o = as_object(c, v, path);
  if (!o) return;
  cfg.tls.enabled = true;
  walk<tls_config>(c, *o, path, tls_fields, cfg.tls);
  for (const char* k : {"cert", "key"})
    if (!o->contains(k)) c.error(join(path, k), "is required (a PEM file path)");
}

// ---- state (shared limits in Redis, usage ledger) ------------------------------------------

// "50ms", "1.5s" or a number of seconds, within [lo, hi] ms.
std::optional<millis> read_state_duration(context& c, const json::value& v, const std::string& path,
                                          double lo, double hi, const char* range) {
  double ms = -1;
  if (v.is_number()) {
    ms = v.to_number<double>() * 1000;
  } else if (const auto* t = v.if_string()) {
    std::string_view text(*t);
    double scale = 0;
    if (text.ends_with("ms"))
      scale = 1, text.remove_suffix(2);
    else if (text.ends_with("s"))
      scale = 1000, text.remove_suffix(1);
    double n = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (scale > 0 && ec == std::errc{} && p == text.data() + text.size() && !text.empty())
      ms = n * scale;
    else {
      c.error(path, json::serialize(v) + ": expected a duration like \"50ms\" or \"1s\"");
      return std::nullopt;
    }
  } else {
    type_error(c, path, "a duration (\"50ms\", \"1s\" or seconds)", v);
    return std::nullopt;
  }
  if (!(ms >= lo) || ms > hi) {
    c.error(path, std::string("must be between ") + range + ", got " + json::serialize(v));
    return std::nullopt;
  }
  return millis(static_cast<millis::rep>(std::ceil(ms)));
}

void read_state_timeout(context& c, const json::value& v, const std::string& path,
                        state_config& s) {
  if (auto d = read_state_duration(c, v, path, 1, 60'000, "1ms and 60s")) s.timeout = *d;
}

// How long a concurrency lease outlives a holder that stopped renewing it (a dead gateway).
void read_state_lease_ttl(context& c, const json::value& v, const std::string& path,
                          state_config& s) {
  if (auto d = read_state_duration(c, v, path, 1'000, 3'600'000, "1s and 1h")) s.lease_ttl = *d;
}

constexpr field<state_config> state_fields[] = {
    {"path",
     [](context& c, const json::value& v, const std::string& path, state_config& s) {
       const auto* t = as_string(c, v, path);
       if (!t) return;
       if (has_control_char(*t)) return c.error(path, "must not contain control characters");
       s.path = std::string(*t);
     }},
    {"redis",
     [](context& c, const json::value& v, const std::string& path, state_config& s) {
       const auto* t = as_string(c, v, path);
       if (!t) return;
       auto text = expand_env(c, *t, path);
       if (!text) return;
       if (text->empty()) return;  // "" = no Redis
       std::string err;
       auto u = parse_redis_url(*text, &err);
       if (!u) return c.error(path, "the URL " + err);
       s.redis = std::move(*u);
       s.redis_text = *t;  // before ${ENV} expansion
     }},
    {"timeout", read_state_timeout},
    {"lease_ttl", read_state_lease_ttl},
    {"on_failure",
     [](context& c, const json::value& v, const std::string& path, state_config& s) {
       const auto* t = as_string(c, v, path);
       if (!t) return;
       if (*t == "local")
         s.on_failure = state_config::failure::local;
       else if (*t == "deny")
         s.on_failure = state_config::failure::deny;
       else
         c.error(path, json::serialize(*t) + ": expected \"local\" or \"deny\"");
     }},
    {"instances", read_integer<&state_config::instances, 1, 10000>},
    {"prefix",
     [](context& c, const json::value& v, const std::string& path, state_config& s) {
       const auto* t = as_string(c, v, path);
       if (!t) return;
       if (t->size() > 64) return c.error(path, "must be at most 64 bytes");
       for (char ch : *t)
         if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f || ch == '{' || ch == '}')
           return c.error(path,
                          "must not contain spaces, control characters, '{' or '}' "
                          "(Redis Cluster hash tags follow it)");
       s.prefix = std::string(*t);
     }},
    {"cluster",
     [](context& c, const json::value& v, const std::string& path, state_config& s) {
       if (!v.is_bool()) return type_error(c, path, "a boolean", v);
       s.cluster = v.get_bool();
     }},
};

void read_state(context& c, const json::value& v, const std::string& path, config& cfg) {
  const auto* o = as_object(c, v, path);
  if (!o) return;
  cfg.state.enabled = true;
  walk<state_config>(c, *o, path, state_fields, cfg.state);
  if (cfg.state.cluster) {
    if (!cfg.state.redis)
      c.warn(join(path, "cluster"), "has no effect without state.redis");
    else if (cfg.state.redis->db != 0)
      c.error(join(path, "redis"),
              "must use database 0 with state.cluster: a Redis Cluster has only database 0, "
              "got /" +
                  std::to_string(cfg.state.redis->db));
  }
}

// ---- end state -------------------------------------------------------------------------------

constexpr field<config> root_fields[] = {
    {"providers", read_providers},
    {"security", read_security},
    {"listen", read_listen},
    {"workers", read_workers},
    {"limits", read_limits},
    {"timeouts", read_timeouts},
    {"groups", read_groups},
    {"health", read_health},
    {"retry", read_retry},
    {"log", read_log},
    {"headers", read_headers},
    {"admin", read_admin},
    {"metrics", read_metrics},
    {"keys", read_keys},
    {"tls", read_tls},
    {"state", read_state},
};

config read_root(context& c, const json::value& root) {
  config cfg;
  const auto* o = root.if_object();
  if (!o) {
    c.error("", "the document must be a JSON object, got " + kind_name(root));
    return cfg;
  }
  walk<config>(c, *o, "", root_fields, cfg);
  if (!o->contains("providers")) c.error("providers", "is required");
  if (!o->contains("security") && !o->contains("keys"))
    c.error("security", "is required (or \"keys\")");
  check_group_names(c, cfg);
  if (!c.failed) finish_keys(c, cfg);
  return cfg;
}

parse_result parse_unguarded(std::string_view text, const env_lookup& env) {
  parse_result result;
  context c{env, result.diagnostics};
  if (!detail::scan_syntax(text, c)) return result;
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) {  // scan_syntax accepted it, so this is unexpected; still never throw
    c.error("", "invalid JSON: " + ec.message());
    return result;
  }
  config cfg = read_root(c, root);
  if (!c.failed) result.cfg = std::move(cfg);
  return result;
}

}  // namespace

std::string diagnostic::to_string() const {
  std::string out = severity == level::warning ? "warning: " : "";
  if (!path.empty()) out += path + ": ";
  return out + message;
}

env_lookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

parse_result parse(std::string_view text, const env_lookup& env) {
  try {
    return parse_unguarded(text, env);
  } catch (const std::exception& e) {  // bad_alloc, or a throwing env lookup
    parse_result r;
    r.diagnostics.push_back(
        {diagnostic::level::error, "", std::string("internal error: ") + e.what()});
    return r;
  }
}

parse_result load_file(const std::string& path, const env_lookup& env) {
  auto fail = [&](int err) {
    parse_result r;
    r.diagnostics.push_back({diagnostic::level::error, "",
                             "cannot read config file \"" + path + "\": " + std::strerror(err)});
    return r;
  };
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return fail(errno);
  std::string text;
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  int read_errno = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (read_errno) return fail(read_errno);
  return parse(text, env);
}

}  // namespace ob::config
