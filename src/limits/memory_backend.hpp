// The in-memory limits backend: one process holds the exact state. State lives per key and per
// target behind its own short mutex (never a global lock), shared by every worker thread, and
// outlives config reloads: a registry hands out the same state for the same key name / target
// id, so a reload keeps counting and the new limits apply from the next request.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "limits/algorithms.hpp"
#include "limits/backend.hpp"

namespace ob::limits {

// A GCRA state with the interval it was computed with: a reload that changes the limit keeps
// the number of requests already counted, not the time they stand for.
struct gcra_state {
  std::int64_t tat = 0, interval = 0;  // us
  std::int64_t at(const gcra_params& p, epoch_us now) const {
    return gcra_rescale(p, tat, interval, now);
  }
  void store(const gcra_params& p, std::int64_t new_tat) {
    tat = new_tat;
    interval = p.interval;
  }
};

struct key_state {
  std::mutex mu;
  gcra_state rpm, rpd;
  token_bucket tpm, tpd;
  std::uint64_t inflight = 0;
  budget_state budget;
};

struct target_state {
  std::mutex mu;
  gcra_state rpm;
  token_bucket tpm;
  std::uint64_t inflight = 0;
};

// Same state object for the same name while any snapshot holds it.
class state_registry {
 public:
  std::shared_ptr<key_state> key(const std::string& name);
  std::shared_ptr<target_state> target(const std::string& id);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<key_state>> keys_;
  std::unordered_map<std::string, std::weak_ptr<target_state>> targets_;
};

// A key's counters as /admin/v1/keys shows them (after refilling to `now`).
struct key_usage {
  std::int64_t rpm_remaining = -1, rpd_remaining = -1;  // -1 = no such limit
  std::int64_t tpm_remaining = -1, tpd_remaining = -1;
  std::uint64_t inflight = 0;
  std::uint64_t budget_used = 0, budget_reserved = 0;
  epoch_ms budget_period_start = 0, budget_period_end = 0;
};

class memory_backend final : public backend {
 public:
  // keys[i] is the state of demand key index i; targets[j] of target_demand index j.
  memory_backend(std::vector<std::shared_ptr<key_state>> keys,
                 std::vector<std::shared_ptr<target_state>> targets)
      : keys_(std::move(keys)), targets_(std::move(targets)) {}

  std::optional<verdict> admit_now(const demand& d) override { return decide(d); }
  boost::asio::awaitable<verdict> admit(const demand& d) override;
  void settle(const reservation& r, const usage& actual) override;
  void release(const reservation& r) override;

  verdict decide(const demand& d);
  // `now` of settlement is read from the wall clock unless set (tests).
  void settle_at(const reservation& r, const usage& actual, epoch_ms now);
  void release_at(const reservation& r, epoch_ms now);
  key_usage peek(const key_demand& k, epoch_ms now) const;
  // Budget already used by `k` in the period holding `now` (a restart: from the ledger); keeps
  // the larger of what the state holds and `used`.
  void seed_budget(const key_demand& k, std::uint64_t used, epoch_ms now);

 private:
  std::vector<std::shared_ptr<key_state>> keys_;
  std::vector<std::shared_ptr<target_state>> targets_;
};

// Wall clock, epoch milliseconds.
epoch_ms wall_now();
// The wall clock in epoch microseconds (demand::now_us).
std::int64_t wall_now_us();

}  // namespace ob::limits
