#include "observe/gateway_metrics.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace ob::observe::metrics {

interner& labels() {
  static interner in;
  return in;
}

namespace {

constexpr double overhead_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                      0.005,   0.01,   0.025,   0.05,   0.1};

struct ids {
  std::uint32_t input = labels().intern("input");
  std::uint32_t output = labels().intern("output");
  std::uint32_t chat = labels().intern("chat");
  std::uint32_t text_completion = labels().intern("text_completion");
  std::uint32_t embeddings = labels().intern("embeddings");
  std::uint32_t responses = labels().intern("responses");
  std::uint32_t image_generation = labels().intern("image_generation");
  std::uint32_t audio = labels().intern("audio");
  std::uint32_t other = labels().intern("other");
};

const ids& known() {
  static const ids i;
  return i;
}

// Series of a family that pass `keep`, sorted by their label values so the output is stable
// between scrapes. Compares ranks of the values (distinct values, distinct ranks) rather than
// the strings themselves.
template <class Cell, class Keep>
std::vector<std::pair<const series_key*, const Cell*>> sorted(const series_map<Cell>& m,
                                                              const interner::table& t, Keep keep) {
  struct row {
    std::array<std::uint32_t, series_key::max_labels> rank;
    const series_key* key;
    const Cell* cell;
  };
  std::vector<row> rows;
  rows.reserve(m.size());
  for (const auto& [k, v] : m) {
    if (!keep(k)) continue;
    row r{{}, &k, &v};
    for (std::size_t i = 0; i < series_key::max_labels; ++i) r.rank[i] = t.rank_of(k.v[i]);
    rows.push_back(r);
  }
  std::sort(rows.begin(), rows.end(), [](const row& a, const row& b) { return a.rank < b.rank; });
  std::vector<std::pair<const series_key*, const Cell*>> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.emplace_back(r.key, r.cell);
  return out;
}

}  // namespace

bucket_layout overhead_buckets() {
  return overhead_bounds;
}

void shard::record(const request_sample& s) {
  auto& k = known();
  char code[4] = {'0', '0', '0', 0};
  int st = std::clamp(s.status, 0, 999);
  code[0] = static_cast<char>('0' + st / 100);
  code[1] = static_cast<char>('0' + st / 10 % 10);
  code[2] = static_cast<char>('0' + st % 10);
  // Status codes are a bounded set: intern once per distinct code and thread.
  static thread_local std::uint32_t code_ids[1000] = {};
  auto& cid = code_ids[st];
  if (cid == 0) cid = labels().intern(std::string_view(code, 3));
  ++last_request_.get(requests, key(s.group, s.target, cid));

  if (s.group == 0) return;  // refused before routing: no GenAI series
  last_duration_
      .get(duration, key(s.operation, s.provider, s.group, s.response_model, s.error_type))
      .observe(request_duration_buckets(), s.duration_s);
  if (s.upstream_s >= 0 && s.duration_s >= s.upstream_s)
    overhead.observe(overhead_buckets(), s.duration_s - s.upstream_s);
  if (s.error_type != 0 || s.target == 0) return;
  if (s.ttft_s >= 0)
    last_ttft_.get(ttft, key(s.operation, s.provider, s.group, s.response_model))
        .observe(time_to_first_token_buckets(), s.ttft_s);
  if (s.input_tokens < 0 && s.output_tokens < 0) {
    ++last_usage_unknown_.get(usage_unknown, key(s.group, s.target));
    return;
  }
  if (s.input_tokens >= 0) {
    last_tokens_in_.get(tokens, key(s.group, s.target, s.client, k.input)) +=
        static_cast<std::uint64_t>(s.input_tokens);
    last_usage_in_
        .get(token_usage, key(s.operation, s.provider, s.group, s.response_model, k.input))
        .observe(token_usage_buckets(), static_cast<double>(s.input_tokens));
  }
  if (s.output_tokens >= 0) {
    last_tokens_out_.get(tokens, key(s.group, s.target, s.client, k.output)) +=
        static_cast<std::uint64_t>(s.output_tokens);
    last_usage_out_
        .get(token_usage, key(s.operation, s.provider, s.group, s.response_model, k.output))
        .observe(token_usage_buckets(), static_cast<double>(s.output_tokens));
    // Time per output token after the first: streams only, where the decode rate shows.
    if (s.stream && s.output_tokens > 1 && s.ttft_s >= 0 && s.duration_s > s.ttft_s)
      last_tpot_.get(tpot, key(s.operation, s.provider, s.group, s.response_model))
          .observe(time_per_output_token_buckets(),
                   (s.duration_s - s.ttft_s) / static_cast<double>(s.output_tokens - 1));
  }
}

