// The keys and provider limits of one config snapshot, in the form admission uses: every key's
// demand (limits, budget) and whether it needs admission at all, every provider's target
// demand, and the backend holding their state. Built once per snapshot (start, reload).
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config/schema.hpp"
#include "limits/backend.hpp"
#include "limits/memory_backend.hpp"

namespace ob::limits {

// Requests of one key waiting for capacity (limits.max_wait), first come first served: only
// the head retries admission; the others wait for their turn. Shared by every worker.
class wait_queue {
 public:
  std::uint64_t join() {
    std::lock_guard lock(mu_);
    auto id = next_++;
    ids_.push_back(id);
    return id;
  }
  bool is_head(std::uint64_t id) {
    std::lock_guard lock(mu_);
    return !ids_.empty() && ids_.front() == id;
  }
  void leave(std::uint64_t id) {
    std::lock_guard lock(mu_);
    for (auto it = ids_.begin(); it != ids_.end(); ++it)
      if (*it == id) {
        ids_.erase(it);
        break;
      }
  }

 private:
  std::mutex mu_;
  std::deque<std::uint64_t> ids_;
  std::uint64_t next_ = 1;
};

struct key_entry {
  const config::client_key* cfg = nullptr;  // owned by the snapshot's config
  key_demand demand;
  // Any rate limit, concurrency or budget: the request goes through admission. False: the
  // request path costs one branch.
  bool limited = false;
  std::uint64_t default_output_tokens = 1024;
  std::int64_t max_wait_ms = 0;         // a request over a rate limit may wait this long
  std::shared_ptr<wait_queue> waiters;  // when max_wait_ms > 0
  // The groups the key may use (names point into the config), unless all_groups.
  bool all_groups = true;
  std::vector<std::string_view> groups;
  bool may_use(std::string_view group) const {
    if (all_groups) return true;
    for (auto g : groups)
      if (g == group) return true;
    return false;
  }
};

class key_table {
 public:
  // `cfg` must outlive the table (both live in one snapshot).
  key_table(const config::config& cfg, state_registry& states);

  std::vector<key_entry> keys;         // index = the key's index in cfg.keys and the token set
  std::vector<target_demand> targets;  // index = the provider's index in cfg.providers
  // "<group>/<name>@<host>#<account tag>", for target_demand::id: the tag (12 hex digits of a
  // hash of the base URL and the provider key) tells two accounts of one model apart.
  std::vector<std::string> target_ids;
  std::shared_ptr<memory_backend> memory;
  backend* active = nullptr;  // the backend admission uses (memory)
  // Requests waiting for capacity now (all keys), bounded by limits.max_waiting.
  std::size_t max_waiting = 0;
  mutable std::atomic<std::size_t> waiting{0};
};

}  // namespace ob::limits
