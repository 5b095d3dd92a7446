// Model groups as the data plane sees them: one immutable table per config snapshot, built
// from the providers list. Per-group balancing state lives outside the table, in a
// `state_registry` keyed by stable names, so a reload that keeps a group keeps its state;
// the same goes for each target's health, keyed by target id.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/schema.hpp"
#include "routing/health.hpp"
#include "routing/policies/policy.hpp"
#include "routing/retry.hpp"

namespace ob::routing {

struct target {
  std::string id;  // stable identity: base|name|sha256(key) prefix — survives reloads
  const config::provider* provider = nullptr;  // owned by the snapshot's config
  std::string model_literal;  // JSON string token of the real model name, e.g. "\"gpt-4o\""
  std::string auth_header;    // "Authorization: Bearer <key>\r\n" or "" when the key is empty
  std::string pool_key;       // "http|host|port" — connections to the same origin are shared
  std::uint32_t weight = 1;   // config weight (>= 1), for the weighted policies
  std::shared_ptr<target_health> health;  // shared with every snapshot that has this id
};

// Mutable balancing state of one group, shared by all worker threads.
struct group_state {
  explicit group_state(retry_budget_options o = {}) : retries(o) {}
  std::atomic<std::uint64_t> next{0};  // round-robin cursor
  // Smooth weighted round robin's current weight per target index (policies/weighted.hpp).
  // A lock rather than atomics: one pick reads and writes every entry at once.
  std::mutex wrr_mu;
  std::vector<std::int64_t> wrr_current;
  // Failover retries of this group; one broken group cannot spend another's budget.
  retry_budget retries;
};

struct group {
  std::string name;
  std::string name_literal;  // JSON string token of the group name, spliced into answers
  std::vector<target> targets;
  std::shared_ptr<group_state> state;
  // groups.<name>.policy; else weighted when targets' weights differ, round robin otherwise.
  policy_kind policy = policy_kind::round_robin;
  std::size_t max_attempts = 0;  // targets tried per request (groups.<name>.attempts; 0 = all)
};

// Hands out the same state object for the same group name while anyone holds it.
class state_registry {
 public:
  std::shared_ptr<group_state> get(const std::string& group_name);
  // Health of targets, kept here so everything that outlives a snapshot lives in one place.
  health_registry& health() { return health_; }
  // Applies the config's health and retry settings to state created from now on.
  void configure(const config::config& cfg);

 private:
  health_registry health_;
  retry_budget_options retry_opts_;
  std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<group_state>> states_;
};

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class table {
 public:
  // `cfg` must outlive the table (both live in one snapshot).
  table(const config::config& cfg, state_registry& states);
  const group* find(std::string_view name) const;
  const std::vector<const group*>& groups() const { return ordered_; }  // in config order

 private:
  std::unordered_map<std::string, group, string_hash, std::equal_to<>> groups_;
  std::vector<const group*> ordered_;
};

std::string target_id(const config::provider& p);

}  // namespace ob::routing
