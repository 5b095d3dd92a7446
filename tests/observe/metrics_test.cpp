// Metrics core: bucket edges, per-thread merge, exposition format and escaping.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "observe/metrics.hpp"

namespace ob::observe::metrics {
namespace {

TEST(Buckets, LayoutsAreTheConventionsOnes) {
  auto t = token_usage_buckets();
  ASSERT_EQ(t.size(), 14u);
  EXPECT_EQ(t.front(), 1);
  for (std::size_t i = 1; i < t.size(); ++i) EXPECT_EQ(t[i], t[i - 1] * 4);
  EXPECT_EQ(t.back(), 67108864);

  auto d = request_duration_buckets();
  ASSERT_EQ(d.size(), 14u);
  EXPECT_DOUBLE_EQ(d.front(), 0.01);
  for (std::size_t i = 1; i < d.size(); ++i) EXPECT_NEAR(d[i], d[i - 1] * 2, 1e-9);
  EXPECT_DOUBLE_EQ(d.back(), 81.92);

  auto f = time_to_first_token_buckets();
  std::vector<double> want{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                           0.25,  0.5,   0.75, 1,    2.5,  5,    7.5,  10};
  EXPECT_EQ(std::vector<double>(f.begin(), f.end()), want);

  auto p = time_per_output_token_buckets();
  EXPECT_DOUBLE_EQ(p.front(), 0.01);
  EXPECT_DOUBLE_EQ(p.back(), 2.5);
  for (auto l : {t, d, f, p}) {
    EXPECT_LE(l.size(), max_buckets);
    for (std::size_t i = 1; i < l.size(); ++i) EXPECT_LT(l[i - 1], l[i]);
  }
}

TEST(Buckets, UpperBoundIsInclusive) {
  auto t = token_usage_buckets();  // 1, 4, 16, ...
  EXPECT_EQ(bucket_index(t, 0), 0u);
  EXPECT_EQ(bucket_index(t, 1), 0u);    // le="1" holds 1
  EXPECT_EQ(bucket_index(t, 1.5), 1u);  // next bound 4
  EXPECT_EQ(bucket_index(t, 4), 1u);
  EXPECT_EQ(bucket_index(t, 5), 2u);
  EXPECT_EQ(bucket_index(t, 67108864), 13u);
  EXPECT_EQ(bucket_index(t, 67108865), 14u);  // +Inf
  EXPECT_EQ(bucket_index(t, std::numeric_limits<double>::infinity()), 14u);
  EXPECT_EQ(bucket_index(t, std::nan("")), 14u);
  EXPECT_EQ(bucket_index(t, -3), 0u);
}

TEST(Histogram, ObserveAndMerge) {
  auto l = token_usage_buckets();
  histogram a, b;
  a.observe(l, 1);
  a.observe(l, 3);
  b.observe(l, 3);
  b.observe(l, 1e9);
  a.merge(b);
  EXPECT_EQ(a.count, 4u);
  EXPECT_DOUBLE_EQ(a.sum, 1 + 3 + 3 + 1e9);
  EXPECT_EQ(a.counts[0], 1u);
  EXPECT_EQ(a.counts[1], 2u);
  EXPECT_EQ(a.counts[l.size()], 1u);
}

TEST(Merge, ShardsOfManyThreadsAddUp) {
  // Each thread writes only its own shard; the merge sees every sample exactly once.
  constexpr int threads = 4, per_thread = 10000;
  std::vector<series_map<std::uint64_t>> counters(threads);
  std::vector<series_map<histogram>> hists(threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        series_key k;
        k.v[0] = static_cast<std::uint32_t>(i % 3);
        counters[t][k] += 1;
        hists[t][k].observe(request_duration_buckets(), 0.015);
      }
    });
  for (auto& t : ts) t.join();
  series_map<std::uint64_t> c;
  series_map<histogram> h;
  for (int t = 0; t < threads; ++t) {
    merge_into(c, counters[t]);
    merge_into(h, hists[t]);
  }
  std::uint64_t total = 0;
  for (auto& [k, v] : c) total += v;
  EXPECT_EQ(total, std::uint64_t{threads} * per_thread);
  ASSERT_EQ(c.size(), 3u);
  series_key k0;
  EXPECT_EQ(c[k0], 4u * 3334);
  EXPECT_EQ(h[k0].count, 4u * 3334);
  EXPECT_EQ(h[k0].counts[1], 4u * 3334);  // 0.015 <= 0.02
}

