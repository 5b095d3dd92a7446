// The LIMITS spec written out plainly (one process, maps, explicit clock), for the parity
// test: the Redis backend must decide exactly as this does. Once the in-memory backend's
// algorithms (src/limits/algorithms.*) are on this branch, the parity test can drive them too.
#pragma once

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <string>

#include "limits/backend.hpp"
#include "state/redis_backend.hpp"

namespace ob::test {

class spec_model {
 public:
  using epoch_ms = limits::epoch_ms;
  static constexpr epoch_ms minute = 60'000, day = 86'400'000;
  struct check {
    bool present = false, ok = true;
    epoch_ms retry = 0;
    std::int64_t limit = -1, remaining = -1, reset = -1;
    double store = 0;  // the state to write when everything passes
  };

  limits::verdict admit(const limits::demand& d, epoch_ms now, std::uint64_t lease) {
    limits::verdict v;
    const std::uint64_t est = d.input_tokens + d.output_tokens;
    check c[7];
    const limits::key_demand* k = d.key;
    epoch_ms pstart = 0;
    if (k) {
      auto& ks = keys_[std::string(k->name)];
      if (k->budget.unit != limits::budget_unit::none && k->budget.amount) {
        auto [s, next] = bounds(k->budget.period, now);
        pstart = s;
        auto& b = ks.budget[s];
        c[1] = check{true, b.used + b.reserved < k->budget.amount, next - now};
      }
      if (k->limits.concurrency) c[2] = leases(ks.leases, k->limits.concurrency, now);
      if (k->limits.rpm) c[3] = gcra(ks.rpm, k->limits.rpm, k->limits.burst, minute, now);
      if (k->limits.rpd) c[4] = gcra(ks.rpd, k->limits.rpd, k->limits.burst, day, now);
      if (k->limits.tpm) c[5] = bucket(ks.tpm, k->limits.tpm, minute, est, now);
      if (k->limits.tpd) c[6] = bucket(ks.tpd, k->limits.tpd, day, est, now);
      const check& rq = c[3].present ? c[3] : c[4];
      if (rq.present)
        v.headers.limit_requests = rq.limit, v.headers.remaining_requests = rq.remaining,
        v.headers.reset_requests_ms = rq.reset;
      const check& tk = c[5].present ? c[5] : c[6];
      if (tk.present)
        v.headers.limit_tokens = tk.limit, v.headers.remaining_tokens = tk.remaining,
        v.headers.reset_tokens_ms = tk.reset;
      for (int i = 1; i <= 6; ++i)
        if (c[i].present && !c[i].ok) {
          v.kind = static_cast<limits::refusal>(i);
          v.retry_after_ms = c[i].retry;
          return v;
        }
    }
    int chosen = -1;
    check tc[3];
    epoch_ms best = -1;
    for (std::size_t j = 0; j < d.targets.size(); ++j) {
      const auto& t = d.targets[j];
      auto& ts = targets_[std::string(t.id)];
      tc[0] = tc[1] = tc[2] = check{};
      bool ok = true;
      epoch_ms retry = 0;
      if (t.limits.concurrency) {
        tc[0] = leases(ts.leases, t.limits.concurrency, now);
        if (!tc[0].ok) ok = false, retry = tc[0].retry;
      }
      if (ok && t.limits.rpm) {
        tc[1] = gcra(ts.rpm, t.limits.rpm, 0, minute, now);
        if (!tc[1].ok) ok = false, retry = tc[1].retry;
      }
      if (ok && t.limits.tpm) {
        tc[2] = bucket(ts.tpm, t.limits.tpm, minute, est, now);
        if (!tc[2].ok) ok = false, retry = tc[2].retry;
      }
      if (ok) {
        chosen = static_cast<int>(j);
        if (tc[0].present) ts.leases[lease] = now + 30'000;
        if (tc[1].present) ts.rpm = static_cast<epoch_ms>(tc[1].store);
        if (tc[2].present) ts.tpm = {tc[2].store, now, true};
        break;
      }
      if (best < 0 || retry < best) best = retry;
    }
    if (!d.targets.empty() && chosen < 0) {
      v.kind = limits::refusal::targets_full;
      v.retry_after_ms = best;
      return v;
    }
    v.target = chosen;
    auto& r = v.res;
    r.key = k;
    r.target = chosen;
    r.target_ptr = chosen >= 0 ? &d.targets[chosen] : nullptr;
    r.tokens = est;
    r.input_tokens = d.input_tokens;
    r.output_tokens = d.output_tokens;
    r.lease = lease;
    if (k) {
      auto& ks = keys_[std::string(k->name)];
      if (c[1].present) {
        r.budget_cost = cost(*k, r.target_ptr, d.input_tokens, d.output_tokens);
        r.budget_period_start = pstart;
        ks.budget[pstart].reserved += r.budget_cost;
      }
      if (c[2].present) ks.leases[lease] = now + 30'000;
      if (c[3].present) ks.rpm = static_cast<epoch_ms>(c[3].store);
      if (c[4].present) ks.rpd = static_cast<epoch_ms>(c[4].store);
      if (c[5].present) ks.tpm = {c[5].store, now, true};
      if (c[6].present) ks.tpd = {c[6].store, now, true};
    }
    return v;
  }

