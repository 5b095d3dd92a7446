#include "state/redis_backend.hpp"

#include <sys/random.h>

#include <charconv>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <hiredis/hiredis.h>

#include "observe/log.hpp"
#include "state/redis/lua_scripts.hpp"

#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // see redis/client.cpp

namespace ob::state {
namespace {

using limits::budget_unit;
using limits::demand;
using limits::refusal;
using limits::verdict;

using args = redis::arg_buffer;

std::uint64_t divide_up(std::uint64_t limit, unsigned n) {
  if (limit == 0 || n <= 1) return limit;
  return std::max<std::uint64_t>(1, (limit + n - 1) / n);
}

// What a key's budget reserves for a request routed to `t` (nullptr: no target).
std::uint64_t budget_cost(const limits::key_demand& k, const limits::target_demand* t,
                          std::uint64_t in, std::uint64_t out) {
  switch (k.budget.unit) {
    case budget_unit::none:
      return 0;
    case budget_unit::tokens:
      return in + out;
    case budget_unit::usd:
      return t ? usd_cost(t->price, in, out) : 0;
  }
  return 0;
}

bool same(const limits::key_demand& a, const limits::key_demand& b) {
  return a.index == b.index && a.name == b.name && a.limits.rpm == b.limits.rpm &&
         a.limits.rpd == b.limits.rpd && a.limits.tpm == b.limits.tpm &&
         a.limits.tpd == b.limits.tpd && a.limits.concurrency == b.limits.concurrency &&
         a.limits.burst == b.limits.burst && a.budget.unit == b.budget.unit &&
         a.budget.period == b.budget.period && a.budget.amount == b.budget.amount;
}

bool same(const limits::target_demand& a, const limits::target_demand& b) {
  return a.index == b.index && a.id == b.id && a.limits.rpm == b.limits.rpm &&
         a.limits.tpm == b.limits.tpm && a.limits.concurrency == b.limits.concurrency &&
         a.price.input == b.price.input && a.price.output == b.price.output;
}

bool needs_state(const demand& d) {
  if (d.key && (d.key->limits.any() || d.key->budget.unit != budget_unit::none)) return true;
  for (const auto& t : d.targets)
    if (t.limits.any()) return true;
  return false;
}

// An admission whose waiter timed out (it fell back to local limits) while its script may
// still run in Redis: what a release of what the script took needs, copied (the demand and the
// backend may be gone when the late reply comes). Made only on a timeout.
struct late_admission {
  struct target {
    std::string id;
    std::uint64_t tpm;
    bool lease;
    std::uint64_t cost;  // its budget reservation
  };
  std::weak_ptr<settle_batch> batch;
  std::weak_ptr<redis_backend> backend;
  std::string prefix;
  bool one_slot = false;
  std::int64_t now = 0;
  std::uint64_t lease = 0;
  std::uint64_t tokens = 0;
  bool has_key = false;
  std::string key;
  std::uint64_t key_tpm = 0, key_tpd = 0;
  bool key_lease = false;
  bool budget = false;
  std::uint64_t cost = 0;  // the budget reservation with no target chosen
  std::vector<target> targets;
  // The settlements the admission carried, as one settle.lua call (null: none): sent again
  // when the late reply says the script did not run.
  struct carried_call {
    std::size_t settlements = 0, keys = 0;
    redis::arg_buffer args;
  };
  std::unique_ptr<carried_call> carried;
};

// Where an admission's arguments hold the settlements it carries: their keys from `keys_at`,
// their count at `args_at`, then their arguments.
struct carried_span {
  settle_batch::carry c;
  std::size_t keys_at = 0, args_at = 0;
};

// The carried settlements of an admission's arguments `a` as one settle.lua call's: their keys,
// then their count and arguments.
void copy_carried(const args& a, const carried_span& at, args& out) {
  out.add_from(a, at.keys_at, at.c.keys);
  out.add_from(a, at.args_at, 1 + at.c.settlements * settlement_args);
}

// An error reply that says the script did not run: the server had lost it (NOSCRIPT), or its
// slot's keys were split by a migration (TRYAGAIN, after the client's retries).
bool did_not_run(const redisReply* r) {
  if (!r || r->type != REDIS_REPLY_ERROR) return false;
  const std::string_view text(r->str, r->len);
  return text.starts_with("NOSCRIPT") || text.starts_with("TRYAGAIN");
}

// An error reply Redis gives instead of running a script, for as long as its cause lasts (so a
// re-send at once would usually meet it again). Each is given before the script starts
// (Redis 7 server.c processCommand, script.c scriptPrepareForRun; our scripts have no
// shebang, so EVAL/EVALSHA run in compatibility mode with EVAL's own command flags), so
// nothing of it ran, the carried settlements included:
// - BUSY: another script runs past lua-time-limit; every command without the allow-busy flag
//   (EVAL has none) is refused.
// - LOADING: the dataset is loading; commands without the loading flag (EVAL has none) are
//   refused.
// - MASTERDOWN: a replica whose master link is down, with replica-serve-stale-data no: EVAL is
//   a "stale" command, but scriptPrepareForRun refuses a no-shebang script on a stale replica
//   before it runs.
// - CLUSTERDOWN: the cluster cannot serve the slot; refused while routing, before the command.
// - MOVED / ASK: the slot is elsewhere (the client follows it up to max_redirects; past that the
//   reply comes here); refused while routing.
// - READONLY: a read-only replica (the address reached one after a failover). Redis 7 does not
//   refuse a no-shebang EVAL there up front (EVAL has no write flag): the script runs and its
//   first write call fails, so nothing is written. The settlements' pcall (settlements.lua)
//   does not swallow that error: settle.lua and admit.lua return it before anything else, so
//   the reply is READONLY whenever a settlement met the replica. (An admission carrying none
//   fails at its own first write, READONLY too, unless refused for a limit before writing:
//   then it answers normally, which is why admit() does not take such an answer as proof that
//   Redis takes writes again.)
// - MISCONF: a master that stopped taking writes after a failed background save
//   (stop-writes-on-bgsave-error), and NOREPLICAS: fewer good replicas than
//   min-replicas-to-write. As READONLY: not refused up front for a no-shebang EVAL (EVAL has
//   no write flag; processCommand refuses only write commands, and PING for MISCONF), every
//   write call inside the script fails (scriptVerifyWriteCommandAllow), and settle_all returns
//   the error. Each cause holds for the whole script (it changes only in serverCron).
// Not here:
// - OOM: not refused up front either (EVAL has no deny-oom flag); inside a script a deny-oom
//   write fails only until the script has written once, and a settlement's ZREM and PEXPIRE
//   are not deny-oom: part of a script can run.
}  // namespace

bool refused_for_now(const redisReply* r) {
  if (!r || r->type != REDIS_REPLY_ERROR) return false;
  std::string_view code(r->str, r->len);
  code = code.substr(0, code.find(' '));
  return code == "BUSY" || code == "LOADING" || code == "MASTERDOWN" || code == "CLUSTERDOWN" ||
         code == "MOVED" || code == "ASK" || code == "READONLY" || code == "MISCONF" ||
         code == "NOREPLICAS";
}

bool kept_when_refused(const redisReply* r) {
  if (refused_for_now(r)) return true;
  if (!r || r->type != REDIS_REPLY_ERROR) return false;
  return std::string_view(r->str, r->len).starts_with("TRYAGAIN");
}

namespace {

// What admit() gives the client's late_reply handler: valid while admit() waits for the reply.
struct admission_wait {
  const demand* d;
  const std::shared_ptr<settle_batch>* batch;  // the backend's (copied only on a timeout)
  redis_backend* backend;
  std::string_view prefix;
  bool one_slot;
  std::int64_t now;
  std::uint64_t lease;
  const args* a;  // the admission's arguments
  carried_span carried;
};

// The client's late_reply handler of an admission: on the timeout, copies what a release needs;
// when the reply comes and says admitted, queues the release of what the script took (lease,
// tokens, budget reservation), exactly as release() of a failed request would.
void* on_late_admission(void* ctx, redis::errc e, redis::reply_ptr r) {
  if (e == redis::errc::timeout) {
    const auto& w = *static_cast<const admission_wait*>(ctx);
    const demand& d = *w.d;
    auto a = std::make_unique<late_admission>();
    a->batch = *w.batch;
    a->backend = w.backend->weak_from_this();
    a->prefix = w.prefix;
    a->one_slot = w.one_slot;
    a->now = w.now;
    a->lease = w.lease;
    a->tokens = d.input_tokens + d.output_tokens;
    if (const limits::key_demand* k = d.key) {
      a->has_key = true;
      a->key = k->name;
      a->key_tpm = k->limits.tpm;
      a->key_tpd = k->limits.tpd;
      a->key_lease = k->limits.concurrency != 0;
      a->budget = k->budget.unit != budget_unit::none;
      a->cost = budget_cost(*k, nullptr, d.input_tokens, d.output_tokens);
    }
    a->targets.reserve(d.targets.size());
    for (const auto& t : d.targets)
      a->targets.push_back({std::string(t.id), t.limits.tpm, t.limits.concurrency != 0,
                            d.key ? budget_cost(*d.key, &t, d.input_tokens, d.output_tokens) : 0});
    if (w.carried.c.settlements > 0) {
      a->carried = std::make_unique<late_admission::carried_call>();
      a->carried->settlements = w.carried.c.settlements;
      a->carried->keys = w.carried.c.keys;
      copy_carried(*w.a, w.carried, a->carried->args);
    }
    return a.release();
  }
  std::unique_ptr<late_admission> a(static_cast<late_admission*>(ctx));
  const redisReply* rep = r.get();
  if (e == redis::errc::ok && a->carried && did_not_run(rep)) {
    // Nothing ran, the carried settlements included: they go again, once (the admission
    // itself does not: its request was decided by the fallback).
    if (auto batch = a->batch.lock())
      batch->resend(a->carried->settlements, a->carried->keys, a->carried->args.views());
    return nullptr;
  }
  if (e == redis::errc::ok && a->carried && refused_for_now(rep)) {
    // Nothing ran, and would not if sent again at once: kept, re-sent after a backoff, by the
    // backend in use on the connection (a reload may have replaced the one that sent it).
    auto backend = a->backend.lock();
    if (auto batch = a->batch.lock())
      batch->keep_refused(backend.get(), settle_script(), a->carried->settlements, a->carried->keys,
                          a->carried->args.views());
    return nullptr;
  }
  if (e != redis::errc::ok || !rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 12)
    return nullptr;  // never came (the lease expires by its ttl), or the script failed
  auto num = [&](std::size_t i) -> std::int64_t {
    const redisReply* x = rep->element[i];
    return x->type == REDIS_REPLY_INTEGER ? x->integer : 0;
  };
  if (num(0) != 1) return nullptr;  // refused: it took nothing
  auto batch = a->batch.lock();
  if (!batch) return nullptr;
  const std::int64_t chosen = num(3);
  const late_admission::target* t =
      chosen >= 0 && chosen < static_cast<std::int64_t>(a->targets.size()) ? &a->targets[chosen]
                                                                           : nullptr;
  settlement s;
  s.prefix = a->prefix;
  s.one_slot = a->one_slot;
  s.has_key = a->has_key;
  s.key = a->key;
  s.has_target = t != nullptr;
  if (t) s.target = t->id;
  s.now = a->now;
  s.lease = a->lease;
  s.period_start = a->budget ? num(5) : 0;
  s.settle = false;  // a release: everything it reserved goes back
  s.reserved_tokens = a->tokens;
  s.key_tpm = a->key_tpm;
  s.key_tpd = a->key_tpd;
  s.key_lease = a->key_lease;
  s.budget_reserved = t ? t->cost : a->cost;
  s.target_tpm = t ? t->tpm : 0;
  s.target_lease = t && t->lease;
  batch->add(s);
  return nullptr;
}

}  // namespace

std::int64_t period_arg(limits::budget_period p) {
  switch (p) {
    case limits::budget_period::day:
      return 1;
    case limits::budget_period::week:
      return 2;
    case limits::budget_period::month:
      return 3;
  }
  return 3;
}

std::uint64_t usd_cost(const limits::price& p, std::uint64_t input, std::uint64_t output) {
  unsigned __int128 micro_million = static_cast<unsigned __int128>(input) * p.input +
                                    static_cast<unsigned __int128>(output) * p.output;
  unsigned __int128 cost = (micro_million + 999'999) / 1'000'000;
  return cost > ~std::uint64_t{0} ? ~std::uint64_t{0} : static_cast<std::uint64_t>(cost);
}

// admit.lua and settle.lua both apply settlements: settlements.lua's text comes first.
const redis::script& admit_script() {
  static const redis::script s("admit",
                               std::string(redis::lua_settlements) + std::string(redis::lua_admit));
  return s;
}
const redis::script& settle_script() {
  static const redis::script s(
      "settle", std::string(redis::lua_settlements) + std::string(redis::lua_settle));
  return s;
}
const redis::script& renew_script() {
  static const redis::script s("renew", std::string(redis::lua_renew));
  return s;
}
const redis::script& reconcile_script() {
  static const redis::script s("reconcile", std::string(redis::lua_reconcile));
  return s;
}
void register_scripts(redis::client& c) {
  c.add_script(&admit_script());
  c.add_script(&settle_script());
  c.add_script(&renew_script());
  c.add_script(&reconcile_script());
}

redis_backend::redis_backend(std::shared_ptr<redis::client> client, limits::backend* local,
                             redis_backend_options options)
    : client_(std::move(client)),
      local_(local),
      opt_(std::move(options)),
      head_(key_head(opt_.prefix, opt_.cluster)),
      batch_(opt_.batch),
      renew_timer_(client_ ? client_->executor() : boost::asio::any_io_executor{}),
      retry_timer_(client_ ? client_->executor() : boost::asio::any_io_executor{}) {
  if (!batch_ && client_) {
    batch_ = std::make_shared<settle_batch>(client_, opt_.batching);
    own_batch_ = true;
  }
  // Lease ids: 24 random bits per backend (instance and worker), then a 40-bit sequence.
  std::uint32_t r = 0;
  if (getrandom(&r, sizeof r, 0) != sizeof r)
    r = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(this));
  lease_base_ = (static_cast<std::uint64_t>(r & 0xFFFFFF) | 1) << 40;
}

std::string cluster_tag(std::string_view prefix) {
  while (!prefix.empty() && prefix.back() == ':') prefix.remove_suffix(1);
  return prefix.empty() ? std::string("ob") : std::string(prefix);
}

std::string key_head(std::string_view prefix, bool cluster) {
  if (!cluster) return std::string(prefix);
  return std::string(prefix) + "{" + cluster_tag(prefix) + "}:";
}

std::string redis_backend::key_name(std::string_view key, std::string_view part) const {
  redis::arg_buffer a;
  a.add_name(head_, opt_.cluster, "k", key, part);
  return std::string(a.at(0));
}
std::string redis_backend::target_name(std::string_view id, std::string_view part) const {
  redis::arg_buffer a;
  a.add_name(head_, opt_.cluster, "t", id, part);
  return std::string(a.at(0));
}

limits::epoch_ms redis_backend::clock_arg() const {
  return opt_.test_clock ? *opt_.test_clock : 0;
}

void redis_backend::start(bool in_use) {
  if (batch_ && in_use) batch_->refused_to(weak_from_this());  // the newest on the connection
  arm_renewal();
}

void redis_backend::stop() {
  if (batch_ && batch_->refused_taker().get() == this) batch_->refused_to({});
  stopped_ = true;
  renew_timer_.cancel();
  retry_timer_.cancel();
  if (own_batch_) batch_->stop();
}

std::optional<verdict> redis_backend::admit_now(const demand& d) {
  if (!needs_state(d)) {  // an unlimited key on unlimited targets: nothing to count
    verdict v;
    v.target = d.targets.empty() ? -1 : 0;
    v.res.target = v.target;
    return v;
  }
  if (!client_->connected()) return fallback(d);
  return std::nullopt;  // one round trip: co_await admit(d)
}

boost::asio::awaitable<verdict> redis_backend::admit(const demand& d) {
  if (auto now = admit_now(d)) co_return *now;
  // A refusal for want of a free lease gets one more look. Each worker gives leases back on its
  // own connection, and Redis does not order commands across connections: a lease given back
  // just before this admission was sent (the request that held it answered its client after
  // sending the settlement, and the client's next request came to another worker) can still
  // sit unread in Redis's socket buffer when this admission runs. Redis reads what it has
  // before it reads this connection again, so the second look sees it.
  for (int look = 0;; ++look) {
    const limits::key_demand* k = d.key;
    const std::uint64_t est = d.input_tokens + d.output_tokens;
    const std::uint64_t lease = next_lease();
    args a;
    if (k) {
      for (auto part : {"rpm", "rpd", "tpm", "tpd", "conc", "budget"})
        a.add_name(head_, opt_.cluster, "k", k->name, part);
    }
    for (const auto& t : d.targets) {
      for (auto part : {"conc", "rpm", "tpm"}) a.add_name(head_, opt_.cluster, "t", t.id, part);
    }
    // The connection's queued settlements ride along (applied first: they ended before this).
    const settle_batch::carry carried = batch_->carry_keys(a);
    const std::size_t nkeys = (k ? 6 : 0) + 3 * d.targets.size() + carried.keys;
    a.add(clock_arg());
    a.add_u(lease);
    a.add(opt_.lease_ttl.count());
    a.add(std::int64_t{0});  // period start: from TIME
    a.add(std::int64_t{k ? 1 : 0});
    a.add(static_cast<std::int64_t>(d.targets.size()));
    a.add_u(est);
    if (k) {
      a.add_u(k->limits.rpm);
      a.add_u(k->limits.rpd);
      a.add_u(k->limits.burst);
      a.add_u(k->limits.tpm);
      a.add_u(k->limits.tpd);
      a.add_u(k->limits.concurrency);
      a.add_u(k->budget.unit == budget_unit::none ? 0 : k->budget.amount);
      a.add(period_arg(k->budget.period));
      a.add_u(budget_cost(*k, nullptr, d.input_tokens, d.output_tokens));
    } else {
      for (int i = 0; i < 9; ++i) a.add(std::int64_t{0});
    }
    for (const auto& t : d.targets) {
      a.add_u(t.limits.rpm);
      a.add_u(t.limits.tpm);
      a.add_u(t.limits.concurrency);
      a.add_u(k ? budget_cost(*k, &t, d.input_tokens, d.output_tokens) : 0);
    }
    // From here the carried settlements are the connection's: sent with this call, never again
    // unless a reply says the script did not run (a timeout does not undo them; see
    // settle_batch.hpp).
    const carried_span carried_at{carried, nkeys - carried.keys, a.size()};
    batch_->carry_args(a, carried);
    struct reply_came {  // however the wait ends (a destroyed frame included)
      settle_batch* b;
      bool live = false;
      ~reply_came() { b->admitted(live); }
    } guard{batch_.get()};
    // If the reply comes after state.timeout, the request falls back to local limits but the
    // script still runs: the late reply's handler gives back what it took.
    const admission_wait wait{&d,          &batch_, this, head_,     opt_.cluster,
                              clock_arg(), lease,   &a,   carried_at};
    redis::result r = co_await client_->eval(
        admit_script(), nkeys, a.views(), {&on_late_admission, const_cast<admission_wait*>(&wait)});
    const redisReply* rep = r.reply.get();
    if (carried.settlements > 0 && did_not_run(rep)) {  // they go again, once
      args again;
      copy_carried(a, carried_at, again);
      batch_->resend(carried.settlements, carried.keys, again.views());
    }
    if (refused_for_now(rep)) {       // they wait, and go again after a backoff
      if (carried.settlements > 0) {  // kept (and the refusal noted) by the backend in use
        args kept;
        copy_carried(a, carried_at, kept);
        batch_->keep_refused(this, settle_script(), carried.settlements, carried.keys,
                             kept.views());
      } else {
        // Nothing kept: the refusal is noted where the refused calls go, so the usage this
        // request's fallback counts is not flushed blindly into the refusal.
        const auto taker = batch_->refused_taker();
        (taker && !taker->stopped_ ? *taker : *this).note_refusal();
      }
    }
    if (r.error != redis::errc::ok || !rep || rep->type != REDIS_REPLY_ARRAY ||
        rep->elements < 12) {
      if (r.is_error_reply())
        observe::log(observe::level::error,
                     "redis: admit script failed: " + std::string(r.error_text()));
      co_return fallback(d);
    }
    auto num = [&](std::size_t i) -> std::int64_t {
      const redisReply* e = rep->element[i];
      return e->type == REDIS_REPLY_INTEGER ? e->integer : 0;
    };
    ++stats_.redis_admissions;
    verdict v;
    v.kind = static_cast<refusal>(num(1));
    v.retry_after_ms = num(2);
    v.headers = {num(6), num(7), num(8), num(9), num(10), num(11)};
    if (num(0) == 1) {
      v.kind = refusal::none;
      v.target = static_cast<int>(num(3));
      if (v.target >= static_cast<int>(d.targets.size())) v.target = -1;
      auto& res = v.res;
      res.key = k;
      res.target = v.target;
      res.target_ptr = v.target >= 0 ? &d.targets[v.target] : nullptr;
      res.tokens = est;
      res.input_tokens = d.input_tokens;
      res.output_tokens = d.output_tokens;
      res.budget_cost = k ? budget_cost(*k, res.target_ptr, d.input_tokens, d.output_tokens) : 0;
      res.budget_period_start = num(5);
      res.lease = lease;
      guard.live = res.charged();  // it ends with finish()
      if ((k && k->limits.concurrency) || (res.target_ptr && res.target_ptr->limits.concurrency))
        live_.emplace(lease, live_lease{k, res.target_ptr});
    } else if (look == 0 && (v.kind == refusal::concurrency || v.kind == refusal::targets_full)) {
      ++stats_.lease_rechecks;  // a refusal takes nothing: asking again is free of side effects
      continue;
    }
    if (v.kind == refusal::none || !refusing_)
      answered();  // Redis runs scripts (this one wrote): what waited for it goes now
    else
      retry_one();  // refused for a limit, nothing written (a read-only replica answers so too):
                    // one re-send, its reply read, tells whether writes pass again (with
                    // nothing kept, the refusal is over: retry_one)
    co_return v;
  }
}

verdict redis_backend::fallback(const demand& d) {
  if (opt_.on_failure == failure_mode::deny || !local_) {
    ++stats_.unavailable;
    verdict v;
    v.kind = refusal::unavailable;
    return v;
  }
  // Same request against the in-memory state with limits divided by `instances`. The copies
  // live in caches keyed by the snapshot's objects, so the reservation's pointers stay valid
  // until it settles (a changed object under a reused address is detected and rebuilt).
  demand local = d;
  if (d.key) {
    auto& c = divided_keys_[d.key];
    if (!same(c.original, *d.key)) {
      c.original = *d.key;
      c.divided = *d.key;
      auto& l = c.divided.limits;
      unsigned n = opt_.instances;
      l.rpm = divide_up(l.rpm, n), l.rpd = divide_up(l.rpd, n);
      l.tpm = divide_up(l.tpm, n), l.tpd = divide_up(l.tpd, n);
      l.concurrency = divide_up(l.concurrency, n), l.burst = divide_up(l.burst, n);
      c.divided.budget.amount = divide_up(c.divided.budget.amount, n);
    }
    local.key = &c.divided;
  }
  if (!d.targets.empty()) {
    auto& c = divided_targets_[d.targets.data()];
    bool ok = c.original.size() == d.targets.size();
    for (std::size_t i = 0; ok && i < d.targets.size(); ++i) ok = same(c.original[i], d.targets[i]);
    if (!ok) {
      c.original.assign(d.targets.begin(), d.targets.end());
      c.divided = c.original;
      for (auto& t : c.divided) {
        unsigned n = opt_.instances;
        t.limits.rpm = divide_up(t.limits.rpm, n);
        t.limits.tpm = divide_up(t.limits.tpm, n);
        t.limits.concurrency = divide_up(t.limits.concurrency, n);
      }
    }
    local.targets = c.divided;
  }
  auto v = local_->admit_now(local);
  if (!v) {
    ++stats_.unavailable;
    verdict u;
    u.kind = refusal::unavailable;
    return u;
  }
  ++stats_.local_admissions;
  v->res.lease = 0;  // marks a local reservation for settle/release
  return *v;
}

void redis_backend::settle(const limits::reservation& r, const limits::usage& actual) {
  finish(r, &actual);
}
void redis_backend::release(const limits::reservation& r) {
  finish(r, nullptr);
}

void redis_backend::finish(const limits::reservation& r, const limits::usage* actual) {
  if (!r.charged()) return;
  const limits::key_demand* k = r.key;
  std::int64_t tokens = -1;
  std::int64_t spent = -1;  // in the budget's unit
  if (actual && actual->known()) {
    std::uint64_t in = std::max<std::int64_t>(0, actual->input_tokens);
    std::uint64_t out = std::max<std::int64_t>(0, actual->output_tokens);
    tokens = static_cast<std::int64_t>(in + out);
    if (k && k->budget.unit == budget_unit::tokens) spent = tokens;
    if (k && k->budget.unit == budget_unit::usd)
      spent = r.target_ptr ? static_cast<std::int64_t>(usd_cost(r.target_ptr->price, in, out))
                           : std::max<std::int64_t>(0, actual->usd_micros);
  }
  if (r.lease == 0) {  // decided locally while Redis failed
    if (!local_) return;
    if (actual)
      local_->settle(r, *actual);
    else
      local_->release(r);
    if (actual && k && k->budget.unit != budget_unit::none) {
      std::uint64_t add = spent >= 0 ? static_cast<std::uint64_t>(spent) : r.budget_cost;
      if (add) {
        std::string id = std::string(k->name) + '\n' + std::to_string(r.budget_period_start);
        pending_reconcile_[id] += add;
      }
    }
    return;
  }
  live_.erase(r.lease);
  batch_->ended();
  const limits::target_demand* t = r.target_ptr;
  settlement s;
  s.prefix = head_;
  s.one_slot = opt_.cluster;
  s.has_key = k != nullptr;
  if (k) s.key = k->name;
  s.has_target = t != nullptr;
  if (t) s.target = t->id;
  s.now = clock_arg();
  s.lease = r.lease;
  s.period_start = k && k->budget.unit != budget_unit::none ? r.budget_period_start : 0;
  s.settle = actual != nullptr;
  s.reserved_tokens = r.tokens;
  s.actual_tokens = tokens;
  s.key_tpm = k ? k->limits.tpm : 0;
  s.key_tpd = k ? k->limits.tpd : 0;
  s.key_lease = k && k->limits.concurrency;
  s.budget_reserved = r.budget_cost;
  s.budget_actual = spent;
  s.target_tpm = t ? t->limits.tpm : 0;
  s.target_lease = t && t->limits.concurrency;
  if (client_->connected()) {
    batch_->add(s);  // carried by the next admission, or sent within 1 ms
    return;
  }
  // Redis is down: keep it for when it answers again (a budget reservation would otherwise
  // stay reserved until the period ends), within a bound.
  args a;
  if (queued_.size() >= max_queued) {
    queued_.pop_front();
    ++stats_.lost_settlements;
  }
  args one;  // a settle.lua call of one: its keys, the count, its arguments
  const std::size_t nkeys = encode(s, one);
  a.add_from(one, 0, nkeys);
  a.add(std::int64_t{1});
  a.add_from(one, nkeys, settlement_args);
  auto [bytes, spans] = a.take();
  queued_.push_back({&settle_script(), nkeys, std::move(bytes), std::move(spans)});
  ++stats_.queued_settlements;
}

void redis_backend::hand_over(redis_backend& to) {
  if (&to == this) return;
  // What Redis refuses from now on goes to `to` too.
  if (auto t = batch_ ? batch_->refused_taker() : nullptr; batch_ && (!t || t.get() == this))
    batch_->refused_to(to.weak_from_this());
  for (auto& q : queued_) {
    if (to.queued_.size() >= max_queued) {
      to.queued_.pop_front();
      ++to.stats_.lost_settlements;
    }
    to.queued_.push_back(std::move(q));
  }
  queued_.clear();
  for (auto& [id, amount] : pending_reconcile_) to.pending_reconcile_[id] += amount;
  pending_reconcile_.clear();
  if (refusing_ && !to.refusing_ && !to.queued_.empty()) {  // a flag alone tells nothing
    to.refusing_ = true;
    to.refused_tries_ = refused_tries_;
    to.refused_since_ = refused_since_;
  }
  if (to.refusing_) {
    to.arm_retry();
  } else if (client_->connected() && !to.stopped_) {  // Redis is there: no need to wait for traffic
    to.flush_queued();
    to.flush_reconcile();
  }
}

void redis_backend::flush_queued() {
  std::vector<std::string_view> views;
  while (!queued_.empty()) {
    const auto& q = queued_.front();
    views.clear();
    for (auto [at, n] : q.spans) views.emplace_back(q.bytes.data() + at, n);
    if (!client_->eval_detached(*q.script, q.nkeys, views)) return;
    queued_.pop_front();
  }
}

void redis_backend::flush_reconcile() {
  for (auto it = pending_reconcile_.begin(); it != pending_reconcile_.end();) {
    auto nl = it->first.find('\n');
    std::string_view name(it->first.data(), nl);
    std::string_view start(it->first.data() + nl + 1, it->first.size() - nl - 1);
    std::int64_t start_ms = 0;
    std::from_chars(start.data(), start.data() + start.size(), start_ms);
    args a;
    a.add_name(head_, opt_.cluster, "k", name, "budget");
    a.add(start);
    a.add_u(it->second);
    a.add(start_ms + 32 * std::int64_t{86'400'000});  // past any period's end
    if (!client_->eval_detached(reconcile_script(), 1, a.views())) return;
    ++stats_.reconciled;
    it = pending_reconcile_.erase(it);
  }
}

void redis_backend::arm_renewal() {
  if (stopped_) return;
  renew_timer_.expires_after(opt_.renew_every);
  renew_timer_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    auto self = w.lock();
    if (ec || !self || self->stopped_) return;
    self->renew_all();
    self->arm_renewal();
  });
}

