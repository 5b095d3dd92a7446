#include "routing/health.hpp"

namespace ob::routing {
namespace {

std::int64_t ns_of(time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

target_health::target_health(health_options o) : opt_(o), window_(o.window) {}

void target_health::report(outcome o, time_point now, std::optional<millis> retry_after) {
  std::lock_guard lock(mu_);
  // Requests that started before the ejection keep ending for a while; they say nothing
  // about the target after the cooldown, which is what the probe is for.
  if (mode_ == mode::ejected) return;
  bool told_to_wait = retry_after && (o == outcome::rate_limited || o == outcome::overloaded);
  if (mode_ == mode::probing) {
    if (o == outcome::success)
      restore(now);
    else if (told_to_wait)
      eject_for(*retry_after, now);
    else
      eject_with_backoff(now);
    return;
  }
  if (told_to_wait) {
    eject_for(*retry_after, now);  // the upstream said how long; trust it, no doubling
    return;
  }
  if (o == outcome::success) {
    consecutive_ = 0;
    window_.add(now, ok);
    return;
  }
  ++consecutive_;
  window_.add(now, bad);
  if (should_eject_on_failure(now)) eject_with_backoff(now);
}

void target_health::report_check(outcome o, time_point now, std::optional<millis> retry_after) {
  if (o == outcome::success) {
    std::lock_guard lock(mu_);
    if (mode_ != mode::healthy) {
      restore(now);
      return;
    }
  }
  report(o, now, retry_after);
}

bool target_health::should_eject_on_failure(time_point now) const {
  if (opt_.consecutive_failures > 0 && consecutive_ >= opt_.consecutive_failures) return true;
  auto s = window_.sum(now);
  auto total = s[ok] + s[bad];
  return total > 0 && total >= static_cast<std::uint64_t>(std::max(opt_.window_requests, 1)) &&
         static_cast<double>(s[bad]) > opt_.error_ratio * static_cast<double>(total);
}

void target_health::eject_for(millis d, time_point now) {
  d = std::clamp(d, millis{0}, opt_.max_ejection);
  mode_ = mode::ejected;
  until_ = now + d;
  ++ejections_;
  // Outcomes before the ejection must not count again after the recovery.
  consecutive_ = 0;
  window_.clear();
  until_ns_.store(ns_of(until_), std::memory_order_release);
}

void target_health::eject_with_backoff(time_point now) {
  if (mode_ == mode::healthy && restored_at_ && now - *restored_at_ >= opt_.backoff_reset)
    level_ = 0;  // it held up for a while: this is a new incident, not the old one again
  millis d = opt_.base_ejection;
  for (int i = 0; i < level_ && d < opt_.max_ejection; ++i) d *= 2;
  if (level_ < 62) ++level_;
  eject_for(d, now);
}

void target_health::restore(time_point now) {
  mode_ = mode::healthy;
  consecutive_ = 0;
  window_.clear();
  restored_at_ = now;
  until_ns_.store(healthy_mark, std::memory_order_release);
}

bool target_health::probe_lost(time_point now) const {
  return now - probe_started_ >= opt_.probe_timeout;
}

bool target_health::available(time_point now) const {
  auto u = until_ns_.load(std::memory_order_acquire);
  if (u == healthy_mark) return true;
  if (ns_of(now) < u) return false;  // still cooling down: no lock needed
  std::lock_guard lock(mu_);
  switch (mode_) {
    case mode::healthy:
      return true;
    case mode::ejected:
      return now >= until_;
    case mode::probing:
      return probe_lost(now);
  }
  return false;
}

bool target_health::try_acquire_probe(time_point now) {
  auto u = until_ns_.load(std::memory_order_acquire);
  if (u == healthy_mark || ns_of(now) < u) return false;  // the common cases, without the lock
  std::lock_guard lock(mu_);
  bool ready =
      (mode_ == mode::ejected && now >= until_) || (mode_ == mode::probing && probe_lost(now));
  if (!ready) return false;
  mode_ = mode::probing;
  probe_started_ = now;
  return true;
}

void target_health::release_probe() {
  std::lock_guard lock(mu_);
  if (mode_ == mode::probing) mode_ = mode::ejected;  // cooldown already over: next one probes
}

time_point target_health::ejected_until() const {
  std::lock_guard lock(mu_);
  return until_;
}

std::uint64_t target_health::ejections() const {
  std::lock_guard lock(mu_);
  return ejections_;
}

health_state target_health::state(time_point now) const {
  std::lock_guard lock(mu_);
  if (mode_ == mode::healthy) return health_state::healthy;
  if (mode_ == mode::probing && !probe_lost(now)) return health_state::probing;
  return health_state::ejected;
}

void target_health::record_latency(millis ttfb) {
  // 0 means "no sample yet" to the policies, so a measured 0 ms is stored as a tiny value.
  double sample = std::max(static_cast<double>(ttfb.count()), 0.01);
  double cur = ewma_ms_.load(std::memory_order_relaxed);
  double next;
  do {
    next = cur == 0.0 ? sample : cur + opt_.ewma_alpha * (sample - cur);
  } while (!ewma_ms_.compare_exchange_weak(cur, next, std::memory_order_relaxed));
}

std::shared_ptr<target_health> health_registry::get(const std::string& target_id,
                                                    const health_options& o) {
  std::lock_guard lock(mu_);
  auto& weak = items_[target_id];
  auto h = weak.lock();
  if (!h) {
    h = std::make_shared<target_health>(o);
    weak = h;
  }
  // Forget targets nobody holds any more (removed by a reload).
  for (auto it = items_.begin(); it != items_.end();)
    it = it->second.expired() ? items_.erase(it) : std::next(it);
  return h;
}

}  // namespace ob::routing
