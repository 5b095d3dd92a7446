#include "limits/memory_backend.hpp"

#include <chrono>

namespace ob::limits {

namespace {

std::uint64_t budget_estimate(const budget_spec& b, const demand& d, const target_demand* t) {
  if (b.unit == budget_unit::tokens) return d.input_tokens + d.output_tokens;
  if (b.unit == budget_unit::usd && t) return usd_cost(t->price, d.input_tokens, d.output_tokens);
  return 0;
}

std::uint64_t budget_actual(const budget_spec& b, const reservation& r, const usage& u) {
  if (!u.known()) return r.budget_cost;  // unknown usage: the reservation is the charge
  auto in = static_cast<std::uint64_t>(std::max<std::int64_t>(0, u.input_tokens));
  auto out = static_cast<std::uint64_t>(std::max<std::int64_t>(0, u.output_tokens));
  if (b.unit == budget_unit::tokens) return in + out;
  if (b.unit == budget_unit::usd && r.target_ptr) return usd_cost(r.target_ptr->price, in, out);
  if (b.unit == budget_unit::usd && u.usd_micros >= 0)
    return static_cast<std::uint64_t>(u.usd_micros);
  return 0;
}

// The checks of one target; commits into `s` only when `commit`.
refusal check_target(const target_demand& t, target_state& s, std::uint64_t tokens, epoch_ms now,
                     epoch_us now_us, std::int64_t& retry_after, bool commit) {
  const auto& l = t.limits;
  if (l.concurrency && s.inflight >= l.concurrency) return refusal::concurrency;
  gcra_result g;
  const auto gp = make_gcra(l.rpm, minute_ms, 0);
  if (l.rpm) {
    g = gcra_check(gp, s.rpm.at(gp, now_us), now_us);
    if (!g.allowed) {
      retry_after = g.retry_after;
      return refusal::rpm;
    }
  }
  token_bucket b = s.tpm;
  if (l.tpm) {
    auto r = bucket_take(make_bucket(l.tpm, minute_ms), b, tokens, now);
    if (!r.allowed) {
      retry_after = r.retry_after;
      return refusal::tpm;
    }
  }
  if (commit) {
    if (l.concurrency) ++s.inflight;
    if (l.rpm) s.rpm.store(gp, g.tat);
    if (l.tpm) s.tpm = b;
  }
  return refusal::none;
}

}  // namespace

epoch_ms wall_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t wall_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<key_state> state_registry::key(const std::string& name) {
  std::lock_guard lock(mu_);
  auto& w = keys_[name];
  auto s = w.lock();
  if (!s) w = s = std::make_shared<key_state>();
  return s;
}

std::shared_ptr<target_state> state_registry::target(const std::string& id) {
  std::lock_guard lock(mu_);
  auto& w = targets_[id];
  auto s = w.lock();
  if (!s) w = s = std::make_shared<target_state>();
  return s;
}

boost::asio::awaitable<verdict> memory_backend::admit(const demand& d) {
  co_return decide(d);
}

verdict memory_backend::decide(const demand& d) {
  verdict v;
  const std::uint64_t tokens = d.input_tokens + d.output_tokens;
  const epoch_ms now = d.now;
  const epoch_us now_us{d.now_us ? d.now_us : now * us_per_ms};
  key_state* ks = d.key && d.key->index < keys_.size() ? keys_[d.key->index].get() : nullptr;
  std::unique_lock<std::mutex> key_lock;
  gcra_result rpm, rpd;
  token_bucket tpm, tpd;
  bucket_result tpm_r, tpd_r;
  const key_limits* kl = nullptr;
  const budget_spec* budget = nullptr;
  gcra_params rpm_p, rpd_p;
  if (ks) {
    kl = &d.key->limits;
    budget = &d.key->budget;
    rpm_p = make_gcra(kl->rpm, minute_ms, kl->burst);
    rpd_p = make_gcra(kl->rpd, day_ms, kl->burst);
    key_lock = std::unique_lock(ks->mu);
    if (budget->unit != budget_unit::none) {
      budget_roll(ks->budget, budget->period, now);
      if (!budget_has_room(ks->budget, budget->amount)) {
        v.kind = refusal::budget;
        v.retry_after_ms = next_period_start(budget->period, now) - now;
        return v;
      }
    }
    if (kl->concurrency && ks->inflight >= kl->concurrency) {
      v.kind = refusal::concurrency;
      v.retry_after_ms = 1000;
      return v;
    }
    auto refuse = [&](refusal k, std::int64_t after) {
      v.kind = k;
      v.retry_after_ms = after;
    };
    if (kl->rpm) {
      rpm = gcra_check(rpm_p, ks->rpm.at(rpm_p, now_us), now_us);
      v.headers.limit_requests = static_cast<std::int64_t>(kl->rpm);
      v.headers.remaining_requests = rpm.remaining;
      v.headers.reset_requests_ms = rpm.reset;
      if (!rpm.allowed) refuse(refusal::rpm, rpm.retry_after);
    }
    if (v.ok() && kl->rpd) {
      rpd = gcra_check(rpd_p, ks->rpd.at(rpd_p, now_us), now_us);
      if (!kl->rpm) {
        v.headers.limit_requests = static_cast<std::int64_t>(kl->rpd);
        v.headers.remaining_requests = rpd.remaining;
        v.headers.reset_requests_ms = rpd.reset;
      }
      if (!rpd.allowed) refuse(refusal::rpd, rpd.retry_after);
    }
    tpm = ks->tpm;
    tpd = ks->tpd;
    if (v.ok() && kl->tpm) {
      auto p = make_bucket(kl->tpm, minute_ms);
      tpm_r = bucket_take(p, tpm, tokens, now);
      v.headers.limit_tokens = static_cast<std::int64_t>(kl->tpm);
      v.headers.remaining_tokens = bucket_remaining(tpm);
      v.headers.reset_tokens_ms = bucket_reset_ms(p, tpm);
      if (!tpm_r.allowed) refuse(refusal::tpm, tpm_r.retry_after);
    }
    if (v.ok() && kl->tpd) {
      auto p = make_bucket(kl->tpd, day_ms);
      tpd_r = bucket_take(p, tpd, tokens, now);
      if (!kl->tpm) {
        v.headers.limit_tokens = static_cast<std::int64_t>(kl->tpd);
        v.headers.remaining_tokens = bucket_remaining(tpd);
        v.headers.reset_tokens_ms = bucket_reset_ms(p, tpd);
      }
      if (!tpd_r.allowed) refuse(refusal::tpd, tpd_r.retry_after);
    }
    if (!v.ok()) return v;
  }
  // Targets: the first candidate with room, in the balancer's order.
  const target_demand* chosen = nullptr;
  std::int64_t target_retry = 0;
  for (std::size_t i = 0; i < d.targets.size(); ++i) {
    const auto& t = d.targets[i];
    target_state* ts = t.index < targets_.size() ? targets_[t.index].get() : nullptr;
    if (!ts || !t.limits.any()) {
      chosen = &t;
      v.target = static_cast<int>(i);
      break;
    }
    std::lock_guard tl(ts->mu);
    std::int64_t after = 1000;
    if (check_target(t, *ts, tokens, now, now_us, after, true) == refusal::none) {
      chosen = &t;
      v.target = static_cast<int>(i);
      break;
    }
    target_retry = target_retry == 0 ? after : std::min(target_retry, after);
  }
  if (!d.targets.empty() && !chosen) {
    v.kind = refusal::targets_full;
    v.retry_after_ms = target_retry > 0 ? target_retry : 1000;
    return v;
  }
  // Everything passed: charge the key.
  auto& r = v.res;
  r.input_tokens = d.input_tokens;
  r.output_tokens = d.output_tokens;
  r.tokens = tokens;
  r.target = v.target;
  r.target_ptr = chosen;
  if (ks) {
    r.key = d.key;
    if (kl->concurrency) ++ks->inflight;
    if (kl->rpm) ks->rpm.store(rpm_p, rpm.tat);
    if (kl->rpd) ks->rpd.store(rpd_p, rpd.tat);
    if (kl->tpm) ks->tpm = tpm;
    if (kl->tpd) ks->tpd = tpd;
    if (budget->unit != budget_unit::none) {
      r.budget_cost = budget_estimate(*budget, d, chosen);
      r.budget_period_start = ks->budget.start;
      ks->budget.reserved += r.budget_cost;
    }
  }
  return v;
}

void memory_backend::settle(const reservation& r, const usage& actual) {
  settle_at(r, actual, wall_now());
}

void memory_backend::release(const reservation& r) {
  release_at(r, wall_now());
}

void memory_backend::settle_at(const reservation& r, const usage& u, epoch_ms now) {
  // What a bucket of `capacity` is charged: the usage when known, else what it reserved (an
  // estimate above the capacity took only the capacity, as the Redis scripts charge it).
  const bool known = u.known();
  const auto actual = static_cast<std::uint64_t>(std::max<std::int64_t>(0, u.input_tokens) +
                                                 std::max<std::int64_t>(0, u.output_tokens));
  auto settle_tokens = [&](std::uint64_t capacity, std::int64_t window_ms, token_bucket& b) {
    const std::uint64_t reserved = std::min<std::uint64_t>(r.tokens, capacity);
    bucket_settle(make_bucket(capacity, window_ms), b, reserved, known ? actual : reserved, now);
  };
  if (r.key && r.key->index < keys_.size()) {
    auto& s = *keys_[r.key->index];
    const auto& l = r.key->limits;
    std::lock_guard lock(s.mu);
    if (l.concurrency && s.inflight) --s.inflight;
    if (l.tpm) settle_tokens(l.tpm, minute_ms, s.tpm);
    if (l.tpd) settle_tokens(l.tpd, day_ms, s.tpd);
    if (r.key->budget.unit != budget_unit::none)
      budget_settle(s.budget, r.budget_period_start, r.budget_cost,
                    budget_actual(r.key->budget, r, u));
  }
  if (r.target_ptr && r.target_ptr->index < targets_.size() && r.target_ptr->limits.any()) {
    auto& s = *targets_[r.target_ptr->index];
    const auto& l = r.target_ptr->limits;
    std::lock_guard lock(s.mu);
    if (l.concurrency && s.inflight) --s.inflight;
    if (l.tpm) settle_tokens(l.tpm, minute_ms, s.tpm);
  }
}

void memory_backend::release_at(const reservation& r, epoch_ms now) {
  if (r.key && r.key->index < keys_.size()) {
    auto& s = *keys_[r.key->index];
    const auto& l = r.key->limits;
    std::lock_guard lock(s.mu);
    if (l.concurrency && s.inflight) --s.inflight;
    if (l.tpm)
      bucket_release(make_bucket(l.tpm, minute_ms), s.tpm, std::min<std::uint64_t>(r.tokens, l.tpm),
                     now);
    if (l.tpd)
      bucket_release(make_bucket(l.tpd, day_ms), s.tpd, std::min<std::uint64_t>(r.tokens, l.tpd),
                     now);
    if (r.key->budget.unit != budget_unit::none)
      budget_release(s.budget, r.budget_period_start, r.budget_cost);
  }
  if (r.target_ptr && r.target_ptr->index < targets_.size() && r.target_ptr->limits.any()) {
    auto& s = *targets_[r.target_ptr->index];
    const auto& l = r.target_ptr->limits;
    std::lock_guard lock(s.mu);
    if (l.concurrency && s.inflight) --s.inflight;
    if (l.tpm)
      bucket_release(make_bucket(l.tpm, minute_ms), s.tpm, std::min<std::uint64_t>(r.tokens, l.tpm),
                     now);
  }
}

void memory_backend::seed_budget(const key_demand& k, std::uint64_t used, epoch_ms now) {
  if (k.budget.unit == budget_unit::none || k.index >= keys_.size() || !keys_[k.index]) return;
  auto& s = *keys_[k.index];
  std::lock_guard lock(s.mu);
  budget_roll(s.budget, k.budget.period, now);
  s.budget.used = std::max(s.budget.used, used);
}

key_usage memory_backend::peek(const key_demand& k, epoch_ms now) const {
  key_usage u;
  if (k.index >= keys_.size() || !keys_[k.index]) return u;
  auto& s = *keys_[k.index];
  const auto& l = k.limits;
  std::lock_guard lock(s.mu);
  if (l.rpm) {
    auto p = make_gcra(l.rpm, minute_ms, l.burst);
    u.rpm_remaining = gcra_remaining(p, s.rpm.at(p, epoch_us::of_ms(now)), now);
  }
  if (l.rpd) {
    auto p = make_gcra(l.rpd, day_ms, l.burst);
    u.rpd_remaining = gcra_remaining(p, s.rpd.at(p, epoch_us::of_ms(now)), now);
  }
  if (l.tpm) {
    auto b = s.tpm;
    bucket_refill(make_bucket(l.tpm, minute_ms), b, now);
    u.tpm_remaining = bucket_remaining(b);
  }
  if (l.tpd) {
    auto b = s.tpd;
    bucket_refill(make_bucket(l.tpd, day_ms), b, now);
    u.tpd_remaining = bucket_remaining(b);
  }
  u.inflight = s.inflight;
  if (k.budget.unit != budget_unit::none) {
    auto start = period_start(k.budget.period, now);
    u.budget_period_start = start;
    u.budget_period_end = next_period_start(k.budget.period, now);
    if (s.budget.start == start) {
      u.budget_used = s.budget.used;
      u.budget_reserved = s.budget.reserved;
    }
  }
  return u;
}

}  // namespace ob::limits