void redis_backend::renew_all() {
  if (!client_->connected()) return;
  if (refusing_) {
    // Redis refused the last script: sending the queue blindly would meet the refusal again; one
    // re-send tells (past the retry bound too: at most one per renewal).
    retry_one();
  } else {
    if (!queued_.empty()) flush_queued();  // Redis is back: without waiting for an admission
    if (!pending_reconcile_.empty()) flush_reconcile();
  }
  // Renewals are fire-and-forget and a refused one (BUSY, LOADING...) is not kept: a lease
  // expires lease_ttl after its last renewal, and renewals come every renew_every (lease_ttl / 3
  // in the gateway), so the next one, still sent while Redis refuses, does its work with a
  // renewal period to spare. A re-send would add nothing: each renewal sets the expiry from its
  // own clock. Only a refusal lasting about two renewal periods (20 s by default) lets a lease
  // lapse, as Redis unreachable that long does (docs/SCALING.md).
  for (const auto& [lease, l] : live_) {
    args a;
    std::size_t nkeys = 0;
    if (l.key && l.key->limits.concurrency)
      a.add_name(head_, opt_.cluster, "k", l.key->name, "conc"), ++nkeys;
    if (l.target && l.target->limits.concurrency)
      a.add_name(head_, opt_.cluster, "t", l.target->id, "conc"), ++nkeys;
    a.add(clock_arg());
    a.add_u(lease);
    a.add(opt_.lease_ttl.count());
    client_->eval_detached(renew_script(), nkeys, a.views());
  }
}

