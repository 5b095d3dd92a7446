#include "observe/gateway_metrics.hpp"

#include <algorithm>
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

// Series of a family, sorted by their label values so the output is stable between scrapes.
template <class Cell>
std::vector<std::pair<const series_key*, const Cell*>> sorted(const series_map<Cell>& m) {
  std::vector<std::pair<const series_key*, const Cell*>> out;
  out.reserve(m.size());
  for (const auto& [k, v] : m) out.emplace_back(&k, &v);
  auto& in = labels();
  std::sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
    for (std::size_t i = 0; i < series_key::max_labels; ++i) {
      if (a.first->v[i] == b.first->v[i]) continue;
      return in.value(a.first->v[i]) < in.value(b.first->v[i]);
    }
    return false;
  });
  return out;
}

std::string_view value_of(std::uint32_t id) {
  return labels().value(id);
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
  overhead.merge(o.overhead);
  inflight += o.inflight;
  open_streams += o.open_streams;
  client_connections += o.client_connections;
  for (const auto& [k, v] : o.ratelimit_remaining) {
    auto& mine = ratelimit_remaining[k];
    if (v.at >= mine.at) mine = v;
  }
}

void render(text_writer& w, const shard& m, const live_set& live) {
  std::vector<label> ls;
  auto gen_ai = [&](const series_key& key, std::string_view last_name) {
    ls.clear();
    ls.push_back({"gen_ai_operation_name", value_of(key.v[0])});
    ls.push_back({"gen_ai_provider_name", value_of(key.v[1])});
    ls.push_back({"gen_ai_request_model", value_of(key.v[2])});
    ls.push_back({"gen_ai_response_model", value_of(key.v[3])});
    if (!last_name.empty() && key.v[4] != 0) ls.push_back({last_name, value_of(key.v[4])});
  };

  w.family("gen_ai_client_token_usage", "histogram",
           "Tokens per request, by direction (gen_ai_token_type input or output).");
  for (auto [key, h] : sorted(m.token_usage)) {
    if (!live.has_group(key->v[2])) continue;
    gen_ai(*key, "gen_ai_token_type");
    w.histogram("gen_ai_client_token_usage", ls, token_usage_buckets(), *h);
  }
  w.family("gen_ai_server_request_duration_seconds", "histogram",
           "Time from the request's arrival to its answer's end; error_type set on failures.");
  for (auto [key, h] : sorted(m.duration)) {
    if (!live.has_group(key->v[2])) continue;
    gen_ai(*key, "error_type");
    w.histogram("gen_ai_server_request_duration_seconds", ls, request_duration_buckets(), *h);
  }
  w.family("gen_ai_server_time_to_first_token_seconds", "histogram",
           "Time from the request's arrival to the first byte of the answer (streams: the "
           "first event).");
  for (auto [key, h] : sorted(m.ttft)) {
    if (!live.has_group(key->v[2])) continue;
    gen_ai(*key, {});
    w.histogram("gen_ai_server_time_to_first_token_seconds", ls, time_to_first_token_buckets(), *h);
  }
  w.family("gen_ai_server_time_per_output_token_seconds", "histogram",
           "Streams: time per output token after the first.");
  for (auto [key, h] : sorted(m.tpot)) {
    if (!live.has_group(key->v[2])) continue;
    gen_ai(*key, {});
    w.histogram("gen_ai_server_time_per_output_token_seconds", ls, time_per_output_token_buckets(),
                *h);
  }

  auto group_target = [&](const series_key& key) {
    ls.clear();
    ls.push_back({"group", value_of(key.v[0])});
    ls.push_back({"target", value_of(key.v[1])});
  };
  auto live_gt = [&](const series_key& key) {
    return live.has_group(key.v[0]) && live.has_target(key.v[1]);
  };
  w.family("openbridge_requests_total", "counter",
           "Requests answered, by group, target and HTTP status code.");
  for (auto [key, v] : sorted(m.requests)) {
    if (!live_gt(*key)) continue;
    group_target(*key);
    ls.push_back({"code", value_of(key->v[2])});
    w.sample("openbridge_requests_total", ls, *v);
  }
  w.family("openbridge_upstream_attempts_total", "counter",
           "Attempts sent to targets, by outcome (ok, connect, tls, timeout, reset, status_429, "
           "status_5xx, error_event, ...).");
  for (auto [key, v] : sorted(m.attempts)) {
    if (!live_gt(*key)) continue;
    group_target(*key);
    ls.push_back({"outcome", value_of(key->v[2])});
    w.sample("openbridge_upstream_attempts_total", ls, *v);
  }
  w.family("openbridge_failovers_total", "counter",
           "Requests answered by another target than the first one tried.");
  for (auto [key, v] : sorted(m.failovers)) {
    if (!live.has_group(key->v[0])) continue;
    label l[] = {{"group", value_of(key->v[0])}};
    w.sample("openbridge_failovers_total", l, *v);
  }
  w.family("openbridge_tokens_total", "counter",
           "Tokens used, by group, target, client (the key's name) and type (input, output).");
  for (auto [key, v] : sorted(m.tokens)) {
    if (!live_gt(*key)) continue;
    group_target(*key);
    ls.push_back({"client", value_of(key->v[2])});
    ls.push_back({"type", value_of(key->v[3])});
    w.sample("openbridge_tokens_total", ls, *v);
  }
  w.family("openbridge_usage_unknown_total", "counter",
           "Answered requests whose provider reported no token usage (not counted in tokens).");
  for (auto [key, v] : sorted(m.usage_unknown)) {
    if (!live_gt(*key)) continue;
    group_target(*key);
    w.sample("openbridge_usage_unknown_total", ls, *v);
  }
  w.family("openbridge_overhead_seconds", "histogram",
           "Time spent in the gateway itself: request duration minus time waiting on providers.");
  w.histogram("openbridge_overhead_seconds", {}, overhead_buckets(), m.overhead);
  w.family("openbridge_inflight_requests", "gauge", "Requests being proxied now.");
  w.sample("openbridge_inflight_requests", {}, static_cast<double>(m.inflight));
  w.family("openbridge_open_streams", "gauge", "Server-Sent Events answers being relayed now.");
  w.sample("openbridge_open_streams", {}, static_cast<double>(m.open_streams));
  w.family("openbridge_client_connections", "gauge", "Open client connections.");
  w.sample("openbridge_client_connections", {}, static_cast<double>(m.client_connections));
  w.family("openbridge_upstream_ratelimit_remaining", "gauge",
           "The last x-ratelimit-remaining-requests / -tokens a target's provider sent.");
  std::vector<std::pair<series_key, shard::gauge_at>> rl(m.ratelimit_remaining.begin(),
                                                         m.ratelimit_remaining.end());
  std::sort(rl.begin(), rl.end(), [](const auto& a, const auto& b) {
    return std::pair(value_of(a.first.v[0]), a.first.v[1]) <
           std::pair(value_of(b.first.v[0]), b.first.v[1]);
  });
  for (const auto& [key, g] : rl) {
    if (!live.has_target(key.v[0])) continue;
    label l[] = {{"target", value_of(key.v[0])},
                 {"type", key.v[1] == 0 ? std::string_view("requests") : "tokens"}};
    w.sample("openbridge_upstream_ratelimit_remaining", l, g.value);
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
