#include "routing/health.hpp"

#include "observe/health.hpp"

#include <utility>

namespace ob::routing {
namespace {

std::int64_t ns_of(time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

const char* to_string(ejection_reason r) {
  switch (r) {
    case ejection_reason::consecutive_failures:
      return "consecutive_failures";
    case ejection_reason::error_ratio:
      return "error_ratio";
    case ejection_reason::retry_after:
      return "retry_after";
    case ejection_reason::probe_failed:
      return "probe_failed";
    case ejection_reason::count:
      break;
  }
  return "";
}

const char* to_string(health_state s) {
  switch (s) {
    case health_state::healthy:
      return "healthy";
    case health_state::ejected:
      return "ejected";
    case health_state::probing:
      return "probing";
  }
  return "";
}

target_health::target_health(health_options o) : opt_(o), window_(o.window) {}

void target_health::emit(const pending_event& e) const {
  if (!e.event) return;
  observe::health_record r;
  r.event = e.event;
  r.target = label_;
  if (std::string_view(e.event) == "ejected") {
    r.reason = to_string(e.reason);
    r.ejection_ms = e.length.count();
    // The cooldown ends on the steady clock; the log says when on the wall clock.
    r.until = std::chrono::system_clock::now() +
              std::chrono::duration_cast<std::chrono::system_clock::duration>(e.until - e.at);
    r.ejections = static_cast<std::int64_t>(e.ejections);
  }
  observe::health_event(r);
}

health_view target_health::view(time_point now) const {
  health_view v;
  v.state = state(now);
  std::lock_guard lock(mu_);
  v.until = until_;
  v.reason = ejections_ ? to_string(last_reason_) : "";
  v.ejections = ejections_;
  v.by_reason = by_reason_;
  auto s = window_.sum(now);
  v.window_ok = s[ok];
  v.window_failed = s[bad];
  v.in_flight = in_flight();
  v.ewma_ms = ewma_ms();
  return v;
}

void target_health::report(outcome o, time_point now, std::optional<millis> retry_after) {
  pending_event ev;
  {
    std::lock_guard lock(mu_);
    report_locked(o, now, retry_after);
    ev = std::exchange(pending_, {});
  }
  emit(ev);
}

void target_health::report_locked(outcome o, time_point now, std::optional<millis> retry_after) {
  // Requests that started before the ejection keep ending for a while; they say nothing
  // about the target after the cooldown, which is what the probe is for.
  if (mode_ == mode::ejected) return;
  bool told_to_wait = retry_after && (o == outcome::rate_limited || o == outcome::overloaded);
  if (mode_ == mode::probing) {
    if (o == outcome::success)
      restore(now);
    else if (told_to_wait)
      eject_for(*retry_after, now, ejection_reason::retry_after);
    else
      eject_with_backoff(now, ejection_reason::probe_failed);
    return;
  }
  if (told_to_wait) {
    // The upstream said how long; trust it, no doubling.
    eject_for(*retry_after, now, ejection_reason::retry_after);
    return;
  }
  if (o == outcome::success) {
    consecutive_ = 0;
    window_.add(now, ok);
    return;
  }
  ++consecutive_;
  window_.add(now, bad);
  if (should_eject_on_failure(now))
    eject_with_backoff(now,
                       opt_.consecutive_failures > 0 && consecutive_ >= opt_.consecutive_failures
                           ? ejection_reason::consecutive_failures
                           : ejection_reason::error_ratio);
}

void target_health::report_check(outcome o, time_point now, std::optional<millis> retry_after) {
  if (o == outcome::success) {
    pending_event ev;
    {
      std::lock_guard lock(mu_);
      if (mode_ != mode::healthy) {
        restore(now);
        ev = std::exchange(pending_, {});
      }
    }
    if (ev.event) {
      emit(ev);
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

void target_health::eject_for(millis d, time_point now, ejection_reason why) {
  d = std::clamp(d, millis{0}, opt_.max_ejection);
  mode_ = mode::ejected;
  until_ = now + d;
  ++ejections_;
  last_reason_ = why;
  ++by_reason_[static_cast<std::size_t>(why)];
  pending_ = {"ejected", why, d, until_, ejections_, now};
  // Outcomes before the ejection must not count again after the recovery.
  consecutive_ = 0;
  window_.clear();
  until_ns_.store(ns_of(until_), std::memory_order_release);
}

void target_health::eject_with_backoff(time_point now, ejection_reason why) {
  if (mode_ == mode::healthy && restored_at_ && now - *restored_at_ >= opt_.backoff_reset)
    level_ = 0;  // it held up for a while: this is a new incident, not the old one again
  millis d = opt_.base_ejection;
  for (int i = 0; i < level_ && d < opt_.max_ejection; ++i) d *= 2;
  if (level_ < 62) ++level_;
  eject_for(d, now, why);
}

void target_health::restore(time_point now) {
  if (mode_ != mode::healthy) pending_ = {"recovered", {}, {}, {}, ejections_, now};
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
                                                    const health_options& o,
                                                    std::string_view label) {
  std::lock_guard lock(mu_);
  auto& weak = items_[target_id];
  auto h = weak.lock();
  if (!h) {
    h = std::make_shared<target_health>(o);
    h->set_label(std::string(label));  // before anyone else can see it
    weak = h;
  }
  // Forget targets nobody holds any more (removed by a reload).
  for (auto it = items_.begin(); it != items_.end();)
    it = it->second.expired() ? items_.erase(it) : std::next(it);
  return h;
}

}  // namespace ob::routing