void redis_backend::retry_one() {
  if (stopped_ || retry_armed_ || retrying_) return;
  if (queued_.empty()) {
    // Nothing kept to tell by its reply whether Redis takes writes again: the refusal is over
    // for this backend. What else waits goes now: the budget usage counted locally, whose
    // reconcile calls, refused again, are kept like any refused call (settle_batch's
    // detached_error handler), so nothing of it is lost or counted twice.
    answered();
    return;
  }
  boost::asio::co_spawn(client_->executor(), retry_refused(), boost::asio::detached);
}

void redis_backend::note_refusal() {
  if (refusing_) return;
  refusing_ = true;
  refused_tries_ = 0;
  refused_since_ = std::chrono::steady_clock::now();
}

void redis_backend::answered() {
  refusing_ = false;
  refused_tries_ = 0;
  if (!queued_.empty()) flush_queued();
  if (!pending_reconcile_.empty()) flush_reconcile();
}

void redis_backend::keep_refused(const redis::script& s, std::size_t n, std::size_t nkeys,
                                 std::span<const std::string_view> keys_and_args) {
  note_refusal();
  stats_.refused_settlements += n;
  if (queued_.size() >= max_queued) {
    queued_.pop_front();
    ++stats_.lost_settlements;
  }
  args a;
  for (auto v : keys_and_args) a.add(v);
  auto [bytes, spans] = a.take();
  queued_.push_back({&s, nkeys, std::move(bytes), std::move(spans)});
  arm_retry();
}

