// The Redis limits backend: the same decisions as the in-memory backend (LIMITS spec,
// src/limits/algorithms.*), shared by every gateway instance using one Redis.
//
// One per worker thread, beside that worker's redis::client (no locks). Admission is one
// EVALSHA of admit.lua per request (all checks and charges, atomically, on Redis TIME);
// settle/release are queued on the connection's settle_batch and carried by its next
// admission (or sent in one settle.lua call of several when none comes within 1 ms), so under
// load a request costs one script call.
// Concurrency leases (zset members, 30 s ttl) of requests still in flight are renewed every
// 10 s in one pipelined batch, so a long stream keeps its lease and a dead holder's lease
// expires by itself.
//
// Redis down or late (`state.timeout`): with on_failure "local" the request is decided by the
// in-memory backend with every limit divided by `state.instances` (rounded up, at least 1);
// budget usage counted meanwhile is added to Redis once it answers again (best effort). With
// "deny" the verdict is refusal::unavailable (the caller answers 503 state_unavailable).
// A late admission still runs in Redis: when its late reply says admitted, what it took (lease,
// tokens, budget reservation) is released through the connection's settle_batch (the client's
// late_reply handler; only a timeout allocates, to copy what the release needs).
//
// Wiring (per worker, on its thread, when config.state.redis is set):
//   auto c = std::make_shared<redis::client>(ex, {.address = *cfg.state.redis,
//                                                .timeout = cfg.state.timeout});
//   register_scripts(*c); c->start();
//   auto q = std::make_shared<settle_batch>(c);   (one per connection)
//   auto b = std::make_shared<redis_backend>(c, &memory, {.prefix, .on_failure, .instances,
//                                                       .batch = q});
//   b->start();   ...   b->stop(); q->stop(); c->stop();   (at shutdown)
// then, per request, exactly as with the in-memory backend: admit_now(d), else co_await
// admit(d); settle/release on the same worker. `memory` is the in-memory backend the gateway
// uses without Redis (its state is the local fallback's). Create with std::make_shared.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "limits/backend.hpp"
#include "state/redis/client.hpp"
#include "state/settle_batch.hpp"

