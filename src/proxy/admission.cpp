#include "proxy/admission.hpp"

#include <algorithm>

#include "limits/algorithms.hpp"
#include "proxy/context.hpp"
#include "proxy/snapshot.hpp"

namespace ob::proxy {

namespace {

// One clock read for both of a demand's clocks.
void stamp(limits::demand& d) {
  d.now_us = limits::wall_now_us();
  d.now = d.now_us / limits::us_per_ms;
}

void append_number(std::string& out, std::int64_t v) {
  char buf[24];
  auto n = std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  out.append(buf, static_cast<std::size_t>(n));
}

void append_duration(std::string& out, std::int64_t ms) {
  char buf[32];
  out.append(buf, limits::format_duration(ms, buf));
}

// The six x-ratelimit-* headers (those with numbers).
void append_rate_headers(std::string& out, const limits::rate_headers& h) {
  if (h.limit_requests >= 0) {
    out += "x-ratelimit-limit-requests: ";
    append_number(out, h.limit_requests);
    out += "\r\nx-ratelimit-remaining-requests: ";
    append_number(out, h.remaining_requests);
    out += "\r\nx-ratelimit-reset-requests: ";
    append_duration(out, h.reset_requests_ms);
    out += "\r\n";
  }
  if (h.limit_tokens >= 0) {
    out += "x-ratelimit-limit-tokens: ";
    append_number(out, h.limit_tokens);
    out += "\r\nx-ratelimit-remaining-tokens: ";
    append_number(out, h.remaining_tokens);
    out += "\r\nx-ratelimit-reset-tokens: ";
    append_duration(out, h.reset_tokens_ms);
    out += "\r\n";
  }
}

void append_retry_after(std::string& out, std::int64_t ms) {
  out += "Retry-After: ";
  append_number(out, std::max<std::int64_t>(1, (ms + 999) / 1000));
  out += "\r\n";
}

struct limit_text {
  std::string_view name, what;
};

limit_text text_of(limits::refusal r) {
  using limits::refusal;
  switch (r) {
    case refusal::rpm:
      return {"rpm", "requests per minute (rpm)"};
    case refusal::rpd:
      return {"rpd", "requests per day (rpd)"};
    case refusal::tpm:
      return {"tpm", "tokens per minute (tpm)"};
    case refusal::tpd:
      return {"tpd", "tokens per day (tpd)"};
    case refusal::concurrency:
      return {"concurrency", "concurrent requests (concurrency)"};
    case refusal::budget:
      return {"budget", "budget"};
    case refusal::targets_full:
      return {"provider", "provider limits"};
    default:
      return {"state", "limits state"};
  }
}

std::uint64_t limit_value(const limits::key_limits& l, limits::refusal r) {
  using limits::refusal;
  switch (r) {
    case refusal::rpm:
      return l.rpm;
    case refusal::rpd:
      return l.rpd;
    case refusal::tpm:
      return l.tpm;
    case refusal::tpd:
      return l.tpd;
    case refusal::concurrency:
      return l.concurrency;
    default:
      return 0;
  }
}

}  // namespace

key_state check_key(const limits::key_entry& k) {
  if (k.cfg->disabled) return key_state::disabled;
  if (k.cfg->expires_ms && limits::wall_now() >= *k.cfg->expires_ms) return key_state::expired;
  return key_state::usable;
}

void admission::estimate(std::size_t body_bytes, std::int64_t output_cap,
                         std::uint64_t default_output_tokens) {
  // No model writes a billion tokens: a larger max_tokens (int64's largest, say) reserves that
  // much, which keeps every sum and cost the backends compute far from overflowing (Redis
  // refuses an integer out of range halfway through its admission script).
  constexpr std::uint64_t max_output_estimate = 1'000'000'000;
  input_est_ = limits::input_estimate(body_bytes);
  output_est_ =
      std::min(output_cap >= 0 ? static_cast<std::uint64_t>(output_cap) : default_output_tokens,
               max_output_estimate);
}

admission::result admission::admit_key(const std::shared_ptr<const snapshot>& snap,
                                       const limits::key_entry& key) {
  success_headers_.clear();
  if (!key.limited) return result::admitted;
  pick_backend(snap);
  demand_ = {};
  demand_.key = &key.demand;
  demand_.input_tokens = input_est_;
  demand_.output_tokens = output_est_;
  stamp(demand_);
  snap_ = snap;
  pending_key_ = &key;
  auto v = backend_->admit_now(demand_);
  if (!v) return result::pending;  // a backend with a round trip: wait()
  return apply_key(*v) ? result::admitted : result::refused;
}

void admission::pick_backend(const std::shared_ptr<const snapshot>& snap) {
  if (!hooks_) {
    backend_ = snap->keys.active;
    return;
  }
  backend_ = hooks_->backend_for(*snap, backend_hold_);
}

const limits::reservation* admission::settling_key(const observe::request_record& rec) const {
  if (!key_held_) return nullptr;
  limits::usage u{rec.prompt_tokens, rec.completion_tokens};
  bool answered = rec.ttfb_ms >= 0 && rec.status > 0 && rec.status < 400;
  return u.known() || answered ? &key_res_ : nullptr;
}

bool admission::apply_key(const limits::verdict& v) {
  const auto& key = *pending_key_;
  pending_key_ = nullptr;
  if (!v.ok()) {
    refuse(v, key);
    if (!target_held_) snap_.reset(), backend_hold_.reset();
    return false;
  }
  key_res_ = v.res;
  key_held_ = true;
  append_rate_headers(success_headers_, v.headers);
  return true;
}

admission::result admission::admit_target(const std::shared_ptr<const snapshot>& snap,
                                          const limits::target_demand& t) {
  // The previous attempt's target is given back first, also when this one has no limits:
  // held, it stayed full while another target served the request, and was charged its usage.
  if (target_held_) {
    backend_->release(target_res_);
    target_held_ = false;
  }
  if (!t.limits.any()) return result::admitted;
  if (!key_held_) pick_backend(snap);
  demand_ = {};
  demand_.targets = {&t, 1};
  demand_.input_tokens = input_est_;
  demand_.output_tokens = output_est_;
  stamp(demand_);
  if (!snap_) snap_ = snap;
  pending_target_ = true;
  auto v = backend_->admit_now(demand_);
  if (!v) return result::pending;
  return apply_target(*v) ? result::admitted : result::refused;
}

bool admission::apply_target(const limits::verdict& v) {
  pending_target_ = false;
  if (!v.ok()) {
    targets_unavailable_ = targets_unavailable_ || v.kind == limits::refusal::unavailable;
    auto after = v.retry_after_ms > 0 ? v.retry_after_ms : 1000;
    target_retry_ms_ = target_retry_ms_ == 0 ? after : std::min(target_retry_ms_, after);
    return false;
  }
  target_res_ = v.res;
  target_held_ = true;
  return true;
}

boost::asio::awaitable<bool> admission::wait() {
  auto v = co_await backend_->admit(demand_);
  co_return pending_key_ ? apply_key(v) : apply_target(v);
}

void admission::refuse_targets_full(std::string_view group) {
  refusal_headers_.clear();
  if (std::exchange(targets_unavailable_, false)) {
    // The state backend could not be asked (on_failure "deny"): not a limit reached.
    target_retry_ms_ = 0;
    refusal_kind_ = http::error_kind::state_unavailable;
    refused_limit_ = text_of(limits::refusal::unavailable).name;
    message_ = "The limits state is unavailable; try again later.";
    return;
  }
  refusal_kind_ = http::error_kind::rate_limit_requests;
  refused_limit_ = "provider";
  message_ = "Every provider of model '";
  message_ += group;
  message_ += "' is at its rate or concurrency limit; try again later.";
  append_retry_after(refusal_headers_, target_retry_ms_ > 0 ? target_retry_ms_ : 1000);
  target_retry_ms_ = 0;
}

void admission::refuse(const limits::verdict& v, const limits::key_entry& key) {
  using limits::refusal;
  auto t = text_of(v.kind);
  refused_limit_ = t.name;
  waitable_ = v.kind == refusal::rpm || v.kind == refusal::rpd || v.kind == refusal::tpm ||
              v.kind == refusal::tpd || v.kind == refusal::concurrency;
  retry_ms_ = v.retry_after_ms;
  refusal_headers_.clear();
  message_.clear();
  if (v.kind == refusal::unavailable) {
    refusal_kind_ = http::error_kind::state_unavailable;
    message_ = "The limits state is unavailable; try again later.";
    return;
  }
  append_retry_after(refusal_headers_, v.retry_after_ms);
  append_rate_headers(refusal_headers_, v.headers);
  if (v.kind == refusal::budget) {
    refusal_kind_ = http::error_kind::insufficient_quota;
    message_ = "Key '";
    message_ += key.demand.name;
    message_ += "' has used its budget for this period; it renews in ";
    append_duration(message_, v.retry_after_ms);
    message_ += '.';
    return;
  }
  refusal_kind_ = v.kind == refusal::tpm || v.kind == refusal::tpd
                      ? http::error_kind::rate_limit_tokens
                      : http::error_kind::rate_limit_requests;
  message_ = "Rate limit reached for ";
  message_ += t.what;
  message_ += " of key '";
  message_ += key.demand.name;
  message_ += "': limit ";
  append_number(message_, static_cast<std::int64_t>(limit_value(key.demand.limits, v.kind)));
  message_ += ". Please try again in ";
  append_duration(message_, v.retry_after_ms);
  message_ += '.';
}

const config::provider* served_provider(const config::config& cfg,
                                        const observe::request_record& rec) {
  for (const auto& p : cfg.providers)
    if (p.group == rec.group && p.name == rec.target && p.base == rec.provider) return &p;
  return nullptr;
}

void admission::finish(const observe::request_record& rec) {
  pending_key_ = nullptr;
  pending_target_ = false;
  // What the refused targets of this request said must not colour the next one's answer (the
  // admission serves every request of its connection).
  targets_unavailable_ = false;
  target_retry_ms_ = 0;
  if (!key_held_ && !target_held_) {
    snap_.reset();
    backend_hold_.reset();
    return;
  }
  limits::usage u;
  u.input_tokens = rec.prompt_tokens;
  u.output_tokens = rec.completion_tokens;
  // A USD budget: the key was reserved before any target was chosen; price what was used at the
  // provider that answered (config check makes every provider such a key may use priced).
  if (key_held_ && key_res_.key && key_res_.key->budget.unit == limits::budget_unit::usd &&
      u.known() && snap_) {
    if (const auto* p = served_provider(snap_->cfg, rec); p && p->price)
      u.usd_micros = static_cast<std::int64_t>(
          limits::usd_cost({p->price->input, p->price->output},
                           static_cast<std::uint64_t>(std::max<std::int64_t>(0, u.input_tokens)),
                           static_cast<std::uint64_t>(std::max<std::int64_t>(0, u.output_tokens))));
  }
  // Usage known: settle it. An upstream answer without usage: the reservation is the charge.
  // No upstream answer, or an error answer without usage: nothing was used, release.
  bool answered = rec.ttfb_ms >= 0 && rec.status > 0 && rec.status < 400;
  bool settle = u.known() || answered;
  if (key_held_) settle ? backend_->settle(key_res_, u) : backend_->release(key_res_);
  if (target_held_) settle ? backend_->settle(target_res_, u) : backend_->release(target_res_);
  key_held_ = target_held_ = false;
  snap_.reset();
  backend_hold_.reset();
}

void admission::finish_release() {
  if (key_held_) backend_->release(key_res_);
  if (target_held_) backend_->release(target_res_);
  key_held_ = target_held_ = false;
  pending_key_ = nullptr;
  pending_target_ = false;
  targets_unavailable_ = false;
  target_retry_ms_ = 0;
  snap_.reset();
  backend_hold_.reset();
}

}  // namespace ob::proxy
