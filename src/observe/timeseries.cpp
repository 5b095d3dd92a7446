#include "observe/timeseries.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "observe/fields.hpp"

namespace ob::observe::metrics {

namespace {

std::uint64_t pair_key(std::uint32_t group, std::uint32_t target) {
  return static_cast<std::uint64_t>(group) << 32 | target;
}

histogram minus(const histogram& a, const histogram& b) {
  histogram d;
  for (std::size_t i = 0; i < d.counts.size(); ++i)
    d.counts[i] = a.counts[i] >= b.counts[i] ? a.counts[i] - b.counts[i] : 0;
  d.count = a.count >= b.count ? a.count - b.count : 0;
  d.sum = a.sum - b.sum;
  return d;
}

std::uint64_t minus(std::uint64_t a, std::uint64_t b) {
  return a >= b ? a - b : 0;
}

void put_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {  // counts and unix seconds: every digit
    auto r = std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v));
    out.append(buf, r.ptr);
    return;
  }
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 6);
  out.append(buf, r.ptr);
}

void put_string(std::string& out, std::string_view v) {
  const auto old = out.size();
  out.resize(old + detail::json_expansion * v.size() + 2);
  char* end = detail::put_json_string(out.data() + old, v);
  out.resize(static_cast<std::size_t>(end - out.data()));
}

}  // namespace

void traffic_totals::add(const traffic_totals& o) {
  for (const auto& [k, codes] : o.answers) {
    auto& mine = answers[k];
    for (const auto& [code, n] : codes) mine[code] += n;
  }
  for (const auto& [k, n] : o.attempts) {
    auto& mine = attempts[k];
    mine[0] += n[0];
    mine[1] += n[1];
  }
  tokens_in += o.tokens_in;
  tokens_out += o.tokens_out;
  duration.merge(o.duration);
  ttft.merge(o.ttft);
  inflight += o.inflight;
  open_streams += o.open_streams;
  for (const auto& [k, v] : o.ratelimit_remaining) {
    auto& mine = ratelimit_remaining[k];
    if (v.at >= mine.at) mine = v;
  }
}

traffic_totals fold(const shard& s) {
  static const std::uint32_t input = labels().intern("input");
  static const std::uint32_t output = labels().intern("output");
  static const std::uint32_t ok = labels().intern("ok");
  static const std::uint32_t client_gone = labels().intern("client_gone");
  static const std::uint32_t status_4xx = labels().intern("status_4xx");
  traffic_totals t;
  for (const auto& [k, n] : s.requests) t.answers[pair_key(k.v[0], k.v[1])][k.v[2]] += n;
  for (const auto& [k, n] : s.attempts) {
    auto& a = t.attempts[pair_key(k.v[0], k.v[1])];
    a[0] += n;
    if (k.v[2] != ok && k.v[2] != client_gone && k.v[2] != status_4xx) a[1] += n;
  }
  for (const auto& [k, n] : s.tokens) {
    if (k.v[3] == input) t.tokens_in += n;
    if (k.v[3] == output) t.tokens_out += n;
  }
  for (const auto& [k, h] : s.duration) t.duration.merge(h);
  for (const auto& [k, h] : s.ttft) t.ttft.merge(h);
  t.inflight = s.inflight;
  t.open_streams = s.open_streams;
  t.ratelimit_remaining = s.ratelimit_remaining;
  return t;
}

double quantile(bucket_layout layout, const histogram& h, double q) {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= layout.size(); ++i) total += h.counts[i];
  if (total == 0) return std::nan("");
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
  double seen = 0;
  for (std::size_t i = 0; i <= layout.size(); ++i) {
    const auto n = static_cast<double>(h.counts[i]);
    if (n > 0 && seen + n >= rank) {
      if (i == layout.size()) return layout.empty() ? std::nan("") : layout.back();
      const double lo = i == 0 ? 0.0 : layout[i - 1];
      const double hi = layout[i];
      return lo + (hi - lo) * std::max(0.0, rank - seen) / n;
    }
    seen += n;
  }
  return layout.empty() ? std::nan("") : layout.back();
}

timeseries::timeseries(std::size_t seconds) : points_(std::max<std::size_t>(seconds, 2)) {}