namespace ob::state {

enum class failure_mode { local, deny };

struct redis_backend_options {
  std::string prefix = "ob:";  // key names: <prefix>{k:<name>}:rpm, <prefix>{t:<id>}:tpm ...
  // Redis Cluster (state.cluster): every key under one hash tag, <prefix>{<tag>}:k:<name>:rpm,
  // <prefix>{<tag>}:t:<id>:tpm ..., so every script touches one slot (docs/SCALING.md).
  bool cluster = false;
  failure_mode on_failure = failure_mode::local;
  unsigned instances = 1;  // gateways sharing the Redis: local limits are divided by this
  std::chrono::milliseconds lease_ttl{30'000};
  std::chrono::milliseconds renew_every{10'000};
  // Settlement calls Redis refused to run for a while (refused_for_now: BUSY, LOADING,
  // MASTERDOWN, CLUSTERDOWN, MOVED/ASK past the redirect limit, READONLY, MISCONF,
  // NOREPLICAS): re-sent after 100 ms doubling to 1 s for this long after the first refusal,
  // then kept until Redis answers an admission.
  std::chrono::milliseconds refused_retry_for{5'000};
  // Tests only: the clock the scripts use instead of Redis TIME (0 = TIME).
  const limits::epoch_ms* test_clock = nullptr;
  // The settlements' queue of the client's connection, shared by the backends using it; null:
  // the backend makes its own with `batching` (and stops it with itself).
  std::shared_ptr<settle_batch> batch;
  settle_batch::options batching;
};

// The scripts of src/state/redis/*.lua; register them on each client before start().
const redis::script& admit_script();
const redis::script& settle_script();
const redis::script& renew_script();
const redis::script& reconcile_script();
void register_scripts(redis::client& c);

class redis_backend final : public limits::backend,
                            public std::enable_shared_from_this<redis_backend> {
 public:
  // `local`: the in-memory backend for on_failure "local" (may be null: then "deny").
  redis_backend(std::shared_ptr<redis::client> client, limits::backend* local,
                redis_backend_options options);

  // Lease renewal timer. `in_use`: this backend is the one in use on its connection (the
  // newest), so calls Redis refuses go to it (settle_batch::refused_to); false for a backend
  // made for a request still on an older snapshot, retired at once.
  void start(bool in_use = true);
  void stop();

  std::optional<limits::verdict> admit_now(const limits::demand& d) override;
  boost::asio::awaitable<limits::verdict> admit(const limits::demand& d) override;
  void settle(const limits::reservation& r, const limits::usage& actual) override;
  void release(const limits::reservation& r) override;

  struct counters {
    std::uint64_t redis_admissions = 0;     // decided by admit.lua
    std::uint64_t local_admissions = 0;     // decided by the in-memory fallback
    std::uint64_t lease_rechecks = 0;       // lease refusals asked again (redis_backend::admit)
    std::uint64_t unavailable = 0;          // refused as state_unavailable
    std::uint64_t queued_settlements = 0;   // settle/release held while Redis was down, sent later
    std::uint64_t lost_settlements = 0;     // beyond the queue's bound: leases expire by themselves
    std::uint64_t reconciled = 0;           // local budget amounts added back to Redis
    std::uint64_t refused_settlements = 0;  // carried by an admission Redis refused to run
    std::uint64_t refused_retries = 0;      // re-sends of those that Redis refused again
  };
  const counters& stats() const { return stats_; }
  std::size_t live_leases() const { return live_.size(); }
  std::size_t queued() const { return queued_.size(); }
  // What still waits for Redis (queued settlements, budget usage counted locally) moves to
  // `to`, which sends it once Redis answers: a reload replaced this backend (a settlement's
  // bytes name everything it needs; nothing points into this backend's snapshot).
  void hand_over(redis_backend& to);
  settle_batch& batch() { return *batch_; }
  // At most this many settlements wait for Redis to come back; older ones are dropped.
  static constexpr std::size_t max_queued = 10'000;

  // A call Redis refused to run (refused_for_now): `n` settlements (one settle.lua call: keys,
  // count, arguments) an admission carried or a batch call sent, or a reconcile.lua call (n 0):
  // kept with those held while Redis is unreachable, re-sent after a backoff within
  // `refused_retry_for`, then with the first admission Redis runs. The connection's
  // settle_batch::keep_refused routes each to the backend in use.
  void keep_refused(const redis::script& s, std::size_t n, std::size_t nkeys,
                    std::span<const std::string_view> keys_and_args);

  // Key names (exposed for tests and docs).
  std::string key_name(std::string_view key, std::string_view part) const;
  std::string target_name(std::string_view id, std::string_view part) const;

 private:
  struct live_lease {
    const limits::key_demand* key;
    const limits::target_demand* target;
  };
  // A script call kept while Redis is unreachable: the argument bytes and their spans.
  struct queued_call {
    const redis::script* script;
    std::size_t nkeys;
    std::string bytes;
    std::vector<std::pair<std::size_t, std::size_t>> spans;
  };
  struct divided_key {
    limits::key_demand original, divided;
  };
  struct divided_targets {
    std::vector<limits::target_demand> original, divided;
  };

  limits::verdict fallback(const limits::demand& d);
  void finish(const limits::reservation& r, const limits::usage* actual);
  void flush_reconcile();
  void flush_queued();
  void renew_all();
  void arm_renewal();
  void arm_retry();
  void note_refusal();  // Redis refused a script
  void answered();      // ...and ran one again
  void retry_one();     // while refusing: one re-send now (none in flight or armed)
  boost::asio::awaitable<void> retry_refused();
  limits::epoch_ms clock_arg() const;
  std::uint64_t next_lease() { return lease_base_ | (++lease_seq_ & ((1ull << 40) - 1)); }

  std::shared_ptr<redis::client> client_;
  limits::backend* local_;
  redis_backend_options opt_;
  std::string head_;  // what every key name starts with: key_head(prefix, cluster)
  std::shared_ptr<settle_batch> batch_;
  bool own_batch_ = false;
  boost::asio::steady_timer renew_timer_;
  bool stopped_ = false;
  std::uint64_t lease_base_;
  std::uint64_t lease_seq_ = 0;
  std::unordered_map<std::uint64_t, live_lease> live_;
  std::unordered_map<const limits::key_demand*, divided_key> divided_keys_;
  std::unordered_map<const limits::target_demand*, divided_targets> divided_targets_;
  // Budget usage counted locally while Redis failed: (key, period start) -> amount.
  std::unordered_map<std::string, std::uint64_t> pending_reconcile_;
  std::deque<queued_call> queued_;  // settlements to send once Redis answers again
  // Redis refused a script (BUSY, LOADING...): queued_ is not flushed blindly (by the renewal)
  // until Redis answers again; a retry re-sends its first call after a backoff.
  bool refusing_ = false;
  unsigned refused_tries_ = 0;  // refused re-sends since the first refusal
  std::chrono::steady_clock::time_point refused_since_{};
  boost::asio::steady_timer retry_timer_;
  bool retry_armed_ = false;
  bool retrying_ = false;  // a re-send is in flight
  counters stats_;
};

// An error reply Redis gives instead of running a script, for as long as its cause lasts:
// BUSY, LOADING, MASTERDOWN, CLUSTERDOWN, MOVED/ASK (past the client's redirects), READONLY,
// MISCONF, NOREPLICAS. Nothing of the script ran (redis_backend.cpp says why for each).
bool refused_for_now(const redisReply* r);
// refused_for_now, or Redis Cluster's TRYAGAIN (a multi-key script while its slot's keys are
// split by a migration: it did not run). For calls nothing else sends again: a fire-and-forget
// batch call still answered TRYAGAIN after the client's own retries, a re-send from the refused
// calls. Not for admissions: the settlements one carried that meets TRYAGAIN are sent again
// once on their own (did_not_run), and keeping them too would apply them twice.
bool kept_when_refused(const redisReply* r);

// The hash tag of state.cluster: the prefix without its trailing ':' ("ob:" -> "ob"; "" -> "ob").
std::string cluster_tag(std::string_view prefix);
// What every key name starts with: the prefix, or with `cluster` "<prefix>{<tag>}:".
std::string key_head(std::string_view prefix, bool cluster);

// A budget period as the scripts take it: 1 day, 2 week, 3 month.
std::int64_t period_arg(limits::budget_period p);

// Micro-dollars for `input` and `output` tokens at `p`, rounded up (the spec's USD cost).
std::uint64_t usd_cost(const limits::price& p, std::uint64_t input, std::uint64_t output);

}  // namespace ob::state
