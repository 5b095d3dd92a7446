// The request loop of proxy::exchange: pick a target, try it, and fail over to the next one
// while nothing has reached the client yet. Contract:
//   - before the answer starts (connect/TLS error, reset, no head in time, HTTP 408/409/429/5xx,
//     a stream whose first event is an error) the request is replayed, byte for byte, on the
//     next target the group's policy picks, up to the group's attempt limit and the group's
//     retry budget; a target is never tried twice by one request;
//   - answers that are the client's fault (400, 401, 404, 413, 422, ...) are passed through;
//   - when every attempt failed the client gets the last upstream answer (status and body) or,
//     without one, a 502/504 JSON error;
//   - after the answer started nothing is retried (see relay_stream's error event).
// Every attempt's outcome feeds the target's passive health (routing/health.hpp).
#include <charconv>
#include <utility>

#include "proxy/exchange.hpp"

#include "observe/clock.hpp"
#include "proxy/admission.hpp"
#include "proxy/json/model.hpp"
#include "routing/health.hpp"
#include "routing/policies/select.hpp"
#include "routing/retry.hpp"

namespace ob::proxy {

namespace asio = boost::asio;
using routing::failure_kind;

namespace {

// Reports what an attempt says about its target; a probe that ends with nothing to say
// (the client left) is handed back so the next request can probe.
void report(routing::target_health& h, const routing::selection& sel,
            std::optional<routing::outcome> o,
            std::optional<std::chrono::milliseconds> retry_after = {}) {
  if (o)
    h.report(*o, observe::coarse_now(), retry_after);
  else if (sel.probe)
    h.release_probe();
}

// Attempt outcomes as metric label ids (a fixed set).
struct outcome_labels {
  std::uint32_t ok, connect, tls, timeout, reset, too_large, client_gone, error_event, status_429,
      status_4xx, status_5xx, status_other;
  outcome_labels() {
    auto& l = observe::metrics::labels();
    ok = l.intern("ok");
    connect = l.intern("connect");
    tls = l.intern("tls");
    timeout = l.intern("timeout");
    reset = l.intern("reset");
    too_large = l.intern("too_large");
    client_gone = l.intern("client_gone");
    error_event = l.intern("error_event");
    status_429 = l.intern("status_429");
    status_4xx = l.intern("status_4xx");
    status_5xx = l.intern("status_5xx");
    status_other = l.intern("status_other");
  }
  std::uint32_t of(std::string_view name) const {
    if (name == "ok") return ok;
    if (name == "connect") return connect;
    if (name == "tls") return tls;
    if (name == "timeout") return timeout;
    if (name == "reset") return reset;
    if (name == "too_large") return too_large;
    if (name == "client_gone") return client_gone;
    if (name == "error_event") return error_event;
    if (name == "429") return status_429;
    if (name.size() == 3 && name[0] == '5') return status_5xx;
    if (name.size() == 3 && name[0] == '4') return status_4xx;
    return status_other;
  }
};

const outcome_labels& outcomes() {
  static const outcome_labels o;
  return o;
}

double seconds_since_epoch() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A non-negative number from a rate-limit header, e.g. "4999".
std::optional<double> header_number(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  double d = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec != std::errc() || end == v.data() || d < 0) return std::nullopt;
  return d;
}

}  // namespace

void exchange::end_attempt(const routing::group& g, const routing::target& t,
                           std::string_view outcome) {
  ctx_.metrics.attempt(g.metric_group, t.metric_target, outcomes().of(outcome));
  if (attempt_open_) {
    attempt_open_ = false;
    upstream_wait_ += std::chrono::steady_clock::now() - attempt_start_;
  }
}

void exchange::answer_ready() {
  if (ready_ != std::chrono::steady_clock::time_point{}) return;
  ready_ = std::chrono::steady_clock::now();
  if (attempt_open_) {
    attempt_open_ = false;
    upstream_wait_ += ready_ - attempt_start_;
  }
}

std::size_t exchange::held_stream_size() const {
  return payload_.size() + (ctr_ ? ctr_->held_size() : 0);
}

bool exchange::release_held_stream(std::chrono::steady_clock::time_point hold_until,
                                   std::size_t held_before) {
  // Only on what the last read brought for the client, whole: an opening error event split
  // across reads (its first part now, behind a comment that came earlier) still fails over.
  if (held_stream_size() == held_before || framer_.pending_bytes() > 0 ||
      observe::coarse_now() < hold_until)
    return false;
  if (ctr_) ctr_->release_held(payload_);
  return true;
}