  // actual == nullptr: release.
  void finish(const limits::reservation& r, const limits::usage* actual, epoch_ms now) {
    std::int64_t used_tokens = -1;
    std::uint64_t in = 0, out = 0;
    if (actual && actual->known()) {
      in = std::max<std::int64_t>(0, actual->input_tokens);
      out = std::max<std::int64_t>(0, actual->output_tokens);
      used_tokens = static_cast<std::int64_t>(in + out);
    }
    auto give_back = [&](bucket_state& b, std::uint64_t cap, epoch_ms period) {
      double charged = static_cast<double>(std::min(r.tokens, cap));
      double used = actual ? (used_tokens < 0 ? charged : static_cast<double>(used_tokens)) : 0;
      refill(b, cap, period, now);
      b.level = std::min<double>(cap, b.level + charged - used);
      b.ts = now;
      b.set = true;
    };
    if (r.key) {
      auto& ks = keys_[std::string(r.key->name)];
      if (r.key->limits.tpm) give_back(ks.tpm, r.key->limits.tpm, minute);
      if (r.key->limits.tpd) give_back(ks.tpd, r.key->limits.tpd, day);
      ks.leases.erase(r.lease);
      if (r.key->budget.unit != limits::budget_unit::none) {
        auto& b = ks.budget[r.budget_period_start];
        b.reserved -= std::min(b.reserved, r.budget_cost);
        if (actual) {
          std::uint64_t spent = r.budget_cost;
          if (used_tokens >= 0)
            spent = r.key->budget.unit == limits::budget_unit::tokens
                        ? in + out
                        : (r.target_ptr ? state::usd_cost(r.target_ptr->price, in, out) : 0);
          b.used += spent;
        }
      }
    }
    if (r.target_ptr) {
      auto& ts = targets_[std::string(r.target_ptr->id)];
      ts.leases.erase(r.lease);
      if (r.target_ptr->limits.tpm) give_back(ts.tpm, r.target_ptr->limits.tpm, minute);
    }
  }

 private:
  struct bucket_state {
    double level = 0;
    epoch_ms ts = 0;
    bool set = false;
  };
  struct budget_state {
    std::uint64_t used = 0, reserved = 0;
  };
  struct key_state {
    epoch_ms rpm = 0, rpd = 0;
    bucket_state tpm, tpd;
    std::map<std::uint64_t, epoch_ms> leases;
    std::map<epoch_ms, budget_state> budget;
  };
  struct target_state {
    epoch_ms rpm = 0;
    bucket_state tpm;
    std::map<std::uint64_t, epoch_ms> leases;
  };