void shard::merge(const shard& o) {
  merge_into(requests, o.requests);
  merge_into(attempts, o.attempts);
  merge_into(failovers, o.failovers);
  merge_into(tokens, o.tokens);
  merge_into(usage_unknown, o.usage_unknown);
  merge_into(token_usage, o.token_usage);
  merge_into(duration, o.duration);
  merge_into(ttft, o.ttft);
  merge_into(tpot, o.tpot);
  merge_into(ratelimited, o.ratelimited);
  overhead.merge(o.overhead);
  inflight += o.inflight;
  open_streams += o.open_streams;
  client_connections += o.client_connections;
  http2_streams += o.http2_streams;
  upstream_tls_full += o.upstream_tls_full;
  upstream_tls_resumed += o.upstream_tls_resumed;
  for (const auto& [k, v] : o.ratelimit_remaining) {
    auto& mine = ratelimit_remaining[k];
    if (v.at >= mine.at) mine = v;
  }
}

void render(text_writer& w, const shard& m, const live_set& live) {
  // Taken after the merge: every id of `m` is in it.
  auto table = labels().snapshot();
  const auto& t = *table;
  // A series' labels, escaped and joined once, written as is on each of its lines.
  std::string ls;
  auto put = [&](std::string_view name, std::uint32_t id) {
    join_label(ls, name, t.escaped_of(id));
  };
  auto gen_ai = [&](const series_key& key, std::string_view last_name) {
    ls.clear();
    put("gen_ai_operation_name", key.v[0]);
    put("gen_ai_provider_name", key.v[1]);
    put("gen_ai_request_model", key.v[2]);
    put("gen_ai_response_model", key.v[3]);
    if (!last_name.empty() && key.v[4] != 0) put(last_name, key.v[4]);
  };
  auto live_request_model = [&](const series_key& key) { return live.has_group(key.v[2]); };

  w.family("gen_ai_client_token_usage", "histogram",
           "Tokens per request, by direction (gen_ai_token_type input or output).");
  for (auto [key, h] : sorted(m.token_usage, t, live_request_model)) {
    gen_ai(*key, "gen_ai_token_type");
    w.histogram_joined("gen_ai_client_token_usage", ls, token_usage_buckets(), *h);
  }
  w.family("gen_ai_server_request_duration_seconds", "histogram",
           "Time from the request's arrival to its answer's end; error_type set on failures.");
  for (auto [key, h] : sorted(m.duration, t, live_request_model)) {
    gen_ai(*key, "error_type");
    w.histogram_joined("gen_ai_server_request_duration_seconds", ls, request_duration_buckets(),
                       *h);
  }
  w.family("gen_ai_server_time_to_first_token_seconds", "histogram",
           "Time from the request's arrival to the first byte of the answer (streams: the "
           "first event).");
  for (auto [key, h] : sorted(m.ttft, t, live_request_model)) {
    gen_ai(*key, {});
    w.histogram_joined("gen_ai_server_time_to_first_token_seconds", ls,
                       time_to_first_token_buckets(), *h);
  }
  w.family("gen_ai_server_time_per_output_token_seconds", "histogram",
           "Streams: time per output token after the first.");
  for (auto [key, h] : sorted(m.tpot, t, live_request_model)) {
    gen_ai(*key, {});
    w.histogram_joined("gen_ai_server_time_per_output_token_seconds", ls,
                       time_per_output_token_buckets(), *h);
  }

  auto group_target = [&](const series_key& key) {
    ls.clear();
    put("group", key.v[0]);
    put("target", key.v[1]);
  };
  auto live_gt = [&](const series_key& key) {
    return live.has_group(key.v[0]) && live.has_target(key.v[1]);
  };
  w.family("openbridge_requests_total", "counter",
           "Requests answered, by group, target and HTTP status code.");
  for (auto [key, v] : sorted(m.requests, t, live_gt)) {
    group_target(*key);
    put("code", key->v[2]);
    w.sample_joined("openbridge_requests_total", ls, *v);
  }
  w.family("openbridge_upstream_attempts_total", "counter",
           "Attempts sent to targets, by outcome (ok, connect, tls, timeout, reset, status_429, "
           "status_5xx, error_event, ...).");
  for (auto [key, v] : sorted(m.attempts, t, live_gt)) {
    group_target(*key);
    put("outcome", key->v[2]);
    w.sample_joined("openbridge_upstream_attempts_total", ls, *v);
  }
  w.family("openbridge_failovers_total", "counter",
           "Requests answered by another target than the first one tried.");
  for (auto [key, v] :
       sorted(m.failovers, t, [&](const series_key& k) { return live.has_group(k.v[0]); })) {
    ls.clear();
    put("group", key->v[0]);
    w.sample_joined("openbridge_failovers_total", ls, *v);
  }
  w.family("openbridge_tokens_total", "counter",
           "Tokens used, by group, target, client (the key's name) and type (input, output).");
  for (auto [key, v] : sorted(m.tokens, t, live_gt)) {
    group_target(*key);
    put("client", key->v[2]);
    put("type", key->v[3]);
    w.sample_joined("openbridge_tokens_total", ls, *v);
  }
  w.family("openbridge_ratelimited_total", "counter",
           "Requests refused by limits, by client (the key's name) and limit (rpm, rpd, tpm, tpd, "
           "concurrency, budget, provider).");
  for (auto [key, v] : sorted(m.ratelimited, t, [](const series_key&) { return true; })) {
    ls.clear();
    put("client", key->v[0]);
    put("limit", key->v[1]);
    w.sample_joined("openbridge_ratelimited_total", ls, *v);
  }
  w.family("openbridge_usage_unknown_total", "counter",
           "Answered requests whose provider reported no token usage (not counted in tokens).");
  for (auto [key, v] : sorted(m.usage_unknown, t, live_gt)) {
    group_target(*key);
    w.sample_joined("openbridge_usage_unknown_total", ls, *v);
  }
  w.family("openbridge_overhead_seconds", "histogram",
           "Time spent in the gateway itself: request duration minus time waiting on providers.");
  w.histogram_joined("openbridge_overhead_seconds", {}, overhead_buckets(), m.overhead);
  w.family("openbridge_inflight_requests", "gauge", "Requests being proxied now.");
  w.sample("openbridge_inflight_requests", {}, static_cast<double>(m.inflight));
  w.family("openbridge_open_streams", "gauge", "Server-Sent Events answers being relayed now.");
  w.sample("openbridge_open_streams", {}, static_cast<double>(m.open_streams));
  w.family("openbridge_client_connections", "gauge", "Open client connections.");
  w.sample("openbridge_client_connections", {}, static_cast<double>(m.client_connections));
  w.family("openbridge_http2_streams", "gauge",
           "Open HTTP/2 streams (requests) over all HTTP/2 client connections.");
  w.sample("openbridge_http2_streams", {}, static_cast<double>(m.http2_streams));
  w.family("openbridge_upstream_tls_handshakes_total", "counter",
           "TLS handshakes with providers; resumed=\"true\": from the origin's cached session.");
  w.sample("openbridge_upstream_tls_handshakes_total", {{"resumed", "false"}}, m.upstream_tls_full);
  w.sample("openbridge_upstream_tls_handshakes_total", {{"resumed", "true"}},
           m.upstream_tls_resumed);
  w.family("openbridge_upstream_ratelimit_remaining", "gauge",
           "The last x-ratelimit-remaining-requests / -tokens a target's provider sent.");
  std::vector<std::pair<series_key, shard::gauge_at>> rl;
  rl.reserve(m.ratelimit_remaining.size());
  for (const auto& kv : m.ratelimit_remaining)
    if (live.has_target(kv.first.v[0])) rl.push_back(kv);
  std::sort(rl.begin(), rl.end(), [&](const auto& a, const auto& b) {
    return std::pair(t.rank_of(a.first.v[0]), a.first.v[1]) <
           std::pair(t.rank_of(b.first.v[0]), b.first.v[1]);
  });
  for (const auto& [key, g] : rl) {
    ls.clear();
    put("target", key.v[0]);
    join_label(ls, "type", key.v[1] == 0 ? std::string_view("requests") : "tokens");
    w.sample_joined("openbridge_upstream_ratelimit_remaining", ls, g.value);
  }
}