void exchange::note_rate_limits(const routing::target& t) {
  auto requests = resp_headers_.get(http::header_id::x_ratelimit_remaining_requests);
  auto tokens = resp_headers_.get(http::header_id::x_ratelimit_remaining_tokens);
  if (requests.empty() && tokens.empty()) return;
  double now = seconds_since_epoch();
  if (auto v = header_number(requests)) ctx_.metrics.ratelimit(t.metric_target, 0, *v, now);
  if (auto v = header_number(tokens)) ctx_.metrics.ratelimit(t.metric_target, 1, *v, now);
}

failure_kind exchange::kind_of(fail f) {
  switch (f) {
    case fail::connect:
      return failure_kind::connect;
    case fail::tls:
      return failure_kind::tls;
    case fail::timeout:
      return failure_kind::timeout_before_first_byte;
    case fail::broken:
      return failure_kind::reset_before_first_byte;
    case fail::too_large:
      return failure_kind::after_first_byte;  // not worth repeating
    case fail::client_gone:
    case fail::client_body:
    case fail::none:
      break;
  }
  return failure_kind::client_error;
}

const char* exchange::fail_name(fail f) {
  switch (f) {
    case fail::connect:
      return "connect";
    case fail::tls:
      return "tls";
    case fail::timeout:
      return "timeout";
    case fail::broken:
      return "reset";
    case fail::too_large:
      return "too_large";
    case fail::client_gone:
      return "client_gone";
    case fail::client_body:
      return "client_body";
    case fail::none:
      break;
  }
  return "ok";
}

void exchange::begin_request(const exchange_request& r, std::chrono::steady_clock::time_point now) {
  attempts_ = 0;
  target_ = nullptr;
  request_deadline_ = now + observe::coarse_resolution() + r.snap.cfg.timeouts.total;
  client_gone_ = false;
  bytes_out_ = 0;
  usage_ = {};
  max_response_ = r.snap.cfg.limits.max_response_bytes;
  group_literal_ = r.group.name_literal;
  rate_headers_ = r.rate_headers;
  tried_.clear();
  picks_ = {};
  trace_.clear();
  kept_.valid = false;
  codec_refused_ = false;
  strip_usage_ = r.usage.strip_usage_chunk();
  settle_ = r.settle;
  upload_cut_ = false;
  ready_ = {};
  first_data_ = {};
  no_head_ttft_ = false;
  upstream_wait_ = {};
  attempt_open_ = false;
  reset_answer_state();
}

asio::awaitable<void> exchange::keep_answer() {
  kept_.valid = false;
  while (!parser_->is_done()) {
    auto o = co_await read_upstream(up_to_.idle);
    if (o.failure != fail::none) {
      release_upstream(false);
      co_return;
    }
  }
  release_upstream(parser_->keep_alive());
  // A codec target's error answer is kept in the client's (OpenAI) shape, a client dialect's
  // in the client's.
  if ((tr_ || ctr_) && translate_buffered() == dialect::codec_status::bad_answer) co_return;
  kept_.status = parser_->status();
  kept_.reason = parser_->reason();
  int mapped = tr_    ? tr_->client_status(kept_.status)
               : ctr_ ? ctr_->client_status(kept_.status)
                      : kept_.status;
  if (mapped != kept_.status) {
    kept_.status = mapped;
    kept_.reason.clear();
  }
  std::swap(kept_.headers, resp_headers_);
  std::swap(kept_.body, resp_body_);
  kept_.target = target_;
  kept_.valid = true;
}

void exchange::reset_answer_state() {
  terminal_seen_ = false;
  payload_.clear();
  framer_.reset();
  shape_.reset();
  strip_.reset(strip_usage_);
  data_events_ = 0;
  first_event_error_ = false;
  relay_result_ = relay_result::ok;
  if (tr_) spare_tr_ = std::move(tr_);  // kept for the next codec attempt to reuse
  up_req_ = nullptr;
  client_version_ = false;
  if (ctr_) ctr_.reset();  // (a client dialect's last attempt, maybe of an earlier request)
}

