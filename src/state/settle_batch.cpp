#include "state/settle_batch.hpp"

#include <algorithm>
#include <charconv>

#include "observe/log.hpp"
#include "state/redis_backend.hpp"

#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // see redis/client.cpp

namespace ob::state {

std::size_t encode(const settlement& s, redis::arg_buffer& out) {
  std::size_t nkeys = 0;
  if (s.has_key) {
    for (auto part : {"tpm", "tpd", "conc", "budget"})
      out.add_name(s.prefix, s.one_slot, "k", s.key, part);
    nkeys += 4;
  }
  if (s.has_target) {
    for (auto part : {"conc", "tpm"}) out.add_name(s.prefix, s.one_slot, "t", s.target, part);
    nkeys += 2;
  }
  out.add(s.now);
  out.add_u(s.lease);
  out.add(s.has_key ? s.period_start : 0);
  out.add(std::int64_t{s.settle ? 1 : 0});
  out.add_u(s.reserved_tokens);
  out.add(s.actual_tokens);
  out.add(std::int64_t{s.has_key ? 1 : 0});
  out.add_u(s.has_key ? s.key_tpm : 0);
  out.add_u(s.has_key ? s.key_tpd : 0);
  out.add(std::int64_t{s.has_key && s.key_lease ? 1 : 0});
  out.add_u(s.budget_reserved);
  out.add(s.budget_actual);
  out.add(std::int64_t{s.has_target ? 1 : 0});
  out.add_u(s.has_target ? s.target_tpm : 0);
  out.add(std::int64_t{s.has_target && s.target_lease ? 1 : 0});
  return nkeys;
}

settle_batch::settle_batch(std::shared_ptr<redis::client> client, options o)
    : client_(std::move(client)), opt_(o), timer_(client_->executor()) {
  client_->set_detached_error(&settle_batch::on_detached_error, this);
}

settle_batch::~settle_batch() {
  client_->clear_detached_error(this);
}

// A fire-and-forget script call answered with an error. Refused (it did not run; TRYAGAIN too,
// after the client's own retries): a settle.lua or reconcile.lua call goes to the refused calls;
// a lease renewal does not (the next renewal, a third of the lease's ttl later, does its work:
// redis_backend::renew_all).
void settle_batch::on_detached_error(void* ctx, const redis::script& s, std::string_view command,
                                     const redisReply* reply) {
  if (!kept_when_refused(reply) || (&s != &settle_script() && &s != &reconcile_script())) return;
  auto* self = static_cast<settle_batch*>(ctx);
  const auto argv = redis::parse_command(command);  // EVALSHA|EVAL, sha|body, numkeys, ...
  std::size_t nkeys = 0, n = 0;
  if (argv.size() < 3 ||
      std::from_chars(argv[2].data(), argv[2].data() + argv[2].size(), nkeys).ec != std::errc{} ||
      nkeys > argv.size() - 3) {
    observe::log(observe::level::warn, "redis: a refused script call could not be read back");
    return;
  }
  const auto keys_and_args = std::span(argv).subspan(3);
  if (&s == &settle_script() && keys_and_args.size() > nkeys)
    std::from_chars(keys_and_args[nkeys].data(),
                    keys_and_args[nkeys].data() + keys_and_args[nkeys].size(), n);
  self->keep_refused(nullptr, s, n, nkeys, keys_and_args);
}

void settle_batch::keep_refused(redis_backend* fallback, const redis::script& s, std::size_t n,
                                std::size_t nkeys,
                                std::span<const std::string_view> keys_and_args) {
  const auto taker = taker_.lock();
  redis_backend* to = taker ? taker.get() : fallback;
  if (to) {
    to->keep_refused(s, n, nkeys, keys_and_args);
    return;
  }
  stats_.lost += n;
  observe::log(observe::level::warn, "redis: " + std::to_string(n) +
                                         " refused settlement(s) lost: no backend to keep them");
}

void settle_batch::add(const settlement& s) {
  if (stopped_) return;
  if (size() >= opt_.max_queued) {
    flush();
    if (size() >= opt_.max_queued) {  // Redis away: the oldest go (their leases expire)
      pop(1);
      ++stats_.lost;
    }
  }
  if (size() == 0) first_at_ = clock::now();
  records_.push_back({buf_.size(), 0});
  records_.back().nkeys = encode(s, buf_);
  ++stats_.queued;
  // Idle worker: no admission is coming to carry it.
  if (admitting_ == 0 && live_ == 0) {
    flush();
    if (size() == 0) return;
  }
  arm(first_at_ + opt_.delay);
}

settle_batch::carry settle_batch::carry_keys(redis::arg_buffer& a) {
  ++admitting_;
  // Too many for one admission (a burst of ends): batch calls first, still before it.
  if (size() > opt_.max_carried) flush();
  carry c;
  c.settlements = std::min(size(), opt_.max_carried);
  for (std::size_t i = head_; i < head_ + c.settlements; ++i) {
    a.add_from(buf_, records_[i].first, records_[i].nkeys);
    c.keys += records_[i].nkeys;
  }
  return c;
}

void settle_batch::carry_args(redis::arg_buffer& a, const carry& c) {
  a.add(static_cast<std::int64_t>(c.settlements));
  for (std::size_t i = head_; i < head_ + c.settlements; ++i)
    a.add_from(buf_, records_[i].first + records_[i].nkeys, settlement_args);
  stats_.carried += c.settlements;
  pop(c.settlements);
}

void settle_batch::flush() {
  while (size() > 0 && client_->connected()) {
    const std::size_t n = std::min(size(), opt_.max_per_call);
    call_.clear();
    std::size_t nkeys = 0;
    for (std::size_t i = head_; i < head_ + n; ++i) {
      call_.add_from(buf_, records_[i].first, records_[i].nkeys);
      nkeys += records_[i].nkeys;
    }
    call_.add(static_cast<std::int64_t>(n));
    for (std::size_t i = head_; i < head_ + n; ++i)
      call_.add_from(buf_, records_[i].first + records_[i].nkeys, settlement_args);
    if (!client_->eval_detached(settle_script(), nkeys, call_.views())) break;
    ++stats_.calls;
    stats_.batched += n;
    pop(n);
  }
  // Still queued: Redis is away; look again a little later (an admission may carry them first).
  if (size() > 0 && !stopped_) arm(clock::now() + std::chrono::milliseconds(100));
}

void settle_batch::resend(std::size_t n, std::size_t nkeys,
                          std::span<const std::string_view> keys_and_args) {
  if (client_->eval_text_detached(settle_script(), nkeys, keys_and_args)) {
    stats_.resent += n;
    return;
  }
  stats_.lost += n;
  observe::log(observe::level::warn,
               "redis: " + std::to_string(n) + " settlement(s) not sent again: no connection");
}

void settle_batch::stop() {
  flush();
  stopped_ = true;
  timer_.cancel();
}

void settle_batch::pop(std::size_t n) {
  head_ += n;
  if (head_ == records_.size()) {  // empty: reuse the buffers from the start
    records_.clear();
    buf_.clear();
    head_ = 0;
  }  // else first_at_ stays that of an older one: the rest is sent no later than planned
}

void settle_batch::arm(clock::time_point at) {
  if (armed_ || stopped_) return;
  armed_ = true;
  timer_.expires_at(at);
  timer_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    auto self = w.lock();
    if (!self) return;
    self->armed_ = false;
    if (!ec && !self->stopped_) self->on_timer();
  });
}

void settle_batch::on_timer() {
  if (size() == 0) return;
  if (clock::now() >= first_at_ + opt_.delay)
    flush();
  else
    arm(first_at_ + opt_.delay);
}

}  // namespace ob::state
