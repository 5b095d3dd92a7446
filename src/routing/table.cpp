#include "routing/table.hpp"

#include "dialect/headers.hpp"
#include "observe/gateway_metrics.hpp"
#include "proxy/json/model.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>

namespace ob::routing {

namespace json = ob::proxy::json;
namespace {

std::string sha256_prefix(std::string_view s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  char buf[3];
  for (unsigned i = 0; i < 8 && i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", md[i]);
    hex += buf;
  }
  return hex;
}

}  // namespace

std::string target_id(const config::provider& p) {
  return p.base + "|" + p.name + "|" + sha256_prefix(p.key);
}

std::shared_ptr<group_state> state_registry::get(const std::string& name,
                                                 const retry_budget_options& o) {
  std::lock_guard lock(mu_);
  auto& weak = states_[name];
  auto s = weak.lock();
  if (!s) {
    s = std::make_shared<group_state>(o);
    weak = s;
  }
  // Forget entries of groups nobody holds any more (removed by a reload).
  for (auto it = states_.begin(); it != states_.end();)
    it = it->second.expired() ? states_.erase(it) : std::next(it);
  return s;
}

namespace {

health_options health_options_of(const config::config& cfg) {
  health_options h;
  h.consecutive_failures = cfg.health.consecutive_failures;
  h.error_ratio = cfg.health.error_ratio;
  h.window_requests = cfg.health.min_requests;
  h.window = cfg.health.window;
  h.base_ejection = cfg.health.base_ejection;
  h.max_ejection = cfg.health.max_ejection;
  return h;
}

retry_budget_options retry_options_of(const config::config& cfg) {
  retry_budget_options r;
  r.ratio = cfg.retry.budget_ratio;
  r.min_per_second = cfg.retry.budget_min_per_second;
  return r;
}

}  // namespace

namespace {

std::optional<policy_kind> policy_named(std::string_view name) {
  if (name == "round_robin") return policy_kind::round_robin;
  if (name == "weighted") return policy_kind::weighted;
  if (name == "least_inflight") return policy_kind::least_inflight;
  if (name == "latency") return policy_kind::latency;
  return std::nullopt;
}

}  // namespace

table::table(const config::config& cfg, state_registry& states) {
  const auto health_opts = health_options_of(cfg);
  const auto retry_opts = retry_options_of(cfg);
  std::vector<std::string> order;
  for (const auto& p : cfg.providers) {
    auto [it, inserted] = groups_.try_emplace(p.group);
    auto& g = it->second;
    if (inserted) {
      g.name = p.group;
      g.metric_group = observe::metrics::labels().intern(p.group);
      g.name_literal = json::json_string(p.group);
      g.state = states.get(p.group, retry_opts);
      order.push_back(p.group);
    }
    target t;
    t.id = target_id(p);
    t.provider = &p;
    t.model_literal = json::json_string(p.name);
    auto headers = dialect::make_fixed_headers(p);
    t.fixed_headers = std::move(headers.lines);
    t.replaced_headers = std::move(headers.replaced);
    t.default_version = headers.default_version;
    std::string route_error;  // validated by config check: cannot fail here
    if (auto r = dialect::make_route(p, &route_error)) t.route = std::move(*r);
    t.codec = dialect::codec_for(p.api);
    t.pool_key =
        std::string(p.url.tls ? "https|" : "http|") + p.url.host + "|" + std::to_string(p.url.port);
    t.pool_hash = std::hash<std::string_view>{}(t.pool_key);  // as upstream::pool::hash_of
    t.weight = std::max<std::uint32_t>(p.weight, 1);
    t.health = states.health().get(t.id, health_opts, p.name + "@" + p.url.host_header);
    t.wrr_slot = g.state->wrr_slot(t.id);
    if (p.limits.rpm || p.limits.tpm || p.limits.concurrency) g.limited = true;
    if (!g.targets.empty() && t.weight != g.targets.front().weight)
      g.policy = policy_kind::weighted;
    g.targets.push_back(std::move(t));
  }
  // Metric labels: "<model>@<host>" names a target for people; two targets of one group that
  // differ only by key (two accounts) get their key hash's start appended.
  auto& labels = observe::metrics::labels();
  for (auto& [name, g] : groups_) {
    for (auto& t : g.targets) {
      const auto& p = *t.provider;
      std::string label = p.name + "@" + p.url.host_header;
      auto same = std::count_if(g.targets.begin(), g.targets.end(), [&](const target& o) {
        return o.provider->name == p.name && o.provider->url.host_header == p.url.host_header;
      });
      if (same > 1) label += "#" + t.id.substr(t.id.rfind('|') + 1, 6);
      t.metric_target = labels.intern(label);
      // An Azure resource may sit behind a host of its own (an API gateway): its api says more.
      t.metric_provider = labels.intern(p.api == config::provider_api::azure
                                            ? std::string("azure.ai.openai")
                                            : observe::metrics::provider_name_for_host(p.url.host));
      t.metric_model = labels.intern(p.name);
    }
  }
  for (const auto& [name, opts] : cfg.groups) {
    auto it = groups_.find(name);
    if (it == groups_.end()) continue;  // validation warned about it
    if (auto k = policy_named(opts.policy)) it->second.policy = *k;
    it->second.max_attempts = opts.attempts;
  }
  for (const auto& name : order) ordered_.push_back(&groups_.find(name)->second);
}

const group* table::find(std::string_view name) const {
  auto it = groups_.find(name);
  return it == groups_.end() ? nullptr : &it->second;
}

}  // namespace ob::routing
