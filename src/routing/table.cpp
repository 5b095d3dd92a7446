#include "routing/table.hpp"

#include "config/identity.hpp"
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

// Everything that decides where a request to a target goes and how: base URL (with its path),
// model, key, API, auth header, API version, configured headers. Each field length-prefixed,
// so two different entries never read alike.
std::string entry_identity(const config::provider& p) {
  std::string out;
  auto field = [&](std::string_view v) {
    out += std::to_string(v.size());
    out += ':';
    out += v;
  };
  field(p.base);
  field(p.name);
  field(p.key);
  out += static_cast<char>('0' + static_cast<int>(p.api));
  out += static_cast<char>('0' + static_cast<int>(p.auth));
  field(p.api_version);
  for (const auto& [name, value] : p.headers) {
    field(name);
    field(value);
  }
  return out;
}

// Metric label values of the targets of every group, in the order given: "<model>@<host>"
// names a target for people. Targets with the same one (in any group: the rate-limit gauges
// and the dashboard's series are keyed by this label alone) get "#" and a suffix: 6 hex digits of
// their key's hash when that tells them apart (two accounts), else 8 of a hash of the whole
// entry (two deployments under one host and key, told apart by path, headers or API). Entries
// the same in every respect are one target and share the label.
std::vector<std::string> metric_labels(const std::vector<const target*>& targets) {
  const auto n = targets.size();
  std::vector<std::string> base(n), key_tag(n), identity(n), out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& p = *targets[i]->provider;
    base[i] = p.name + "@" + p.url.host_header;
    key_tag[i] = targets[i]->id.substr(targets[i]->id.rfind('|') + 1, 6);
    identity[i] = entry_identity(p);
  }
  for (std::size_t i = 0; i < n; ++i) {
    bool same_base = false, same_key = false;
    for (std::size_t j = 0; j < n; ++j) {
      // (The same entry in another group is the same target: one label for it.)
      if (j == i || base[j] != base[i] || identity[j] == identity[i]) continue;
      same_base = true;
      same_key = same_key || key_tag[j] == key_tag[i];
    }
    out[i] = base[i];
    if (same_key)
      out[i] += "#" + sha256_prefix(identity[i]).substr(0, 8);
    else if (same_base)
      out[i] += "#" + key_tag[i];
    // Different entries whose hashes still meet: the position tells them apart.
    for (std::size_t j = 0; j < i; ++j)
      if (out[j] == out[i] && identity[j] != identity[i]) {
        out[i] += "." + std::to_string(i);
        break;
      }
  }
  return out;
}

}  // namespace

std::string target_id(const config::provider& p) {
  auto variant = config::variant_tag(p);
  return p.base + "|" + p.name + "|" + (variant.empty() ? "" : variant + "|") +
         sha256_prefix(p.key);
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
  auto& labels = observe::metrics::labels();
  std::vector<target*> all;
  for (const auto& name : order)
    for (auto& t : groups_.find(name)->second.targets) all.push_back(&t);
  auto target_labels = metric_labels(std::vector<const target*>(all.begin(), all.end()));
  for (std::size_t i = 0; i < all.size(); ++i) {
    auto& t = *all[i];
    const auto& p = *t.provider;
    t.metric_target = labels.intern(target_labels[i]);
    // An Azure resource may sit behind a host of its own (an API gateway): its api says more.
    t.metric_provider = labels.intern(p.api == config::provider_api::azure
                                          ? std::string("azure.ai.openai")
                                          : observe::metrics::provider_name_for_host(p.url.host));
    t.metric_model = labels.intern(p.name);
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