// Re-sends after 100 ms, 200, 400, 800, then every second, while within refused_retry_for of
// the first refusal; past that the queue waits for an admission Redis answers (or the
// renewal's one re-send).
void redis_backend::arm_retry() {
  if (retry_armed_ || retrying_ || stopped_ || queued_.empty()) return;
  const auto since = std::chrono::steady_clock::now() - refused_since_;
  if (since >= opt_.refused_retry_for) return;
  const auto delay = std::chrono::milliseconds(100 << std::min(refused_tries_, 4u));
  retry_armed_ = true;
  retry_timer_.expires_after(std::min<std::chrono::milliseconds>(delay, std::chrono::seconds(1)));
  retry_timer_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    auto self = w.lock();
    if (!self) return;
    self->retry_armed_ = false;
    if (ec || self->stopped_ || !self->refusing_) return;
    boost::asio::co_spawn(self->client_->executor(), self->retry_refused(), boost::asio::detached);
  });
}

// Sends the first queued call, with its reply read: refused again, it goes back to the front;
// answered, Redis runs scripts again and the rest of the queue goes.
boost::asio::awaitable<void> redis_backend::retry_refused() {
  if (retrying_ || stopped_ || queued_.empty()) co_return;
  auto self = shared_from_this();  // alive until the reply
  retrying_ = true;
  queued_call q = std::move(queued_.front());
  queued_.pop_front();
  std::vector<std::string_view> views;
  views.reserve(q.spans.size());
  for (auto [at, n] : q.spans) views.emplace_back(q.bytes.data() + at, n);
  redis::result r = co_await client_->eval(*q.script, q.nkeys, views);
  retrying_ = false;
  const redisReply* rep = r.reply.get();
  if (r.error == redis::errc::not_connected ||
      (r.error == redis::errc::ok && kept_when_refused(rep))) {
    ++stats_.refused_retries;
    // It did not run: back to the front of the refused calls of the backend in use on the
    // connection (a reload may have replaced this one while the re-send waited; this one may be
    // gone before its queue is handed over).
    const auto taker = batch_->refused_taker();
    redis_backend& into = taker && !taker->stopped_ ? *taker : *this;
    if (&into != this && !into.refusing_) {
      into.refusing_ = true;
      into.refused_tries_ = refused_tries_;
      into.refused_since_ = refused_since_;
    }
    into.queued_.push_front(std::move(q));
    ++into.refused_tries_;
    if (std::chrono::steady_clock::now() - into.refused_since_ >= into.opt_.refused_retry_for) {
      observe::log(observe::level::warn,
                   "redis: still refusing scripts (" +
                       std::string(r.ok() ? r.error_text() : to_string(r.error)) + "); " +
                       std::to_string(into.queued_.size()) +
                       " settlement call(s) wait for the next admission it runs");
      co_return;
    }
    into.arm_retry();
    co_return;
  }
  if (r.error == redis::errc::ok) {  // it ran (or failed as any settlement may)
    answered();
    co_return;
  }
  // A timeout: it still runs when Redis gets to it, as any settlement. The connection lost with
  // it on the wire: lost, as any settlement (settle_batch.hpp).
  if (r.error != redis::errc::timeout) ++stats_.lost_settlements;
}

}  // namespace ob::state
