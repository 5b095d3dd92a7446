// Keys and limits in a request's life, in three phases (docs/ARCHITECTURE.md "Keys and limits"):
//
//   identify  after the head, with auth: the token names a key (an index into the snapshot's
//             key table); a disabled or expired key is refused with 401 at once, no state touched
//   admit     after the body is read and the group is known, before the exchange: the key may
//             use the group (else 403), then the key's budget, concurrency, rpm, rpd, tpm, tpd
//             (limits/backend.hpp); per attempt the exchange admits the chosen target's limits
//             (a target at its limit is skipped; all full -> 429)
//   settle    at the end of the exchange, on every path (answer, error, client gone, shutdown):
//             the actual usage the exchange read for the metrics settles the reservations;
//             no answer releases them; an answer without usage keeps them as the charge. An
//             answer is settled just before its last write (exchange.hpp settle_hook)
//
// A key without limits and a group without provider limits cost one branch each: no clock
// read, no lock, no allocation.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "config/schema.hpp"
#include "limits/backend.hpp"
#include "limits/table.hpp"
#include "observe/log.hpp"
#include "proxy/http/errors.hpp"

namespace ob::proxy {

struct snapshot;
class state_hooks;

// The provider that answered `rec` (its last attempt), or null: what its usage is priced at.
const config::provider* served_provider(const config::config& cfg,
                                        const observe::request_record& rec);

enum class key_state { usable, disabled, expired };
// Phase 1's check of a key the token matched (its expiry against the wall clock).
key_state check_key(const limits::key_entry& k);

// One per client connection; holds at most one request's reservations.
class admission {
 public:
  admission() = default;
  admission(const admission&) = delete;
  // Where the backend comes from (the worker's shared state), when not the snapshot's own.
  void use(state_hooks* hooks) { hooks_ = hooks; }
  ~admission() { finish_release(); }

  enum class result { admitted, refused, pending };
  // The request's token estimate (limits/algorithms.hpp), before admit_key / admit_target.
  void estimate(std::size_t body_bytes, std::int64_t output_cap,
                std::uint64_t default_output_tokens);
  // A request that generates nothing (a token count, http::counts_tokens_only): it reserves no
  // tokens, so its answer (which has no usage) settles none. It still counts as a request (rpm,
  // rpd, concurrency), and a key with no budget left or a token bucket in debt still refuses it.
  void estimate_no_tokens() { input_est_ = output_est_ = 0; }
  // Phase 2 for the key. `snap` is the request's snapshot (kept until settled). admitted (or
  // nothing to check); refused: kind(), message() and headers() hold the answer, nothing was
  // charged; pending: the backend needs a round trip, co_await wait() for the outcome.
  result admit_key(const std::shared_ptr<const snapshot>& snap, const limits::key_entry& key);
  // Per attempt on a limited group: admitted when target `t` has room (it is then reserved; a
  // previous target's reservation is released); refused: skip it; pending: co_await wait().
  result admit_target(const std::shared_ptr<const snapshot>& snap, const limits::target_demand& t);
  // The pending decision of admit_key or admit_target: true when admitted.
  boost::asio::awaitable<bool> wait();
  // Every target was full: the answer to give (429), with the shortest wait seen.
  void refuse_targets_full(std::string_view group);

  // Phase 3: settles with the record's usage, or releases (see above). Idempotent.
  void finish(const observe::request_record& rec);
  // Releases whatever is held (a request that ends without a record).
  void finish_release();

  // The key's reservation that finish(rec) will settle (not release), or null.
  const limits::reservation* settling_key(const observe::request_record& rec) const;

  // x-ratelimit-* of the admitted key ("" for a key without rpm/rpd/tpm/tpd): for answers.
  std::string_view success_headers() const { return success_headers_; }
  http::error_kind kind() const { return refusal_kind_; }
  std::string_view message() const { return message_; }
  std::string_view headers() const { return refusal_headers_; }
  // The refusal's limit name for metrics: rpm, rpd, tpm, tpd, concurrency, budget, provider.
  std::string_view refused_limit() const { return refused_limit_; }
  // The last refusal of the key: a rate limit (rpm, rpd, tpm, tpd, concurrency) that frees up
  // with time, and when (ms). Budgets and backend failures are not worth waiting for.
  bool refusal_waitable() const { return waitable_; }
  std::int64_t refusal_retry_ms() const { return retry_ms_; }

 private:
  void refuse(const limits::verdict& v, const limits::key_entry& key);
  // Applies a decision of the key's admission / of a target's.
  bool apply_key(const limits::verdict& v);
  bool apply_target(const limits::verdict& v);

  // Picks the backend for `snap` (the hooks' or the snapshot's in-memory one).
  void pick_backend(const std::shared_ptr<const snapshot>& snap);

  std::shared_ptr<const snapshot> snap_;  // while something is held or pending
  state_hooks* hooks_ = nullptr;
  std::shared_ptr<void> backend_hold_;  // keeps a hooks' backend alive while snap_ is held
  limits::demand demand_;               // the last demand (alive while pending)
  const limits::key_entry* pending_key_ = nullptr;
  bool pending_target_ = false;
  limits::backend* backend_ = nullptr;
  limits::reservation key_res_, target_res_;
  bool key_held_ = false, target_held_ = false;
  std::uint64_t input_est_ = 0, output_est_ = 0;
  std::int64_t target_retry_ms_ = 0;
  bool targets_unavailable_ = false;  // a target was refused for want of the state backend
  http::error_kind refusal_kind_ = http::error_kind::internal;
  std::string_view refused_limit_;
  bool waitable_ = false;
  std::int64_t retry_ms_ = 0;
  std::string message_, refusal_headers_, success_headers_;
};

}  // namespace ob::proxy