std::string provider_name_for_host(std::string_view host) {
  auto ends = [&](std::string_view suffix) {
    return host == suffix.substr(1) || host.ends_with(suffix);
  };
  if (ends(".openai.com")) return "openai";
  if (ends(".openai.azure.com") || ends(".cognitiveservices.azure.com")) return "azure.ai.openai";
  if (ends(".anthropic.com")) return "anthropic";
  if (host == "generativelanguage.googleapis.com") return "gcp.gemini";
  if (ends(".aiplatform.googleapis.com")) return "gcp.vertex_ai";
  if (ends(".groq.com")) return "groq";
  if (ends(".mistral.ai")) return "mistral_ai";
  if (ends(".deepseek.com")) return "deepseek";
  if (ends(".x.ai")) return "x_ai";
  if (ends(".perplexity.ai")) return "perplexity";
  if (ends(".cohere.com") || ends(".cohere.ai")) return "cohere";
  if (ends(".openrouter.ai")) return "openrouter";
  return std::string(host);
}

std::uint32_t operation_for_path(std::string_view path) {
  auto& k = known();
  if (path == "/v1/chat/completions") return k.chat;
  if (path == "/v1/completions") return k.text_completion;
  if (path == "/v1/embeddings") return k.embeddings;
  if (path == "/v1/responses") return k.responses;
  if (path.starts_with("/v1/images/")) return k.image_generation;
  if (path.starts_with("/v1/audio/")) return k.audio;
  return k.other;
}

}  // namespace ob::observe::metrics
