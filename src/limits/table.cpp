#include "limits/table.hpp"

#include "config/identity.hpp"

namespace ob::limits {

namespace {

budget_spec budget_of(const config::key_budget& b) {
  budget_spec s;
  using unit = config::key_budget::unit_kind;
  using period = config::key_budget::period_kind;
  s.unit = b.unit == unit::tokens ? budget_unit::tokens
           : b.unit == unit::usd  ? budget_unit::usd
                                  : budget_unit::none;
  s.period = b.period == period::day    ? budget_period::day
             : b.period == period::week ? budget_period::week
                                        : budget_period::month;
  s.amount = b.amount;
  return s;
}

// 12 hex digits of FNV-1a (64-bit) over a provider entry's base URL and account key: stable
// across gateways and builds, so every instance names the same Redis counters, and two
// accounts (or two deployments under one host) never share them. It reveals nothing usable
// of the key.
std::string account_tag(std::string_view base, std::string_view key) {
  config::fnv1a_tag h;
  h.mix(base);
  h.mix(std::string_view("\n", 1));
  h.mix(key);
  return h.hex12();
}

}  // namespace

key_table::key_table(const config::config& cfg, state_registry& states) {
  std::vector<std::shared_ptr<key_state>> key_states;
  keys.reserve(cfg.keys.size());
  for (std::size_t i = 0; i < cfg.keys.size(); ++i) {
    const auto& k = cfg.keys[i];
    key_entry e;
    e.cfg = &k;
    e.demand.index = static_cast<std::uint32_t>(i);
    e.demand.name = k.name;
    const auto& l = k.limits;
    e.demand.limits = {l.rpm, l.rpd, l.tpm, l.tpd, l.concurrency, l.burst};
    e.demand.budget = budget_of(k.budget);
    e.limited = e.demand.limits.any() || e.demand.budget.unit != budget_unit::none;
    e.default_output_tokens = l.default_output_tokens.value_or(cfg.limits.default_output_tokens);
    e.max_wait_ms = l.max_wait.value_or(cfg.limits.max_wait).count();
    if (e.limited && e.max_wait_ms > 0) e.waiters = std::make_shared<wait_queue>();
    e.all_groups = k.all_groups;
    for (const auto& g : k.groups) e.groups.push_back(g);
    keys.push_back(std::move(e));
    // Unlimited keys share no state: nothing to keep.
    key_states.push_back(keys.back().limited ? states.key(k.name) : nullptr);
  }
  std::vector<std::shared_ptr<target_state>> target_states;
  targets.reserve(cfg.providers.size());
  target_ids.reserve(cfg.providers.size());
  for (std::size_t i = 0; i < cfg.providers.size(); ++i) {
    const auto& p = cfg.providers[i];
    // An entry set apart by its API, auth, version or headers (config/identity.hpp): its own
    // counters.
    auto variant = config::variant_tag(p);
    target_ids.push_back(p.group + "/" + p.name + "@" + p.url.host_header + "#" +
                         account_tag(p.base, p.key) + (variant.empty() ? "" : "." + variant));
  }
  for (std::size_t i = 0; i < cfg.providers.size(); ++i) {
    const auto& p = cfg.providers[i];
    target_demand t;
    t.index = static_cast<std::uint32_t>(i);
    t.id = target_ids[i];
    t.limits = {p.limits.rpm, p.limits.tpm, p.limits.concurrency};
    if (p.price) t.price = {p.price->input, p.price->output};
    targets.push_back(t);
    // State by what the provider entry is (base, model, account, group): a reload keeps it.
    target_states.push_back(t.limits.any()
                                ? states.target(p.base + "|" + p.name + "|" + p.key + "|" +
                                                p.group + "|" + config::variant_tag(p))
                                : nullptr);
  }
  max_waiting = cfg.limits.max_waiting;
  memory = std::make_shared<memory_backend>(std::move(key_states), std::move(target_states));
  active = memory.get();
}

}  // namespace ob::limits