bool exchange::client_ready(const exchange_request& r, const routing::target& t) {
  dialect::request_in in{r.req.method, r.req.target, r.req.body.view(), t.provider->name};
  in.max_completion_tokens = t.provider->max_completion_tokens;
  auto& out = cenc_;
  out.req.target.clear();  // (cleared, not replaced: the buffers are reused by the next request)
  out.req.headers.clear();
  out.req.body.clear();
  out.req.stream = false;
  out.passthrough = out.local = false;
  codec_refusal_ = cdialect_->encode_request(in, t.provider->api, out);
  if (!codec_refusal_.ok()) {
    note_attempt(
        t, codec_refusal_.status == dialect::codec_status::bad_request ? "refused" : "unsupported");
    codec_refused_ = true;
    return false;
  }
  if (out.local) return true;
  if (!out.passthrough) up_req_ = &out.req;
  // A pass-through to a target of the client's own API: the client's anthropic-version
  // replaces the default one (a configured one still wins: it is not the default).
  client_version_ = out.passthrough && t.default_version > 0;
  ctr_ = cdialect_->new_translator(in, t.provider->api, r.group.name);
  return true;
}

bool exchange::codec_ready(const exchange_request& r, const routing::target& t) {
  auto status = prepare_codec(r, t);
  if (status == dialect::codec_status::ok) return true;
  note_attempt(t, status == dialect::codec_status::bad_request ? "refused" : "unsupported");
  codec_refused_ = true;
  return false;
}

dialect::codec_status exchange::prepare_codec(const exchange_request& r, const routing::target& t) {
  dialect::request_in in{r.req.method, r.req.target, r.req.body.view(), t.provider->name,
                         r.req.body.capacity()};
  enc_.target.clear();  // (cleared, not replaced: the buffers are reused by the next request)
  enc_.headers.clear();
  enc_.body.clear();
  enc_.stream = false;
  enc_.include_usage = false;
  codec_refusal_ = t.codec->encode_request(in, enc_);
  if (codec_refusal_.ok()) {
    t.codec->renew_translator(spare_tr_, in, enc_, enc_.stream, r.group.name);
    tr_ = std::move(spare_tr_);
    up_req_ = &enc_;
  }
  return codec_refusal_.status;
}

void exchange::use_target(const routing::target& t, const config::timeouts& global,
                          std::chrono::steady_clock::time_point now, observe::request_record& rec) {
  target_ = &t;
  const auto& o = t.provider->timeouts;
  up_to_.connect = o.connect.value_or(global.connect);
  up_to_.first_byte = o.first_byte.value_or(global.first_byte);
  up_to_.idle = o.idle.value_or(global.idle);
  up_to_.total = o.total.value_or(global.total);
  up_to_.pool_idle = o.pool_idle.value_or(global.pool_idle);
  total_deadline_ = std::min(request_deadline_, now + observe::coarse_resolution() + up_to_.total);
  rec.target = t.provider->name;
  rec.provider = t.provider->base;
  rec.labels.target = t.metric_target;
  rec.labels.provider = t.metric_provider;
  rec.labels.model = t.metric_model;
}

void exchange::note_attempt(const routing::target& t, std::string_view what) {
  if (!trace_.empty()) trace_ += ',';
  trace_ += t.provider->name;
  trace_ += ':';
  trace_ += what;
}

std::optional<std::chrono::milliseconds> exchange::retry_after() const {
  if (auto ms = resp_headers_.get(http::header_id::retry_after_ms); !ms.empty())
    if (auto v = routing::parse_retry_after_ms(ms)) return v;
  if (auto s = resp_headers_.get(http::header_id::retry_after); !s.empty())
    return routing::parse_retry_after(s, std::chrono::system_clock::now());
  return std::nullopt;
}

asio::awaitable<std::optional<routing::selection>> exchange::admit_target(
    const exchange_request& r, std::optional<routing::selection> sel) {
  // A target at its provider limits is skipped (kept out of the pick while this runs, as if
  // tried); the first with room is reserved. None: nullopt.
  const auto& g = r.group;
  std::size_t skipped = 0;
  while (sel) {
    const auto& t = g.targets[sel->index];
    auto slot = static_cast<std::size_t>(t.provider - r.snap.cfg.providers.data());
    auto a = r.admit->admit_target(*r.snap_ptr, r.snap.keys.targets[slot]);
    if (a == admission::result::pending) {
      bool ok = co_await r.admit->wait();  // not inside ?: (GCC 12, see client_connection.cpp)
      a = ok ? admission::result::admitted : admission::result::refused;
    }
    if (a == admission::result::admitted) break;
    if (sel->probe) t.health->release_probe();
    tried_.push_back(sel->index);
    ++skipped;
    sel = routing::select(g, observe::coarse_now(), tried_, picks_);
  }
  tried_.resize(tried_.size() - skipped);
  co_return sel;
}

