// The gateway's metrics: what each worker records per request, and how the merged series are
// rendered on /metrics (names in docs/OPERATIONS.md; the gen_ai_* ones follow the OpenTelemetry
// GenAI semantic conventions so dashboards written for them work unchanged).
//
// A worker owns one `shard` and records into it on its own thread; a scrape copies every shard
// on its owner's thread, merges the copies (`shard::merge`) and renders the result with
// `render`, which skips series of groups and targets that are not in the live config.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_set>

#include "observe/metrics.hpp"

namespace ob::observe::metrics {

// Interned label values shared by every shard (config entities, clients, causes).
interner& labels();

// Where a sample's labels come from: ids from labels(), none (0) when absent.
struct request_sample {
  std::uint32_t group = 0;           // the group the client asked for (gen_ai_request_model)
  std::uint32_t target = 0;          // the target that answered, e.g. "gpt-4o@api.openai.com"
  std::uint32_t provider = 0;        // gen_ai_provider_name, e.g. "openai"
  std::uint32_t response_model = 0;  // the real model name
  std::uint32_t client = 0;          // the client key's name (capped; see docs)
  std::uint32_t operation = 0;       // chat, text_completion, embeddings, responses, ...
  std::uint32_t error_type = 0;      // none on success; else a short cause ("timeout", "500")
  int status = 0;
  bool stream = false;
  double duration_s = 0;   // whole request as the client saw it
  double ttft_s = -1;      // time to the first answer byte (streams: first event); <0 unknown
  double upstream_s = -1;  // time waiting on providers; <0 none
  std::int64_t input_tokens = -1;  // -1 = the provider did not say
  std::int64_t output_tokens = -1;
};

// The cell of the series a call site used last. A worker sends most requests to the same
// (group, target, status), so a hit saves hashing the key and walking the bucket. Cells of a
// node-based map never move while the map lives and shards never erase series, so the
// pointer stays valid; a copied shard starts with empty caches (its cells are elsewhere).
template <class Cell>
struct last_series {
  series_key key;
  Cell* cell = nullptr;

  last_series() = default;
  last_series(const last_series&) noexcept {}
  last_series& operator=(const last_series&) noexcept {
    cell = nullptr;
    return *this;
  }
  Cell& get(series_map<Cell>& m, const series_key& k) {
    if (cell == nullptr || !same(key, k)) {
      cell = &m[k];
      key = k;
    }
    return *cell;
  }
  // key == k without a call to memcmp.
  static bool same(const series_key& a, const series_key& b) {
    std::uint32_t diff = 0;
    for (std::size_t i = 0; i < series_key::max_labels; ++i) diff |= a.v[i] ^ b.v[i];
    return diff == 0;
  }
};

struct shard {
  series_map<std::uint64_t> requests;       // group, target, code
  series_map<std::uint64_t> attempts;       // group, target, outcome
  series_map<std::uint64_t> failovers;      // group
  series_map<std::uint64_t> tokens;         // group, target, client, type(0 in, 1 out)
  series_map<std::uint64_t> usage_unknown;  // group, target
  series_map<histogram> token_usage;        // operation, provider, request, response, type
  series_map<histogram> duration;           // operation, provider, request, response, error
  series_map<histogram> ttft;               // operation, provider, request, response
  series_map<histogram> tpot;               // operation, provider, request, response
  series_map<std::uint64_t> ratelimited;    // client, limit (rpm, tpm, budget, provider, ...)
  histogram overhead;
  std::int64_t inflight = 0;
  std::int64_t open_streams = 0;
  std::int64_t client_connections = 0;  // an HTTP/2 connection counts once, not per stream
  std::int64_t http2_streams = 0;       // open HTTP/2 streams
  // TLS handshakes with providers: full, and resumed from a cached session (set by collect).
  std::uint64_t upstream_tls_full = 0, upstream_tls_resumed = 0;
  // Last rate-limit headers seen per target: (target, type 0 requests / 1 tokens) -> value,
  // with the time it was seen so the merge keeps the newest.
  struct gauge_at {
    double value = 0;
    double at = 0;
  };
  std::unordered_map<series_key, gauge_at, series_key_hash> ratelimit_remaining;

  void record(const request_sample& s);
  void attempt(std::uint32_t group, std::uint32_t target, std::uint32_t outcome) {
    ++last_attempt_.get(attempts, key(group, target, outcome));
  }
  void failover(std::uint32_t group) { ++failovers[key(group)]; }
  // A request refused by its key's (or its providers') limits; `limit` an interned name.
  void rate_limited(std::uint32_t client, std::uint32_t limit) {
    ++ratelimited[key(client, limit)];
  }
  void ratelimit(std::uint32_t target, int type, double remaining, double now) {
    ratelimit_remaining[key(target, static_cast<std::uint32_t>(type))] = {remaining, now};
  }
  void merge(const shard& other);

  // Caches of record() and attempt(), one per call site (see last_series).
  last_series<std::uint64_t> last_request_, last_attempt_, last_usage_unknown_, last_tokens_in_,
      last_tokens_out_;
  last_series<histogram> last_duration_, last_ttft_, last_usage_in_, last_usage_out_, last_tpot_;

  static series_key key(std::uint32_t a, std::uint32_t b = 0, std::uint32_t c = 0,
                        std::uint32_t d = 0, std::uint32_t e = 0) {
    series_key k;
    k.v = {a, b, c, d, e, 0};
    return k;
  }
};

// Time spent in the gateway itself, in seconds: 50 us to 100 ms.
bucket_layout overhead_buckets();

// Which config entities are live (present in the current snapshot): series of others are not
// rendered, so a target removed by a reload disappears from /metrics.
struct live_set {
  std::unordered_set<std::uint32_t> groups;
  std::unordered_set<std::uint32_t> targets;
  bool has_group(std::uint32_t g) const { return g == 0 || groups.contains(g); }
  bool has_target(std::uint32_t t) const { return t == 0 || targets.contains(t); }
};

// Renders every gateway family of `merged` (HELP and TYPE even when a family has no series).
void render(text_writer& w, const shard& merged, const live_set& live);

// gen_ai_provider_name for a provider host: the OpenTelemetry well-known name for known
// vendors (api.openai.com -> "openai", *.openai.azure.com -> "azure.ai.openai", ...), else the
// host itself.
std::string provider_name_for_host(std::string_view host);

// gen_ai_operation_name for a request path, as an interned id: /v1/chat/completions -> "chat",
// /v1/completions -> "text_completion", /v1/embeddings -> "embeddings", /v1/responses ->
// "responses", /v1/images/* -> "image_generation", /v1/audio/* -> "audio", anything else
// "other" (a fixed set: label values never come from what a client sends).
std::uint32_t operation_for_path(std::string_view path);

}  // namespace ob::observe::metrics