TEST(Interner, StableIdsAndValues) {
  interner in;
  EXPECT_EQ(in.intern(""), interner::none);
  auto a = in.intern("fast");
  auto b = in.intern("smart");
  EXPECT_NE(a, b);
  EXPECT_EQ(in.intern("fast"), a);
  auto view = in.value(a);
  for (int i = 0; i < 1000; ++i) in.intern("v" + std::to_string(i));  // growth moves nothing
  EXPECT_EQ(view, "fast");
  EXPECT_EQ(in.value(b), "smart");
  EXPECT_EQ(in.value(999999), "");
  EXPECT_EQ(in.size(), 1003u);
}

TEST(Interner, SnapshotHasEscapedValuesAndByteOrderRanks) {
  interner in;
  auto z = in.intern("zeta");
  auto q = in.intern("a\"b\\c\nd");
  auto a = in.intern("alpha");
  auto t = in.snapshot();
  EXPECT_EQ(t->escaped_of(q), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(t->escaped_of(z), "zeta");
  EXPECT_EQ(t->escaped_of(interner::none), "");
  EXPECT_LT(t->rank_of(interner::none), t->rank_of(q));  // "" sorts first
  EXPECT_LT(t->rank_of(q), t->rank_of(a));               // '"' < 'l'
  EXPECT_LT(t->rank_of(a), t->rank_of(z));
  EXPECT_EQ(in.snapshot(), t);  // nothing added: the same table
  auto m = in.intern("mu");
  auto t2 = in.snapshot();
  ASSERT_NE(t2, t);
  EXPECT_LT(t2->rank_of(a), t2->rank_of(m));
  EXPECT_LT(t2->rank_of(m), t2->rank_of(z));
}

TEST(Exposition, JoinedLabelsWriteTheSameBytes) {
  static constexpr double bounds[] = {0.5, 1, 2.5};
  histogram h;
  for (double v : {0.1, 0.5, 0.7, 3.0}) h.observe(bounds, v);
  std::string plain, joined_out;
  text_writer a(plain), b(joined_out);
  label l[] = {{"g", "x\"y"}, {"t", "z"}};
  a.sample("c_total", l, std::uint64_t{7});
  a.sample("g", l, 0.25);
  a.histogram("d_seconds", l, bounds, h);
  a.histogram("d_seconds", {}, bounds, h);
  std::string joined;
  join_label(joined, "g", "x\\\"y");
  join_label(joined, "t", "z");
  EXPECT_EQ(joined, "g=\"x\\\"y\",t=\"z\"");
  b.sample_joined("c_total", joined, std::uint64_t{7});
  b.sample_joined("g", joined, 0.25);
  b.histogram_joined("d_seconds", joined, bounds, h);
  b.histogram_joined("d_seconds", {}, bounds, h);
  EXPECT_EQ(joined_out, plain);
  EXPECT_NE(plain.find("d_seconds_bucket{le=\"+Inf\"} 4\nd_seconds_sum 4.3\n"), std::string::npos)
      << plain;
}

TEST(Exposition, LabelValuesAreEscaped) {
  std::string out;
  append_label_value(out, "a\\b\"c\nd\te");
  EXPECT_EQ(out, "a\\\\b\\\"c\\nd\te");
  out.clear();
  append_help(out, "x\\y\n\"z\"");
  EXPECT_EQ(out, "x\\\\y\\n\"z\"");
}

TEST(Exposition, Numbers) {
  auto n = [](double v) {
    std::string s;
    append_number(s, v);
    return s;
  };
  EXPECT_EQ(n(0), "0");
  EXPECT_EQ(n(42), "42");
  EXPECT_EQ(n(-7), "-7");
  EXPECT_EQ(n(0.01), "0.01");
  EXPECT_EQ(n(0.0001), "0.0001");  // as Go formats le values
  EXPECT_EQ(n(0.00005), "5e-05");
  EXPECT_EQ(n(81.92), "81.92");
  EXPECT_EQ(n(1.5e300), "1.5e+300");
  EXPECT_EQ(n(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(n(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(n(std::nan("")), "NaN");
  std::string s;
  append_number(s, std::uint64_t{18446744073709551615ull});
  EXPECT_EQ(s, "18446744073709551615");
  // Shortest round trip: reads back as the same double.
  for (double v : {0.1 + 0.2, 1.0 / 3, 123456.789e-9}) EXPECT_EQ(std::stod(n(v)), v);
}

TEST(Exposition, FamilySamplesAndHistogram) {
  std::string out;
  text_writer w(out);
  w.family("openbridge_requests_total", "counter", "Requests answered.\nBy code.");
  w.sample("openbridge_requests_total", {{"group", "fa\"st"}, {"code", "200"}}, std::uint64_t{3});
  w.family("openbridge_inflight_requests", "gauge", "In flight.");
  w.sample("openbridge_inflight_requests", {}, 2.0);
  EXPECT_EQ(out,
            "# HELP openbridge_requests_total Requests answered.\\nBy code.\n"
            "# TYPE openbridge_requests_total counter\n"
            "openbridge_requests_total{group=\"fa\\\"st\",code=\"200\"} 3\n"
            "# HELP openbridge_inflight_requests In flight.\n"
            "# TYPE openbridge_inflight_requests gauge\n"
            "openbridge_inflight_requests 2\n");

  out.clear();
  static constexpr double bounds[] = {0.5, 1, 2.5};
  histogram h;
  for (double v : {0.1, 0.5, 0.7, 3.0}) h.observe(bounds, v);
  label l[] = {{"g", "x"}};
  w.histogram("d_seconds", l, bounds, h);
  EXPECT_EQ(out,
            "d_seconds_bucket{g=\"x\",le=\"0.5\"} 2\n"
            "d_seconds_bucket{g=\"x\",le=\"1\"} 3\n"
            "d_seconds_bucket{g=\"x\",le=\"2.5\"} 3\n"
            "d_seconds_bucket{g=\"x\",le=\"+Inf\"} 4\n"
            "d_seconds_sum{g=\"x\"} 4.3\n"
            "d_seconds_count{g=\"x\"} 4\n");
}

TEST(Exposition, ProcessMetricsArePresentAndSane) {
  std::string out;
  text_writer w(out);
  write_process_metrics(w);
  for (auto name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                    "process_virtual_memory_bytes ", "process_open_fds ", "process_max_fds ",
                    "process_start_time_seconds "}) {
    auto at = out.find(std::string("\n") + name);
    ASSERT_NE(at, std::string::npos) << name << " in\n" << out;
    double v = std::stod(out.substr(at + 1 + std::string(name).size()));
    if (std::string(name) == "process_cpu_seconds_total ")
      EXPECT_GE(v, 0) << name;  // a young test process may not have used one tick yet
    else
      EXPECT_GT(v, 0) << name;
  }
  auto at = out.find("\nprocess_start_time_seconds ");
  double start = std::stod(out.substr(at + 28));
  EXPECT_GT(start, 1.6e9);  // after 2020: boot time + start ticks, not ticks alone
  EXPECT_LT(start, static_cast<double>(::time(nullptr)) + 5);
}

}  // namespace
}  // namespace ob::observe::metrics