bool exchange::failed_after_head(const routing::group& g, const routing::target& t,
                                 const routing::selection& sel, fail f) {
  auto kind = kind_of(f);
  report(*t.health, sel, routing::health_outcome(kind));
  note_attempt(t, fail_name(f));
  end_attempt(g, t, fail_name(f));
  release_upstream(false);
  return !client_gone_ && routing::retryable(kind);
}

asio::awaitable<bool> exchange::run(exchange_request r, observe::request_record& rec) {
  // One coarse reading for the request's start (deadlines, retry budget, the first pick);
  // each later attempt reads the clock again.
  auto now = observe::coarse_now();
  begin_request(r, now);
  ++ctx_.metrics.inflight;
  active_ = true;  // sweep() starts the client watch if this takes a while
  active_since_ = now;
  if (waker_) waker_->need_fast();  // the sweep loop ticks every 20 ms until run() ends
  const auto& g = r.group;
  g.state->retries.record_request(now);
  std::size_t max_attempts =
      g.max_attempts ? std::min(g.max_attempts, g.targets.size()) : g.targets.size();

  attempt_outcome last;
  bool answered = false;
  bool keep = false;
  bool targets_full = false;
  for (std::size_t n = 0; n < max_attempts && !client_gone_; ++n) {
    if (n > 0) now = observe::coarse_now();
    auto sel = routing::select(g, now, tried_, picks_);
    if (sel && r.admit) {
      sel = co_await admit_target(r, sel);
      targets_full = !sel;
      now = observe::coarse_now();  // admission may have waited
    }
    if (!sel) break;
    const auto& t = g.targets[sel->index];
    auto& health = *t.health;
    routing::in_flight_guard busy(health);
    use_target(t, r.snap.cfg.timeouts, now, rec);
    rec.attempts = attempts_ = static_cast<int>(n + 1);
    reset_answer_state();
    // Whether another target may take over if this one fails now.
    // Not once a streamed upload started to relay its rest: that is gone.
    auto may_retry = [&] {
      return !ctx_.stopping && !(r.streamed && r.streamed->started) && n + 1 < max_attempts &&
             tried_.size() + 1 < g.targets.size() &&
             g.state->retries.try_retry(observe::coarse_now());
    };
    // A translating dialect: the request is encoded before anything is sent. A target that
    // refused it or cannot serve it is skipped (another target may); codec_refused_ remembers.
    // A client dialect (not OpenAI) does the same with the client's request for this target,
    // and takes the place of the target's codec (it knows the target's API).
    if (cdialect_ ? !client_ready(r, t) : t.codec && !codec_ready(r, t)) {
      report(health, *sel, std::nullopt);
      tried_.push_back(sel->index);
      continue;
    }
    if (cdialect_ && cenc_.local) {  // answered by the client codec: nothing goes upstream
      report(health, *sel, std::nullopt);
      answered = true;
      keep = co_await write_local(r, rec);
      break;
    }

    attempt_start_ = std::chrono::steady_clock::now();
    attempt_open_ = true;
    last = co_await attempt(r, t, /*allow_pooled=*/true);
    // A pooled connection the provider closed while idle is not the provider's failure.
    if (last.failure != fail::none && last.retryable && !client_gone_ && !ctx_.stopping)
      last = co_await attempt(r, t, /*allow_pooled=*/false);
    if (last.failure == fail::client_body) {  // the client's upload failed: not the target's
      report(health, *sel, std::nullopt);
      note_attempt(t, fail_name(last.failure));
      end_attempt(g, t, "client_gone");
      break;
    }
    if (last.failure != fail::none) {
      auto kind = kind_of(last.failure);
      report(health, *sel, routing::health_outcome(kind));
      note_attempt(t, fail_name(last.failure));
      end_attempt(g, t, fail_name(last.failure));
      if (client_gone_ || !routing::retryable(kind) || !may_retry()) break;
      tried_.push_back(sel->index);
      continue;
    }
    // A streamed upload the provider answered before its end: the rest stays unread.
    if (r.streamed && !r.streamed->finished) r.client_keep_alive = false;
    // Time to the answer head, for the latency policy and the access line (reported: the
    // precise clock, one read; the attempt's start was read precisely too), without the time
    // a body that did not go out at once took to upload: a client that uploads slowly does
    // not make its provider look slow.
    auto to_head = std::chrono::steady_clock::now() - attempt_start_ - upload_time_;
    health.record_latency(std::chrono::duration_cast<std::chrono::milliseconds>(to_head));
    rec.ttfb_ms = std::chrono::duration<double, std::milli>(to_head).count();

    int status = parser_->status();
    note_rate_limits(t);
    if (status >= 300 && routing::retryable(failure_kind::status, status) && may_retry()) {
      report(health, *sel, routing::health_outcome(failure_kind::status, status), retry_after());
      note_attempt(t, std::to_string(status));
      end_attempt(g, t, std::to_string(status));
      co_await keep_answer();
      tried_.push_back(sel->index);
      continue;
    }
    // `last` (no failure here) takes the reads below: no other outcome in this frame.
    if (mode_ == mode::buffered) {
      // A buffered answer is read whole before any of it goes to the client: one that breaks
      // before its end (a reset, timeouts.idle) has reached no client yet and fails over like
      // one that broke before its head (a body past max_response does not: kind_of).
      while (last.failure == fail::none && !parser_->is_done())
        last = co_await read_upstream(up_to_.idle);
      // A translated answer the codec cannot read is a broken answer too (its translation
      // stays in resp_body_ for relay_buffered).
      if (last.failure == fail::none && (tr_ || ctr_) &&
          translate_buffered() == dialect::codec_status::bad_answer)
        last = attempt_outcome{fail::broken, false, codec_refusal_.message};
      if (last.failure != fail::none) {
        if (!failed_after_head(g, t, *sel, last.failure) || !may_retry()) break;
        tried_.push_back(sel->index);
        continue;
      }
    } else if (mode_ == mode::stream) {
      // Holding the stream's head back until its first data event costs nothing a client can
      // see (SDKs wait for the first event anyway) and lets an opening error event fail over.
      // Not for ever: a provider that sends keep-alive comments through a long prefill means
      // them for the client (an intermediary with an idle limit would cut a silent one), so
      // from timeouts.stream_hold after the head, what it sends releases the head.
      const auto hold_until = observe::coarse_now() + r.snap.cfg.timeouts.stream_hold;
      while (last.failure == fail::none && data_events_ == 0 && !parser_->is_done()) {
        auto held = held_stream_size();
        last = co_await read_upstream(up_to_.first_byte);
        if (last.failure == fail::none && data_events_ == 0 &&
            release_held_stream(hold_until, held))
          break;
      }
      if (last.failure != fail::none) {
        if (!failed_after_head(g, t, *sel, last.failure) || !may_retry()) break;
        tried_.push_back(sel->index);
        continue;
      }
      if (first_event_error_ && may_retry()) {
        report(health, *sel, routing::health_outcome(failure_kind::stream_error_event_first));
        note_attempt(t, "error_event");
        end_attempt(g, t, "error_event");
        release_upstream(false);
        tried_.push_back(sel->index);
        continue;
      }
    }

    // Committed: this answer goes to the client.
    answered = true;
    if (attempts_ > 1) ctx_.metrics.failover(g.metric_group);
    if (mode_ == mode::buffered)
      keep = co_await relay_buffered(r, rec);
    else
      keep = co_await relay_stream(r, rec);
    if (relay_result_ == relay_result::upstream_failed)
      report(health, *sel, routing::health_outcome(failure_kind::after_first_byte));
    else if (relay_result_ == relay_result::client_gone && status < 300)
      report(health, *sel, std::nullopt);
    else if (status >= 300)
      report(health, *sel, routing::health_outcome(failure_kind::status, status), retry_after());
    else if (mode_ == mode::stream && first_event_error_)
      report(health, *sel, routing::health_outcome(failure_kind::stream_error_event_first));
    else
      report(health, *sel, routing::outcome::success);
    {
      char code[4] = {static_cast<char>('0' + status / 100 % 10),
                      static_cast<char>('0' + status / 10 % 10),
                      static_cast<char>('0' + status % 10), 0};
      bool failed = relay_result_ == relay_result::upstream_failed;
      end_attempt(g, t, failed ? "reset" : status < 400 ? "ok" : std::string_view(code, 3));
    }
    break;
  }

  if (!answered && r.streamed && !r.streamed->finished) r.client_keep_alive = false;
  if (!answered && targets_full && attempts_ == 0) {
    // Every target of the group is at its provider limits: nothing was tried.
    r.admit->refuse_targets_full(g.name);
    rec.outcome = "rate_limited";
    keep = co_await write_error(r.admit->kind(), r.admit->message(), r.client_keep_alive, rec,
                                r.admit->headers());
  } else if (!answered && !kept_.valid && codec_refused_ && last.failure == fail::none) {
    keep = co_await write_refusal(r, rec);  // no target could take the request as it is
  } else if (!answered) {
    if (kept_.valid && !client_gone_)
      keep = co_await write_kept_answer(r, rec);
    else
      keep = co_await fail_before_answer(last, r, rec);
  }
  stop_watching_client();
  --ctx_.metrics.inflight;
  // Time to the first token: a stream whose head went out before its first data event
  // (stream_hold) counts that event's write, not the head's, and has none without one.
  if (auto first = no_head_ttft_ ? first_data_ : ready_;
      first != std::chrono::steady_clock::time_point{})
    rec.first_write_ms = std::chrono::duration<double, std::milli>(first - arrived_).count();
  if (upstream_wait_.count() > 0 || attempts_ > 0)
    rec.upstream_ms = std::chrono::duration<double, std::milli>(upstream_wait_).count();
  rec.tried = trace_;
  rec.bytes_out = bytes_out_;
  note_usage(rec);
  settle_ = nullptr;  // a path without a last write here: the caller settles
  co_return keep;
}