void timeseries::sample(std::int64_t t, const traffic_totals& now,
                        const std::function<int(std::uint32_t)>& status_of) {
  if (!have_base_) {
    have_base_ = true;
    base_t_ = t;
    base_ = now;
    return;
  }
  if (t <= base_t_) return;
  const double dt = static_cast<double>(t - base_t_);

  // The slot of the new point: the next one, or the oldest when the ring is full.
  std::size_t slot;
  if (size_ < points_.size()) {
    slot = index(size_);
    ++size_;
  } else {
    slot = head_;
    head_ = (head_ + 1) % points_.size();
  }

  std::uint64_t requests = 0, errors = 0;
  for (const auto& [k, codes] : now.answers) {
    const auto was = base_.answers.find(k);
    for (const auto& [code, n] : codes) {
      std::uint64_t before = 0;
      if (was != base_.answers.end()) {
        auto c = was->second.find(code);
        if (c != was->second.end()) before = c->second;
      }
      const auto d = minus(n, before);
      requests += d;
      if (status_of(code) >= 500) errors += d;
    }
  }
  for (auto& [k, ring] : targets_) ring[slot] = {0, 0};
  for (const auto& [k, n] : now.attempts) {
    const auto was = base_.attempts.find(k);
    const std::array<std::uint64_t, 2> before =
        was == base_.attempts.end() ? std::array<std::uint64_t, 2>{} : was->second;
    auto [it, added] = targets_.try_emplace(k);
    if (added) it->second.assign(points_.size(), {0, 0});
    it->second[slot] = {static_cast<float>(static_cast<double>(minus(n[0], before[0])) / dt),
                        static_cast<float>(static_cast<double>(minus(n[1], before[1])) / dt)};
  }

  point p;
  p.t = t;
  p.rps = static_cast<double>(requests) / dt;
  p.error_ratio =
      requests ? static_cast<double>(errors) / static_cast<double>(requests) : std::nan("");
  const auto dur = minus(now.duration, base_.duration);
  p.p50 = quantile(request_duration_buckets(), dur, 0.5);
  p.p99 = quantile(request_duration_buckets(), dur, 0.99);
  const auto ttft = minus(now.ttft, base_.ttft);
  p.ttft_p50 = quantile(time_to_first_token_buckets(), ttft, 0.5);
  p.ttft_p99 = quantile(time_to_first_token_buckets(), ttft, 0.99);
  p.tokens_in = static_cast<double>(minus(now.tokens_in, base_.tokens_in)) / dt;
  p.tokens_out = static_cast<double>(minus(now.tokens_out, base_.tokens_out)) / dt;
  p.open_streams = static_cast<double>(now.open_streams);
  p.inflight = static_cast<double>(now.inflight);
  points_[slot] = p;

  base_t_ = t;
  base_ = now;
}

std::string timeseries::json(std::int64_t after,
                             const std::function<std::string_view(std::uint32_t)>& name_of) const {
  std::size_t first = 0;
  while (first < size_ && at(first).t <= after) ++first;
  std::string out = R"({"interval_s":1,"capacity":)";
  out += std::to_string(points_.size());
  out += R"(,"points":{)";
  auto column = [&](std::string_view name, auto get) {
    if (name != "t") out += ',';
    out += '"';
    out += name;
    out += "\":[";
    for (std::size_t i = first; i < size_; ++i) {
      if (i != first) out += ',';
      put_number(out, get(at(i)));
    }
    out += ']';
  };
  column("t", [](const point& p) { return static_cast<double>(p.t); });
  column("rps", [](const point& p) { return p.rps; });
  column("error_ratio", [](const point& p) { return p.error_ratio; });
  column("p50_ms", [](const point& p) { return p.p50 * 1000; });
  column("p99_ms", [](const point& p) { return p.p99 * 1000; });
  column("ttft_p50_ms", [](const point& p) { return p.ttft_p50 * 1000; });
  column("ttft_p99_ms", [](const point& p) { return p.ttft_p99 * 1000; });
  column("tokens_in_ps", [](const point& p) { return p.tokens_in; });
  column("tokens_out_ps", [](const point& p) { return p.tokens_out; });
  column("open_streams", [](const point& p) { return p.open_streams; });
  column("in_flight", [](const point& p) { return p.inflight; });
  out += R"(},"targets":[)";
  bool first_target = true;
  for (const auto& [k, ring] : targets_) {
    const auto group = static_cast<std::uint32_t>(k >> 32);
    const auto target = static_cast<std::uint32_t>(k);
    if (group == 0 || target == 0) continue;  // refused before routing: no target to draw
    if (!first_target) out += ',';
    first_target = false;
    out += R"({"group":)";
    put_string(out, name_of(group));
    out += R"(,"target":)";
    put_string(out, name_of(target));
    for (int c = 0; c < 2; ++c) {
      out += c == 0 ? R"(,"rps":[)" : R"(,"errors":[)";
      for (std::size_t i = first; i < size_; ++i) {
        if (i != first) out += ',';
        put_number(out, ring[index(i)][c]);
      }
      out += ']';
    }
    out += '}';
  }
  out += "]}";
  return out;
}

}  // namespace ob::observe::metrics
