// The per-second ring of the dashboard: folding shards, deltas, percentiles, the ring's wrap
// and its JSON.
#include "observe/timeseries.hpp"

#include <cmath>

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace ob::observe::metrics {
namespace {

int status_of(std::uint32_t id) {
  auto v = labels().value(id);
  return v.size() == 3 ? std::stoi(std::string(v)) : 0;
}
std::string_view name_of(std::uint32_t id) {
  return labels().value(id);
}

request_sample answer(std::uint32_t group, std::uint32_t target, int status, double seconds) {
  request_sample s;
  s.group = group;
  s.target = target;
  s.provider = labels().intern("mock");
  s.response_model = target;
  s.operation = labels().intern("chat");
  s.status = status;
  s.duration_s = seconds;
  s.ttft_s = seconds / 2;
  s.input_tokens = 10;
  s.output_tokens = 4;
  if (status >= 500) s.error_type = labels().intern(std::to_string(status));
  return s;
}

TEST(Quantile, InterpolatesInsideTheBucketLikeHistogramQuantile) {
  const double bounds[] = {1, 2, 4};
  histogram h;
  for (int i = 0; i < 10; ++i) h.observe(bounds, 1.5);  // all in (1, 2]
  EXPECT_DOUBLE_EQ(quantile(bounds, h, 0.5), 1.5);
  EXPECT_DOUBLE_EQ(quantile(bounds, h, 1.0), 2.0);
  h.observe(bounds, 100);  // +Inf answers the highest finite bound
  EXPECT_DOUBLE_EQ(quantile(bounds, h, 1.0), 4.0);
  EXPECT_TRUE(std::isnan(quantile(bounds, histogram{}, 0.5)));
}

TEST(Fold, AddsEverySeriesOfAShardWithoutItsLabelsOfClientOrModel) {
  auto g = labels().intern("ts-g"), t = labels().intern("ts-t");
  shard s;
  s.record(answer(g, t, 200, 0.015));
  s.record(answer(g, t, 200, 0.015));
  s.record(answer(g, t, 502, 0.5));
  s.attempt(g, t, labels().intern("ok"));
  s.attempt(g, t, labels().intern("status_5xx"));
  s.attempt(g, t, labels().intern("client_gone"));  // not the target's fault
  s.open_streams = 3;
  auto f = fold(s);
  auto a = f.attempts.at(std::uint64_t(g) << 32 | t);
  EXPECT_EQ(a[0], 3u);
  EXPECT_EQ(a[1], 1u);
  std::uint64_t n = 0;
  for (const auto& [code, c] : f.answers.at(std::uint64_t(g) << 32 | t)) n += c;
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(f.duration.count, 3u);
  EXPECT_EQ(f.ttft.count, 2u);  // failed answers have no TTFT
  EXPECT_EQ(f.tokens_in, 20u);
  EXPECT_EQ(f.tokens_out, 8u);
  EXPECT_EQ(f.open_streams, 3);
  traffic_totals sum = f;
  sum.add(f);
  EXPECT_EQ(sum.tokens_in, 40u);
  EXPECT_EQ(sum.duration.count, 6u);
  EXPECT_EQ(sum.open_streams, 6);
  EXPECT_EQ(sum.attempts.at(std::uint64_t(g) << 32 | t)[0], 6u);
}

TEST(Timeseries, APointIsTheDifferenceFromThePreviousSecond) {
  auto g = labels().intern("ts-g2"), t = labels().intern("ts-t2");
  shard s;
  timeseries ts(10);
  ts.sample(100, fold(s), status_of);  // the base: no point yet
  EXPECT_EQ(ts.size(), 0u);
  for (int i = 0; i < 8; ++i) s.record(answer(g, t, 200, 0.015));
  for (int i = 0; i < 2; ++i) s.record(answer(g, t, 503, 0.015));
  ts.sample(101, fold(s), status_of);
  ASSERT_EQ(ts.size(), 1u);
  EXPECT_DOUBLE_EQ(ts.at(0).rps, 10);
  EXPECT_DOUBLE_EQ(ts.at(0).error_ratio, 0.2);
  EXPECT_GT(ts.at(0).p50, 0.01);  // every duration is in (0.01, 0.02]
  EXPECT_LE(ts.at(0).p99, 0.02);
  EXPECT_DOUBLE_EQ(ts.at(0).tokens_in, 80);
  // Two seconds later, nothing new: a rate over two seconds, no error ratio.
  ts.sample(103, fold(s), status_of);
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_DOUBLE_EQ(ts.at(1).rps, 0);
  EXPECT_TRUE(std::isnan(ts.at(1).error_ratio));
  EXPECT_TRUE(std::isnan(ts.at(1).p50));
  ts.sample(103, fold(s), status_of);  // the same second again: ignored
  EXPECT_EQ(ts.size(), 2u);
}

TEST(Timeseries, TheRingKeepsTheNewestPoints) {
  shard s;
  timeseries ts(5);
  for (int i = 0; i <= 12; ++i) ts.sample(1000 + i, fold(s), status_of);
  ASSERT_EQ(ts.size(), 5u);
  EXPECT_EQ(ts.at(0).t, 1008);
  EXPECT_EQ(ts.at(4).t, 1012);
}

TEST(Timeseries, JsonHasColumnsAfterTheAskedSecondAndNamesEscaped) {
  auto g = labels().intern("<img src=x onerror=alert(1)>"), t = labels().intern("m\"@h");
  shard s;
  timeseries ts(900);
  ts.sample(50, fold(s), status_of);
  s.record(answer(g, t, 200, 0.015));
  s.attempt(g, t, labels().intern("ok"));
  ts.sample(51, fold(s), status_of);
  s.record(answer(g, t, 500, 0.015));
  s.attempt(g, t, labels().intern("timeout"));
  ts.sample(52, fold(s), status_of);
  auto text = ts.json(0, name_of);
  EXPECT_NE(text.find(R"("t":[51,52])"), std::string::npos) << text;  // seconds in full
  auto all = boost::json::parse(text).as_object();
  EXPECT_EQ(all.at("interval_s").as_int64(), 1);
  EXPECT_EQ(all.at("capacity").as_int64(), 900);
  auto& pts = all.at("points").as_object();
  ASSERT_EQ(pts.at("t").as_array().size(), 2u);
  EXPECT_EQ(pts.at("rps").as_array().size(), 2u);
  EXPECT_EQ(pts.at("error_ratio").as_array()[1].to_number<double>(), 1.0);
  auto& targets = all.at("targets").as_array();
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].at("group").as_string(), "<img src=x onerror=alert(1)>");
  EXPECT_EQ(targets[0].at("target").as_string(), "m\"@h");
  EXPECT_EQ(targets[0].at("errors").as_array()[1].to_number<double>(), 1.0);
  auto later = boost::json::parse(ts.json(51, name_of)).as_object();
  ASSERT_EQ(later.at("points").at("t").as_array().size(), 1u);
  EXPECT_EQ(later.at("points").at("t").as_array()[0].to_number<double>(), 52);
  EXPECT_TRUE(later.at("points").at("p50_ms").as_array()[0].is_number());
  auto none = boost::json::parse(ts.json(52, name_of)).as_object();
  EXPECT_TRUE(none.at("points").at("t").as_array().empty());
}

}  // namespace
}  // namespace ob::observe::metrics