void exchange::note_usage(observe::request_record& rec) {
  if (tr_) {  // a codec target: the translator saw the usage, asked for by the client or not
    if (auto u = tr_->usage(); u.present()) usage_ = u;
  }
  if (ctr_) {  // a client dialect: its translator read the usage in either API's shape
    if (auto u = ctr_->usage(); u.present()) usage_ = u;
  }
  if (usage_.present()) {
    rec.prompt_tokens = usage_.prompt_tokens;
    rec.completion_tokens = usage_.completion_tokens;
    rec.total_tokens = usage_.total_tokens;
  }
}

void exchange::settle_early(observe::request_record& rec) {
  if (!settle_) return;
  note_usage(rec);
  std::exchange(settle_, nullptr)->settle_now(rec);
}

asio::awaitable<bool> exchange::fail_before_answer(const attempt_outcome& o,
                                                   const exchange_request& r,
                                                   observe::request_record& rec) {
  if (o.failure == fail::client_body) co_return co_await write_body_error(r, rec);
  release_upstream(false);
  detail_ = o.detail.empty() ? std::string_view("no provider of the group could be tried")
                             : o.detail.view();
  if (r.streamed && r.streamed->started)
    detail_ += " (the upload was relayed as it arrived, so it is not sent to another provider)";
  rec.detail = detail_;
  if (o.failure == fail::client_gone || client_gone_) {
    rec.outcome = "client_cancelled";
    rec.status = 499;
    co_return false;
  }
  if (ctx_.stopping) {
    rec.outcome = "shutdown";
    rec.detail = "shutdown grace period over";
    bool keep = co_await write_error(http::error_kind::unavailable,
                                     "The gateway is shutting down; the request was not completed.",
                                     false, rec);
    co_return keep;
  }
  http::error_kind kind = http::error_kind::upstream_unreachable;
  rec.outcome = "upstream_error";
  if (o.failure == fail::timeout) {
    kind = http::error_kind::upstream_timeout;
    rec.outcome = "upstream_timeout";
  } else if (o.failure == fail::broken || o.failure == fail::too_large) {
    kind = http::error_kind::upstream_bad_answer;
  }
  std::string extra;
  if (attempts_ > 0 && r.snap.cfg.headers.expose_routing) {
    extra = "x-openbridge-attempts: " + std::to_string(attempts_) + "\r\n";
    if (target_)
      extra += "x-openbridge-model: " + target_->provider->name +
               "\r\nx-openbridge-provider: " + target_->provider->url.host_header + "\r\n";
  }
  co_return co_await write_error(kind, detail_, r.client_keep_alive, rec, extra);
}

}  // namespace ob::proxy
