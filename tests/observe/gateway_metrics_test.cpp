// Gateway metrics: what a request records, how shards merge, what /metrics shows.
#include <gtest/gtest.h>

#include "observe/gateway_metrics.hpp"

namespace ob::observe::metrics {
namespace {

std::uint32_t id(std::string_view s) {
  return labels().intern(s);
}

request_sample ok_sample() {
  request_sample s;
  s.group = id("fast");
  s.target = id("gpt-4o-mini@api.openai.com");
  s.provider = id("openai");
  s.response_model = id("gpt-4o-mini");
  s.client = id("search-team");
  s.operation = operation_for_path("/v1/chat/completions");
  s.status = 200;
  s.duration_s = 0.5;
  s.ttft_s = 0.1;
  s.upstream_s = 0.4995;
  s.input_tokens = 10;
  s.output_tokens = 21;
  s.stream = true;
  return s;
}

live_set live_all() {
  live_set l;
  l.groups = {id("fast")};
  l.targets = {id("gpt-4o-mini@api.openai.com")};
  return l;
}

std::string render_text(const shard& s, const live_set& l) {
  std::string out;
  text_writer w(out);
  render(w, s, l);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

// Each call site remembers the series it used last: alternating series, and a copy of a shard
// recording on its own, must still land every sample in its own series.
TEST(GatewayMetrics, AlternatingSeriesAndCopiesCountApart) {
  shard s;
  auto a = ok_sample();
  auto b = ok_sample();
  b.target = id("gpt-4o@api.openai.com");
  b.status = 502;
  b.error_type = id("502");
  for (int i = 0; i < 3; ++i) {
    s.record(a);
    s.record(b);
  }
  s.record(a);
  s.attempt(a.group, a.target, id("ok"));
  s.attempt(b.group, b.target, id("ok"));
  s.attempt(a.group, a.target, id("ok"));
  shard copy = s;  // both last used a's series
  copy.record(a);
  copy.attempt(a.group, a.target, id("ok"));
  copy.record(b);
  s.record(a);

  auto code = [](const char* c) { return id(c); };
  EXPECT_EQ((s.requests[shard::key(a.group, a.target, code("200"))]), 5u);
  EXPECT_EQ((s.requests[shard::key(b.group, b.target, code("502"))]), 3u);
  EXPECT_EQ((copy.requests[shard::key(a.group, a.target, code("200"))]), 5u);
  EXPECT_EQ((copy.requests[shard::key(b.group, b.target, code("502"))]), 4u);
  EXPECT_EQ((s.attempts[shard::key(a.group, a.target, id("ok"))]), 2u);
  EXPECT_EQ((s.attempts[shard::key(b.group, b.target, id("ok"))]), 1u);
  EXPECT_EQ((copy.attempts[shard::key(a.group, a.target, id("ok"))]), 3u);
  EXPECT_EQ((s.tokens[shard::key(a.group, a.target, a.client, id("input"))]), 50u);
  EXPECT_EQ((s.tokens[shard::key(a.group, a.target, a.client, id("output"))]), 105u);
  EXPECT_EQ((copy.tokens[shard::key(a.group, a.target, a.client, id("input"))]), 50u);
}

TEST(GatewayMetrics, RequestRecordsEveryFamily) {
  shard s;
  s.record(ok_sample());
  auto t = render_text(s, live_all());
  EXPECT_TRUE(has_line(
      t,
      R"(openbridge_requests_total{group="fast",target="gpt-4o-mini@api.openai.com",code="200"} 1)"))
      << t;
  EXPECT_TRUE(has_line(
      t,
      R"(openbridge_tokens_total{group="fast",target="gpt-4o-mini@api.openai.com",client="search-team",type="input"} 10)"));
  EXPECT_TRUE(has_line(
      t,
      R"(openbridge_tokens_total{group="fast",target="gpt-4o-mini@api.openai.com",client="search-team",type="output"} 21)"));
  EXPECT_TRUE(has_line(
      t,
      R"(gen_ai_client_token_usage_bucket{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="fast",gen_ai_response_model="gpt-4o-mini",gen_ai_token_type="input",le="16"} 1)"));
  EXPECT_TRUE(has_line(
      t,
      R"(gen_ai_client_token_usage_bucket{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="fast",gen_ai_response_model="gpt-4o-mini",gen_ai_token_type="input",le="4"} 0)"));
  EXPECT_TRUE(has_line(
      t,
      R"(gen_ai_server_request_duration_seconds_bucket{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="fast",gen_ai_response_model="gpt-4o-mini",le="0.64"} 1)"));
  EXPECT_TRUE(has_line(
      t,
      R"(gen_ai_server_time_to_first_token_seconds_count{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="fast",gen_ai_response_model="gpt-4o-mini"} 1)"));
  // (0.5 - 0.1) / 20 = 0.02 s per token after the first.
  EXPECT_TRUE(has_line(
      t,
      R"(gen_ai_server_time_per_output_token_seconds_bucket{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="fast",gen_ai_response_model="gpt-4o-mini",le="0.025"} 1)"));
  EXPECT_TRUE(has_line(t, R"(openbridge_overhead_seconds_bucket{le="0.001"} 1)")) << t;
  EXPECT_TRUE(has_line(t, R"(openbridge_overhead_seconds_bucket{le="0.00025"} 0)"));
  EXPECT_EQ(t.find("openbridge_usage_unknown_total{"), std::string::npos);
}

TEST(GatewayMetrics, FailureHasErrorTypeAndNoTokens) {
  shard s;
  auto f = ok_sample();
  f.status = 502;
  f.error_type = id("connect");
  f.input_tokens = f.output_tokens = -1;
  s.record(f);
  auto t = render_text(s, live_all());
  EXPECT_TRUE(has_line(
      t,
      R"(gen_ai_server_request_duration_seconds_count{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="fast",gen_ai_response_model="gpt-4o-mini",error_type="connect"} 1)"))
      << t;
  EXPECT_EQ(t.find("openbridge_tokens_total{"), std::string::npos);
  EXPECT_EQ(t.find("gen_ai_server_time_to_first_token_seconds_count{"), std::string::npos);
  EXPECT_EQ(t.find("openbridge_usage_unknown_total{"), std::string::npos);  // failed, not unknown
}

TEST(GatewayMetrics, MissingUsageIsCountedAsUnknownNotZero) {
  shard s;
  auto u = ok_sample();
  u.input_tokens = u.output_tokens = -1;
  s.record(u);
  auto t = render_text(s, live_all());
  EXPECT_TRUE(has_line(
      t, R"(openbridge_usage_unknown_total{group="fast",target="gpt-4o-mini@api.openai.com"} 1)"));
  EXPECT_EQ(t.find("openbridge_tokens_total{"), std::string::npos);
  // Zero is a count, not unknown.
  shard z;
  auto zs = ok_sample();
  zs.input_tokens = 0;
  zs.output_tokens = 0;
  z.record(zs);
  auto tz = render_text(z, live_all());
  EXPECT_TRUE(has_line(
      tz,
      R"(openbridge_tokens_total{group="fast",target="gpt-4o-mini@api.openai.com",client="search-team",type="output"} 0)"));
  EXPECT_EQ(tz.find("openbridge_usage_unknown_total{"), std::string::npos);
}

TEST(GatewayMetrics, RefusedBeforeRoutingCountsOnlyTheRequest) {
  shard s;
  request_sample r;
  r.status = 401;
  r.duration_s = 0.001;
  s.record(r);
  auto t = render_text(s, live_all());
  EXPECT_TRUE(has_line(t, R"(openbridge_requests_total{group="",target="",code="401"} 1)")) << t;
  EXPECT_EQ(t.find("gen_ai_server_request_duration_seconds_count{"), std::string::npos);
}

TEST(GatewayMetrics, ShardsMergeAndRemovedTargetsDisappear) {
  shard a, b, merged;
  a.record(ok_sample());
  b.record(ok_sample());
  auto other = ok_sample();
  other.target = id("old-model@example.com");
  b.record(other);
  a.attempt(id("fast"), id("gpt-4o-mini@api.openai.com"), id("status_5xx"));
  b.attempt(id("fast"), id("gpt-4o-mini@api.openai.com"), id("status_5xx"));
  b.failover(id("fast"));
  a.inflight = 2;
  b.inflight = 3;
  a.ratelimit(id("gpt-4o-mini@api.openai.com"), 0, 99, 10.0);
  b.ratelimit(id("gpt-4o-mini@api.openai.com"), 0, 42, 20.0);  // newer wins
  merged.merge(a);
  merged.merge(b);
  auto t = render_text(merged, live_all());
  EXPECT_TRUE(has_line(
      t,
      R"(openbridge_requests_total{group="fast",target="gpt-4o-mini@api.openai.com",code="200"} 2)"));
  EXPECT_EQ(t.find("old-model@example.com"), std::string::npos) << t;
  EXPECT_TRUE(has_line(
      t,
      R"(openbridge_upstream_attempts_total{group="fast",target="gpt-4o-mini@api.openai.com",outcome="status_5xx"} 2)"));
  EXPECT_TRUE(has_line(t, R"(openbridge_failovers_total{group="fast"} 1)"));
  EXPECT_TRUE(has_line(t, "openbridge_inflight_requests 5"));
  EXPECT_TRUE(has_line(
      t,
      R"(openbridge_upstream_ratelimit_remaining{target="gpt-4o-mini@api.openai.com",type="requests"} 42)"));
  // The removed target's series are still kept (cumulative): live again, it shows again.
  auto l = live_all();
  l.targets.insert(id("old-model@example.com"));
  auto t2 = render_text(merged, l);
  EXPECT_TRUE(has_line(
      t2,
      R"(openbridge_requests_total{group="fast",target="old-model@example.com",code="200"} 1)"));
}

TEST(GatewayMetrics, SeriesAreSortedByLabelBytesNotInterningOrder) {
  // Interned in reverse byte order; a value added after a first scrape must sort too.
  shard s;
  live_set l;
  auto target = id("sort-target");
  l.targets = {target};
  std::string text;
  for (auto name : {"sort-c", "sort-b\"q", "sort-a"}) {
    l.groups.insert(id(name));
    s.attempt(id(name), target, id("ok"));
    text = render_text(s, l);
  }
  auto late = id("sort-B");  // uppercase: before every lowercase value in byte order
  l.groups.insert(late);
  s.attempt(late, target, id("ok"));
  text = render_text(s, l);
  auto at = [&](std::string_view group) {
    return text.find("group=\"" + std::string(group) + "\"");
  };
  ASSERT_NE(at("sort-B"), std::string::npos) << text;
  EXPECT_LT(at("sort-B"), at("sort-a"));
  EXPECT_LT(at("sort-a"), at(R"(sort-b\"q)"));
  EXPECT_LT(at(R"(sort-b\"q)"), at("sort-c"));
}

TEST(GatewayMetrics, EveryFamilyHasHelpAndTypeEvenWhenEmpty) {
  shard s;
  auto t = render_text(s, live_all());
  for (auto name :
       {"gen_ai_client_token_usage histogram", "gen_ai_server_request_duration_seconds histogram",
        "gen_ai_server_time_to_first_token_seconds histogram",
        "gen_ai_server_time_per_output_token_seconds histogram",
        "openbridge_requests_total counter", "openbridge_upstream_attempts_total counter",
        "openbridge_failovers_total counter", "openbridge_tokens_total counter",
        "openbridge_overhead_seconds histogram", "openbridge_inflight_requests gauge",
        "openbridge_open_streams gauge", "openbridge_client_connections gauge"})
    EXPECT_NE(t.find(std::string("# TYPE ") + name + "\n"), std::string::npos) << name;
}

TEST(GatewayMetrics, LabelValuesFromConfigAreEscaped) {
  shard s;
  auto x = ok_sample();
  x.group = id("we\"ird\\group\nname");
  s.record(x);
  live_set l = live_all();
  l.groups.insert(x.group);
  auto t = render_text(s, l);
  EXPECT_NE(t.find(R"(group="we\"ird\\group\nname")"), std::string::npos) << t;
}

TEST(GatewayMetrics, ProviderNamesAndOperations) {
  EXPECT_EQ(provider_name_for_host("api.openai.com"), "openai");
  EXPECT_EQ(provider_name_for_host("openai.com"), "openai");
  EXPECT_EQ(provider_name_for_host("myres.openai.azure.com"), "azure.ai.openai");
  EXPECT_EQ(provider_name_for_host("api.anthropic.com"), "anthropic");
  EXPECT_EQ(provider_name_for_host("generativelanguage.googleapis.com"), "gcp.gemini");
  EXPECT_EQ(provider_name_for_host("api.groq.com"), "groq");
  EXPECT_EQ(provider_name_for_host("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(provider_name_for_host("notopenai.com"), "notopenai.com");
  EXPECT_EQ(labels().value(operation_for_path("/v1/chat/completions")), "chat");
  EXPECT_EQ(labels().value(operation_for_path("/v1/completions")), "text_completion");
  EXPECT_EQ(labels().value(operation_for_path("/v1/embeddings")), "embeddings");
  EXPECT_EQ(labels().value(operation_for_path("/v1/responses")), "responses");
  EXPECT_EQ(labels().value(operation_for_path("/v1/whatever/x")), "other");
}

}  // namespace
}  // namespace ob::observe::metrics
