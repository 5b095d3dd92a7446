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
#include "dialect/codec.hpp"
#include "dialect/path.hpp"
#include "routing/health.hpp"
#include "routing/policies/policy.hpp"
#include "routing/retry.hpp"

namespace ob::routing {

struct target {
  std::string id;  // stable identity: base|name|sha256(key) prefix — survives reloads
  const config::provider* provider = nullptr;  // owned by the snapshot's config
  std::string model_literal;  // JSON string token of the real model name, e.g. "\"gpt-4o\""
  // Header lines on every request to it: the key in its auth header ("Authorization: Bearer
  // <key>\r\n", "api-key: <key>\r\n", ... or none), then the provider's configured headers.
  std::string fixed_headers;
  // Lower-case names of the configured headers: the client's headers of those names are not
  // forwarded. Empty for most targets.
  std::vector<std::string> replaced_headers;
  // The default anthropic-version line's length at the end of fixed_headers (0 = none).
  std::size_t default_version = 0;
  dialect::route route;                   // where the client's request target goes
  const dialect::codec* codec = nullptr;  // translating dialect; nullptr = pass-through
  std::string pool_key;        // "http|host|port" — connections to the same origin are shared
  std::size_t pool_hash = 0;   // std::hash<std::string_view> of pool_key (upstream::pool::origin)
  std::uint32_t weight = 1;    // config weight (>= 1), for the weighted policies
  std::uint32_t wrr_slot = 0;  // its entry in group_state::wrr_current (group_state::wrr_slot)
  std::shared_ptr<target_health> health;  // shared with every snapshot that has this id
  // Metric label values (observe::metrics::labels() ids): the target as "<model>@<host>"
  // ("#" + a hash of its key, or of its whole entry, appended when a group has two of those:
  // table.cpp metric_labels), gen_ai_provider_name, the model.
  std::uint32_t metric_target = 0, metric_provider = 0, metric_model = 0;
};

// Mutable balancing state of one group, shared by all worker threads.
struct group_state {
  explicit group_state(retry_budget_options o = {}) : retries(o) {}
  std::atomic<std::uint64_t> next{0};  // round-robin cursor
  // Smooth weighted round robin's current weight per target (policies/weighted.hpp), at the
  // target's slot. Slots are keyed by target id, not position, so a reload that reorders or
  // removes targets leaves every target its own value. A lock rather than atomics: one pick
  // reads and writes every entry at once.
  std::mutex wrr_mu;
  std::vector<std::int64_t> wrr_current;
  // The slot of target `id`, assigned on first sight (a table being built; a slot nobody uses
  // changes no pick). Slots of removed targets stay reserved: one integer per id ever seen.
  std::uint32_t wrr_slot(const std::string& id) {
    std::lock_guard lock(wrr_mu);
    auto [it, added] = wrr_slots.try_emplace(id, static_cast<std::uint32_t>(wrr_slots.size()));
    if (added) wrr_current.resize(wrr_slots.size(), 0);
    return it->second;
  }
  std::unordered_map<std::string, std::uint32_t> wrr_slots;  // under wrr_mu
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
  std::size_t max_attempts = 0;    // targets tried per request (groups.<name>.attempts; 0 = all)
  std::uint32_t metric_group = 0;  // metric label id of the name
  bool limited = false;  // some target has provider "limits": attempts go through admission
};

// Hands out the same state object for the same group name while anyone holds it. Like
// health_registry, it keeps no settings: building a table (the "prepare" half of a reload)
// passes the new config's options for state it creates, so a table that is never swapped in
// leaves nothing behind once dropped; whatever it shares with the running table is state both
// keep, unchanged.
class state_registry {
 public:
  std::shared_ptr<group_state> get(const std::string& group_name,
                                   const retry_budget_options& o = {});
  // Health of targets, kept here so everything that outlives a snapshot lives in one place.
  health_registry& health() { return health_; }

 private:
  health_registry health_;
  std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<group_state>> states_;
};

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class table {
 public:
  // `cfg` must outlive the table (both live in one snapshot). Changes nothing in `states`
  // that the running table uses: safe to build and throw away (a refused reload).
  table(const config::config& cfg, state_registry& states);
  const group* find(std::string_view name) const;
  const std::vector<const group*>& groups() const { return ordered_; }  // in config order

 private:
  std::unordered_map<std::string, group, string_hash, std::equal_to<>> groups_;
  std::vector<const group*> ordered_;
};

std::string target_id(const config::provider& p);

}  // namespace ob::routing
