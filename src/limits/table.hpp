// The keys and provider limits of one config snapshot, in the form admission uses: every key's
// demand (limits, budget) and whether it needs admission at all, every provider's target
// demand, and the backend holding their state. Built once per snapshot (start, reload).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/schema.hpp"
#include "limits/backend.hpp"
#include "limits/memory_backend.hpp"

namespace ob::limits {

struct key_entry {
  const config::client_key* cfg = nullptr;  // owned by the snapshot's config
  key_demand demand;
  // Any rate limit, concurrency or budget: the request goes through admission. False: the
  // request path costs one branch.
  bool limited = false;
  std::uint64_t default_output_tokens = 1024;
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

  std::vector<key_entry> keys;          // index = the key's index in cfg.keys and the token set
  std::vector<target_demand> targets;   // index = the provider's index in cfg.providers
  std::vector<std::string> target_ids;  // "<group>/<name>@<host>", for target_demand::id
  std::shared_ptr<memory_backend> memory;
  backend* active = nullptr;  // the backend admission uses (memory)
};

}  // namespace ob::limits