  static std::uint64_t cost(const limits::key_demand& k, const limits::target_demand* t,
                            std::uint64_t in, std::uint64_t out) {
    if (k.budget.unit == limits::budget_unit::tokens) return in + out;
    if (k.budget.unit == limits::budget_unit::usd && t) return state::usd_cost(t->price, in, out);
    return 0;
  }
  static std::pair<epoch_ms, epoch_ms> bounds(limits::budget_period p, epoch_ms now) {
    epoch_ms days = now / day;
    if (p == limits::budget_period::day) return {days * day, (days + 1) * day};
    if (p == limits::budget_period::week) {
      epoch_ms s = days - (days + 3) % 7;
      return {s * day, (s + 7) * day};
    }
    // Months: walk day by day (slow and obviously right).
    auto month_of = [](epoch_ms dd) {
      std::time_t t = dd * 86400;
      std::tm tm;
      gmtime_r(&t, &tm);
      return tm.tm_year * 12 + tm.tm_mon;
    };
    epoch_ms s = days, e = days;
    while (month_of(s - 1) == month_of(days)) --s;
    while (month_of(e) == month_of(days)) ++e;
    return {s * day, e * day};
  }
  static check gcra(epoch_ms tat, std::uint64_t limit, std::uint64_t burst, epoch_ms period,
                    epoch_ms now) {
    check c{true, true, 0, static_cast<std::int64_t>(limit), -1, -1, 0};
    epoch_ms I = std::max<epoch_ms>(1, (period + limit - 1) / limit);
    epoch_ms b = burst ? burst : limit;
    epoch_ms window = (b - 1) * I + I;
    epoch_ms t = std::max(tat, now);
    epoch_ms nt = t + I;
    if (nt - now <= window) {
      c.remaining = std::max<epoch_ms>(0, (window - (nt - now)) / I);
      c.reset = nt - now;
      c.store = static_cast<double>(nt);
    } else {
      c.ok = false;
      c.retry = std::max<epoch_ms>(1, nt - window - now);
      c.remaining = 0;
      c.reset = t - now;
    }
    return c;
  }
  static void refill(bucket_state& b, std::uint64_t cap, epoch_ms period, epoch_ms now) {
    double C = static_cast<double>(cap);
    if (!b.set) {
      b.level = C;
    } else if (now > b.ts) {
      b.level = std::min(C, b.level + static_cast<double>(now - b.ts) * (C / period));
    }
  }
  static check bucket(bucket_state b, std::uint64_t cap, epoch_ms period, std::uint64_t est,
                      epoch_ms now) {
    check c{true, true, 0, static_cast<std::int64_t>(cap), -1, -1, 0};
    refill(b, cap, period, now);
    double C = static_cast<double>(cap), rate = C / period;
    double want = static_cast<double>(std::min(est, cap));
    auto hdr = [&](double l) {
      c.remaining = l <= 0 ? 0 : static_cast<std::int64_t>(std::floor(l + 1e-9));
      c.reset = l >= C ? 0 : static_cast<std::int64_t>(std::ceil((C - l) / rate - 1e-9));
    };
    if (b.level >= want) {
      c.store = b.level - want;
      hdr(c.store);
    } else {
      c.ok = false;
      c.retry = std::max<epoch_ms>(1, static_cast<epoch_ms>(std::ceil((want - b.level) / rate)));
      hdr(b.level);
    }
    return c;
  }
  static check leases(std::map<std::uint64_t, epoch_ms>& l, std::uint64_t limit, epoch_ms now) {
    check c{true, true, 0, -1, -1, -1, 0};
    std::erase_if(l, [&](auto& e) { return e.second <= now; });
    if (l.size() >= limit) {
      c.ok = false;
      epoch_ms first = l.begin()->second;
      for (auto& e : l) first = std::min(first, e.second);
      c.retry = std::min<epoch_ms>(1000, std::max<epoch_ms>(1, first - now));
    }
    return c;
  }

  std::map<std::string, key_state> keys_;
  std::map<std::string, target_state> targets_;
};

}  // namespace ob::test
