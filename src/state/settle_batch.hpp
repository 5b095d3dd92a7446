// Settlements waiting for a script call to carry them: one queue per Redis connection (per
// worker, shared by that worker's backends), so a request's end costs no round trip of its own.
//
// The next admission sent on the connection carries every queued settlement (beyond
// `max_carried`, a batch call goes just before it): admit.lua applies them first, then
// decides, in one atomic script. When no admission comes within `delay` (1 ms), one settle.lua
// call sends them all (up to `max_per_call` per call). A settlement queued while the worker is
// idle (no admission in flight, no other admitted request running) is sent at once: no
// admission is coming to carry it. So under load a request costs one script call (its
// admission), and a settlement reaches Redis at most `delay` after its request ended, or with
// the same worker's next admission, whichever comes first. On one connection commands run in
// order, so a settlement is always applied before any later admission of its worker
// (docs/SCALING.md "Settlements ride with admissions").
//
// Delivery is the connection's: a settlement handed to the connection (in an admission or a
// batch call) is never sent again unless a reply says its script did not run (NOSCRIPT,
// TRYAGAIN, a refusal below), so it is applied at most once. A reply that times out does
// not undo it (the command still runs when Redis gets to it); one on the wire when the
// connection breaks is lost (its lease expires, its reservation stays charged: the errors of a
// lost fire-and-forget settlement, docs/SCALING.md). Queued ones wait while Redis is away.
// A batch call Redis refuses to run (BUSY, LOADING...: the client hands its error reply and
// bytes to this queue, the connection's detached_error handler) goes, like the settlements of
// a refused admission, to the refused calls of the backend in use on the connection
// (keep_refused), which re-sends them after a backoff.
//
// Per settlement: its arguments appended to one reused buffer (no allocation in steady state)
// and a clock read when the queue was empty; per admission a copy of the carried bytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "state/redis/arg_buffer.hpp"
#include "state/redis/client.hpp"

namespace ob::state {

class redis_backend;

// One settle (actual usage) or release (failed before any usage) of an admitted request, as
// src/state/redis/settlements.lua applies it.
struct settlement {
  std::string_view prefix;  // key names: <prefix>{k:<key>}:tpm ... (redis_backend::key_head)
  bool one_slot = false;    // state.cluster: <prefix>{<tag>}:k:<key>:tpm ...
  bool has_key = false;
  std::string_view key;
  bool has_target = false;
  std::string_view target;
  std::int64_t now = 0;  // ms; 0 = the clock of the script that applies it (tests pass theirs)
  std::uint64_t lease = 0;
  std::int64_t period_start = 0;  // the budget period the admission charged (0: no budget)
  bool settle = false;            // false: release, every reservation given back
  std::uint64_t reserved_tokens = 0;
  std::int64_t actual_tokens = -1;  // -1: unknown (the reservation stays as the charge)
  std::uint64_t key_tpm = 0, key_tpd = 0;
  bool key_lease = false;
  std::uint64_t budget_reserved = 0;
  std::int64_t budget_actual = -1;  // in the budget's unit; -1 unknown
  std::uint64_t target_tpm = 0;
  bool target_lease = false;
};

// Arguments per settlement in settle.lua / admit.lua (its keys come before: 4 for a key, 2 for
// a target).
inline constexpr std::size_t settlement_args = 15;

// Appends the settlement's key names, then its `settlement_args` arguments; returns the number
// of keys.
std::size_t encode(const settlement& s, redis::arg_buffer& out);

class settle_batch : public std::enable_shared_from_this<settle_batch> {
 public:
  struct options {
    std::chrono::microseconds delay{1000};
    std::size_t max_carried = 16;   // settlements per admission (keeps its latency down)
    std::size_t max_per_call = 64;  // settlements per settle.lua call
    std::size_t max_queued = 10'000;
  };
  struct counters {
    std::uint64_t queued = 0;   // settlements added
    std::uint64_t carried = 0;  // sent inside an admission
    std::uint64_t batched = 0;  // sent in settle.lua calls
    std::uint64_t calls = 0;    // settle.lua calls
    std::uint64_t lost = 0;     // dropped beyond max_queued while Redis was away, or not
                                // re-sent (below) for want of a connection, or refused with
                                // no backend left to keep them
    std::uint64_t resent = 0;   // sent again after their admission did not run (resend)
  };

