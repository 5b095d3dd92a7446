// The configuration as plain values. The file format is the old OpenResty gateway's
// ({"providers":[{group,name,base,key}],"security":[tokens]}) plus optional extension keys;
// docs/CONFIGURATION.md documents every key. Parsing and validation live in parse.hpp.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/redis_url.hpp"

namespace ob::config {

using millis = std::chrono::milliseconds;

// A provider's `base` split into what the upstream layer needs.
struct base_url {
  bool tls = false;         // https
  std::string host;         // without brackets for IPv6 literals
  std::uint16_t port = 0;   // explicit or the scheme's default
  std::string path_prefix;  // "" or "/openai" (no trailing slash); request path is appended
  std::string host_header;  // "host" or "host:port" when the port is not the default
};

// Per-provider overrides of the global upstream timeouts (unset = the global value).
struct provider_timeouts {
  std::optional<millis> connect, first_byte, idle, total, pool_idle;
};

// Optional active health check of one provider: a cheap periodic request that marks the
// target down/up between real requests. Off unless the provider has a "health_check" object.
struct health_check {
  bool enabled = false;
  millis interval{10'000};
  millis timeout{5'000};
  std::string path = "/v1/models";  // appended to the provider's base, like request paths
};

// Extension "limits" of a provider (per target): 0 = no limit.
struct provider_limits {
  std::uint64_t rpm = 0, tpm = 0, concurrency = 0;
};

// Extension "price" of a provider: USD per million tokens, kept as micro-dollars per million
// tokens (1.25 -> 1'250'000) so costs are integers.
struct provider_price {
  std::uint64_t input = 0, output = 0;
};
// providers[].api: the provider's API dialect (dialect/codec.hpp).
enum class provider_api : std::uint8_t { openai, azure, anthropic };

// providers[].auth: the header the key goes in.
enum class auth_mode : std::uint8_t { bearer, api_key, x_api_key, none };

// Default Azure OpenAI data-plane API version (providers[].api_version).
inline constexpr std::string_view default_azure_api_version = "2024-10-21";

struct provider {
  std::string group;                 // client-facing model group name
  std::string name;                  // real model name sent upstream
  std::string base;                  // as written in the file, e.g. "https://api.openai.com"
  std::string key;                   // resolved provider key (after ${ENV} expansion); may be empty
  std::uint32_t weight = 1;          // extension: relative share inside the group (>= 1)
  base_url url;                      // parsed from base
  provider_timeouts timeouts;        // extension: "timeouts" object in the provider entry
  struct health_check health_check;  // extension: "health_check" object in the provider entry
  provider_limits limits;            // extension: "limits" object in the provider entry
  std::optional<provider_price> price;      // extension: "price" object; unset = unpriced
  provider_api api = provider_api::openai;  // extension: "api"
  auth_mode auth = auth_mode::bearer;       // extension: "auth" (default depends on api)
  // extension: "api_version" (azure only): "2024-10-21" style, or "v1" for Azure's /openai/v1 API
  std::string api_version;
  // extension: "headers": extra request headers, in file order, values ${ENV}-expanded
  std::vector<std::pair<std::string, std::string>> headers;
  // extension: "max_tokens_field": the name of the output limit in a request the gateway writes
  // for an OpenAI-API target (an Anthropic client's max_tokens): true for
  // "max_completion_tokens" (OpenAI's; its reasoning models refuse "max_tokens"), false for
  // "max_tokens". Default: true for api.openai.com, false elsewhere.
  bool max_completion_tokens = false;
};

// Extension "groups": {"<group>": {...}} — per-group balancing and failover.
struct group_options {
  std::string policy;     // "", round_robin, weighted, least_inflight, latency ("" = weighted
                          // when the group's weights differ, else round_robin)
  unsigned attempts = 0;  // targets tried per request at most (0 = each target once)
};

// Extension "health": passive health (outlier ejection) of every target.
struct health_config {
  int consecutive_failures = 5;  // failures in a row that eject a target
  double error_ratio = 0.5;      // failure share over the window above which it is ejected...
  int min_requests = 20;         // ...once the window holds at least this many requests
  millis window{30'000};
  millis base_ejection{5'000};   // first cooldown; doubles on each repeated ejection...
  millis max_ejection{300'000};  // ...up to this
};

// Extension "retry": failover retries are limited to a share of recent traffic, so an outage
// of every provider does not multiply the load by the attempt count.
struct retry_config {
  double budget_ratio = 0.2;
  double budget_min_per_second = 3.0;
};

struct limits {
  std::size_t max_header_bytes = 64 * 1024;            // request head (line + headers)
  std::size_t max_body_bytes = 64 * 1024 * 1024;       // request body
  std::size_t max_response_bytes = 256 * 1024 * 1024;  // buffered (non-stream) upstream answer
  std::uint64_t default_output_tokens = 1024;  // output estimate of a request without max_*tokens
  millis max_wait{0};              // a request over a key's rate limit waits this long (0 = fails)
  std::size_t max_waiting = 1000;  // requests waiting at once, all keys; past it: 429 at once
};

// Extension "keys": named client keys. Limits are 0 = none.
struct key_limits {
  std::uint64_t rpm = 0, rpd = 0, tpm = 0, tpd = 0, concurrency = 0, burst = 0;
  std::optional<std::uint64_t> default_output_tokens;  // unset = limits.default_output_tokens
  std::optional<millis> max_wait;                      // unset = limits.max_wait
};

struct key_budget {
  enum class unit_kind { none, tokens, usd };
  enum class period_kind { day, week, month };
  unit_kind unit = unit_kind::none;
  period_kind period = period_kind::month;
  std::uint64_t amount = 0;  // tokens, or micro-dollars (1 USD = 1,000,000)
};

struct client_key {
  std::string name;                        // unique; log and metric `client` label
  std::array<unsigned char, 32> digest{};  // SHA-256 of the token; the token itself is not kept
  bool all_groups = true;                  // "groups" absent
  std::vector<std::string> groups;         // the groups it may use when !all_groups
  key_limits limits;
  key_budget budget;
  std::optional<std::int64_t> expires_ms;  // Unix epoch milliseconds ("expires", RFC 3339 UTC)
  bool disabled = false;
  std::map<std::string, std::string> labels;
  bool from_security = false;  // an entry of the old `security` list: unlimited
};

struct timeouts {
  millis connect{10'000};      // TCP + TLS handshake to a provider
  millis first_byte{300'000};  // request sent -> upstream response head
  millis idle{120'000};        // between two reads of an upstream answer (stream events)
  millis total{900'000};       // whole upstream exchange
  // An idle pooled provider connection is closed after this (or 1 s before the provider's own
  // Keep-Alive timeout): below the usual 60 s of servers that close without saying when.
  millis pool_idle{50'000};
  // A stream's answer head waits for its first data event (an opening error event fails
  // over); from this long after the head, provider bytes before that event (keep-alive
  // comments, an Anthropic message_start and pings) release it to the client.
  millis stream_hold{2'000};
  millis client_header{30'000};       // client: the whole request head, from its first byte
  millis client_body{120'000};        // client: request body, between two reads
  millis client_body_total{300'000};  // client: the whole request body, from the end of the head
  millis keepalive{75'000};           // idle client connection between requests
  millis shutdown_grace{30'000};      // SIGTERM: requests in flight may finish within this
};

// Extension "log": access and process log output. Read at start and on every reload.
struct log_config {
  enum class format_kind { text, json };
  enum class level_kind { debug, info, warn, error };  // same order as observe::level
  // Which requests get an access line: every one, only those that failed (a status of 400 or
  // more, or an outcome other than ok), or none (the live event feed still sees them all).
  enum class access_kind { all, errors, off };  // same order as observe::access_mode
  format_kind format = format_kind::text;       // access (and process) lines: logfmt or JSON
  std::string file;                             // access log file; "" = stderr
  level_kind level = level_kind::info;          // process log lines below this are dropped
  access_kind access = access_kind::all;
};

// Extension "headers": what the gateway tells clients in answer headers.
struct header_options {
  // x-openbridge-model, x-openbridge-provider (the provider's host) and x-openbridge-attempts
  // on proxied answers; false leaves them out.
  bool expose_routing = true;
  // Server-Timing (time in the gateway, time waiting on providers) on proxied answers.
  bool server_timing = true;
  // x-request-id on every answer (the id still goes upstream and into the access line).
  bool request_id = true;
};

// Extension "admin": the admin listener (metrics, health, targets, reload, events). On by
// default on loopback; `"admin": false` turns it off.
struct admin_config {
  bool enabled = true;
  std::string listen = "127.0.0.1:9901";
  std::string token;  // resolved (${ENV} expanded); "" = no token (loopback only)
};

// Extension "metrics".
struct metrics_config {
  std::size_t max_clients = 1000;  // distinct `client` label values; the rest count as "other"
  // Ask streaming chat/completions requests' providers for usage (stream_options.include_usage)
  // when the client did not, and strip the extra usage chunk before it reaches that client.
  bool stream_usage = true;
};

// Extension "tls": HTTPS on a second listener (docs/CONFIGURATION.md, "tls"). The files are read
// at start-up and again on SIGHUP or when one of them changes; a pair that cannot be used is
// refused and the one in use keeps serving.
struct tls_config {
  bool enabled = false;
  std::string listen = "0.0.0.0:8443";
  std::string cert;       // PEM certificate chain, leaf first
  std::string key;        // PEM private key of the leaf
  std::string client_ca;  // "" = no client certificates asked; else PEM CAs that must sign them
  bool http2 = true;      // ALPN offers h2 before http/1.1
  std::uint32_t http2_max_concurrent_streams = 100;  // SETTINGS_MAX_CONCURRENT_STREAMS
  // Request body bytes one HTTP/2 connection holds at once over all its streams (413 past it).
  std::size_t http2_connection_body_bytes = 64 * 1024 * 1024;
};
// ---- shared state (extension "state": docs/CONFIGURATION.md, docs/SCALING.md) ----
// Absent: limits are counted in memory and no ledger is written.
struct state_config {
  bool enabled = false;                      // the "state" object is present
  std::string path = "openbridge-state.db";  // SQLite usage ledger; "" = none
  std::optional<redis_url> redis;            // shared limits in Redis; none = in memory only
  std::string redis_text;                    // as written (for the redacted config: no password)
  millis timeout{50};                        // each admission round trip to Redis
  millis lease_ttl{30'000};  // a concurrency lease not renewed (holder gone) expires after this
  enum class failure { local, deny };
  failure on_failure =
      failure::local;          // Redis down/late: in-memory with limits / instances, or 503
  unsigned instances = 1;      // gateways sharing the Redis
  std::string prefix = "ob:";  // Redis key prefix
  // Redis Cluster: every key under one hash tag (<prefix>{<tag>}:k:<name>:rpm, the tag is the
  // prefix without its trailing ':'), MOVED/ASK replies followed (docs/SCALING.md).
  bool cluster = false;
};
// ---- end shared state ----

struct config {
  std::vector<provider> providers;
  std::vector<std::string> security;  // client tokens (after ${ENV} expansion)
  // Every client key: the `security` entries first (named "key-" + 8 hex of the token's
  // SHA-256, unlimited), then the "keys" extension's entries.
  std::vector<client_key> keys;
  std::string listen = "0.0.0.0:8080";  // extension: "host:port", "[::1]:port" or ":port"
  // Whether the document set "listen". With "tls" and no "listen", only the TLS listener opens.
  bool listen_set = false;
  unsigned workers = 0;  // extension: 0 = number of cores
  struct limits limits;
  struct timeouts timeouts;
  std::map<std::string, group_options> groups;  // extension; keys name groups of `providers`
  health_config health;                         // extension
  retry_config retry;                           // extension
  log_config log;                               // extension
  header_options headers;                       // extension
  admin_config admin;                           // extension
  metrics_config metrics;                       // extension
  tls_config tls;                               // extension
  state_config state;                           // extension
};

}  // namespace ob::config