  // `client` sends the batch calls; admissions are sent by the backends (carry_*).
  // Takes the client's detached_error handler (one queue per connection; the last made wins).
  settle_batch(std::shared_ptr<redis::client> client, options o);
  explicit settle_batch(std::shared_ptr<redis::client> client)
      : settle_batch(std::move(client), options{}) {}
  ~settle_batch();
  settle_batch(const settle_batch&) = delete;
  settle_batch& operator=(const settle_batch&) = delete;

  // Queues one settlement (sent at once when the worker is idle).
  void add(const settlement& s);

  // An admission is being built: after its own key names, carry_keys appends the key names of
  // the queued settlements (more than max_carried are sent in batch calls first, still ahead
  // of the admission); after its own arguments, carry_args
  // appends their count and arguments and takes them off the queue. Nothing may touch the
  // batch in between (both run before the admission is sent, without suspending).
  struct carry {
    std::size_t settlements = 0, keys = 0;
  };
  carry carry_keys(redis::arg_buffer& a);
  void carry_args(redis::arg_buffer& a, const carry& c);
  // The admission's reply came (or failed): call once per carry_keys; `live` when it admitted a
  // request that will end with ended().
  void admitted(bool live) {
    if (admitting_ > 0) --admitting_;
    if (live) ++live_;
  }
  // A request admitted in Redis ended (called before its settlement is added, or queued
  // elsewhere while Redis is away).
  void ended() {
    if (live_ > 0) --live_;
  }

  // Settlements an admission carried whose script did not run (answered NOSCRIPT after its
  // waiter timed out, or TRYAGAIN): `n` of them, as one settle.lua call's keys and arguments
  // (count first), sent again at once, once, as EVAL. Without a connection they are lost (and
  // counted), as a settlement on a broken connection is.
  void resend(std::size_t n, std::size_t nkeys, std::span<const std::string_view> keys_and_args);

  // Calls Redis refused to run (refused_for_now) go to the backend in use on this connection:
  // the last one started on it, or the one a backend it replaced handed its queue to
  // (redis_backend::start, hand_over, stop). keep_refused hands it one (`n` settlements, the
  // script's keys and arguments); with no such backend, to `fallback`; with neither, it is lost
  // (counted, logged).
  void refused_to(std::weak_ptr<redis_backend> b) { taker_ = std::move(b); }
  std::shared_ptr<redis_backend> refused_taker() const { return taker_.lock(); }
  void keep_refused(redis_backend* fallback, const redis::script& s, std::size_t n,
                    std::size_t nkeys, std::span<const std::string_view> keys_and_args);

  void flush();  // sends everything queued now (when connected)
  void stop();   // flushes, then sends nothing more

  std::size_t size() const { return records_.size() - head_; }
  const counters& stats() const { return stats_; }
  const options& opts() const { return opt_; }

 private:
  struct record {
    std::size_t first;  // index of its first key in buf_
    std::size_t nkeys;
  };
  using clock = std::chrono::steady_clock;
  void arm(clock::time_point at);
  void on_timer();
  void pop(std::size_t n);
  static void on_detached_error(void* ctx, const redis::script& s, std::string_view command,
                                const redisReply* reply);

  std::shared_ptr<redis::client> client_;
  options opt_;
  boost::asio::steady_timer timer_;
  bool armed_ = false;
  bool stopped_ = false;
  redis::arg_buffer buf_;  // queued settlements, each its keys then its arguments
  std::vector<record> records_;
  std::size_t head_ = 0;
  redis::arg_buffer call_;        // a settle.lua call being built
  clock::time_point first_at_{};  // when the oldest queued settlement was queued
  std::size_t admitting_ = 0;     // admissions sent whose reply has not come
  std::size_t live_ = 0;          // requests admitted in Redis that have not ended
  counters stats_;
  std::weak_ptr<redis_backend> taker_;  // keeps the calls Redis refused (refused_to)
};

}  // namespace ob::state
