#include "config/redacted.hpp"

#include <boost/json.hpp>

namespace ob::config {

namespace {

namespace json = boost::json;

double seconds(millis m) {
  return static_cast<double>(m.count()) / 1000.0;
}

json::string secret(const std::string& s) {
  return s.empty() ? "" : "[redacted]";
}

}  // namespace

std::string redacted_json(const config& cfg) {
  json::object root;
  json::array providers;
  for (const auto& p : cfg.providers) {
    json::object o;
    o["group"] = p.group;
    o["name"] = p.name;
    o["base"] = p.base;
    o["key"] = secret(p.key);
    o["weight"] = p.weight;
    json::object t;
    if (p.timeouts.connect) t["connect"] = seconds(*p.timeouts.connect);
    if (p.timeouts.first_byte) t["first_byte"] = seconds(*p.timeouts.first_byte);
    if (p.timeouts.idle) t["idle"] = seconds(*p.timeouts.idle);
    if (p.timeouts.total) t["total"] = seconds(*p.timeouts.total);
    if (p.timeouts.pool_idle) t["pool_idle"] = seconds(*p.timeouts.pool_idle);
    if (!t.empty()) o["timeouts"] = std::move(t);
    if (p.health_check.enabled)
      o["health_check"] = {{"interval", seconds(p.health_check.interval)},
                           {"timeout", seconds(p.health_check.timeout)},
                           {"path", p.health_check.path}};
    json::object pl;
    if (p.limits.rpm) pl["rpm"] = p.limits.rpm;
    if (p.limits.tpm) pl["tpm"] = p.limits.tpm;
    if (p.limits.concurrency) pl["concurrency"] = p.limits.concurrency;
    if (!pl.empty()) o["limits"] = std::move(pl);
    if (p.price)
      o["price"] = {{"input", static_cast<double>(p.price->input) / 1e6},
                    {"output", static_cast<double>(p.price->output) / 1e6}};
    providers.push_back(std::move(o));
  }
  root["providers"] = std::move(providers);
  json::array security;
  for (const auto& s : cfg.security) security.push_back(secret(s));
  root["security"] = std::move(security);
  // Keys: names, limits and budgets; never a token or its digest.
  json::array keys;
  for (const auto& k : cfg.keys) {
    if (k.from_security) continue;
    json::object o;
    o["name"] = k.name;
    o["token"] = "[redacted]";
    if (!k.all_groups) {
      json::array g;
      for (const auto& n : k.groups) g.push_back(json::string(n));
      o["groups"] = std::move(g);
    }
    json::object l;
    const auto& kl = k.limits;
    for (auto [name, v] : {std::pair<const char*, std::uint64_t>{"rpm", kl.rpm},
                           {"rpd", kl.rpd},
                           {"tpm", kl.tpm},
                           {"tpd", kl.tpd},
                           {"concurrency", kl.concurrency},
                           {"burst", kl.burst}})
      if (v) l[name] = v;
    if (kl.default_output_tokens) l["default_output_tokens"] = *kl.default_output_tokens;
    if (kl.max_wait) l["max_wait"] = seconds(*kl.max_wait);
    o["limits"] = std::move(l);
    if (k.budget.unit != key_budget::unit_kind::none) {
      json::object b;
      if (k.budget.unit == key_budget::unit_kind::tokens)
        b["tokens"] = k.budget.amount;
      else
        b["usd"] = static_cast<double>(k.budget.amount) / 1e6;
      b["period"] = k.budget.period == key_budget::period_kind::day    ? "day"
                    : k.budget.period == key_budget::period_kind::week ? "week"
                                                                       : "month";
      o["budget"] = std::move(b);
    }
    if (k.expires_ms) o["expires_ms"] = *k.expires_ms;
    o["disabled"] = k.disabled;
    json::object labels;
    for (const auto& [lk, lv] : k.labels) labels[lk] = lv;
    o["labels"] = std::move(labels);
    keys.push_back(std::move(o));
  }
  root["keys"] = std::move(keys);
  root["listen"] = cfg.listen;
  root["workers"] = cfg.workers;
  root["limits"] = {{"max_header_bytes", cfg.limits.max_header_bytes},
                    {"max_body_bytes", cfg.limits.max_body_bytes},
                    {"max_response_bytes", cfg.limits.max_response_bytes},
                    {"default_output_tokens", cfg.limits.default_output_tokens},
                    {"max_wait", seconds(cfg.limits.max_wait)},
                    {"max_waiting", cfg.limits.max_waiting}};
  const auto& to = cfg.timeouts;
  root["timeouts"] = {{"connect", seconds(to.connect)},
                      {"first_byte", seconds(to.first_byte)},
                      {"idle", seconds(to.idle)},
                      {"total", seconds(to.total)},
                      {"pool_idle", seconds(to.pool_idle)},
                      {"stream_hold", seconds(to.stream_hold)},
                      {"client_header", seconds(to.client_header)},
                      {"client_body", seconds(to.client_body)},
                      {"client_body_total", seconds(to.client_body_total)},
                      {"keepalive", seconds(to.keepalive)},
                      {"shutdown_grace", seconds(to.shutdown_grace)}};
  json::object groups;
  for (const auto& [name, g] : cfg.groups) {
    json::object o;
    if (!g.policy.empty()) o["policy"] = g.policy;
    if (g.attempts) o["attempts"] = g.attempts;
    groups[name] = std::move(o);
  }
  root["groups"] = std::move(groups);
  const auto& h = cfg.health;
  root["health"] = {{"consecutive_failures", h.consecutive_failures},
                    {"error_ratio", h.error_ratio},
                    {"min_requests", h.min_requests},
                    {"window", seconds(h.window)},
                    {"base_ejection", seconds(h.base_ejection)},
                    {"max_ejection", seconds(h.max_ejection)}};
  root["retry"] = {{"budget_ratio", cfg.retry.budget_ratio},
                   {"budget_min_per_second", cfg.retry.budget_min_per_second}};
  if (cfg.admin.enabled)
    root["admin"] = {{"listen", cfg.admin.listen}, {"token", secret(cfg.admin.token)}};
  else
    root["admin"] = false;
  root["metrics"] = {{"max_clients", cfg.metrics.max_clients},
                     {"stream_usage", cfg.metrics.stream_usage}};
  constexpr const char* log_levels[] = {"debug", "info", "warn", "error"};
  constexpr const char* log_access[] = {"all", "errors", "off"};
  json::object log{{"format", cfg.log.format == log_config::format_kind::json ? "json" : "text"},
                   {"level", log_levels[static_cast<int>(cfg.log.level)]},
                   {"access", log_access[static_cast<int>(cfg.log.access)]}};
  if (!cfg.log.file.empty()) log["file"] = cfg.log.file;
  root["log"] = std::move(log);
  root["headers"] = {{"expose_routing", cfg.headers.expose_routing},
                     {"server_timing", cfg.headers.server_timing},
                     {"request_id", cfg.headers.request_id}};
  if (cfg.tls.enabled) {
    json::object t{{"listen", cfg.tls.listen}, {"cert", cfg.tls.cert}, {"key", cfg.tls.key}};
    if (!cfg.tls.client_ca.empty()) t["client_ca"] = cfg.tls.client_ca;
    t["http2"] = cfg.tls.http2;
    t["http2_max_concurrent_streams"] = cfg.tls.http2_max_concurrent_streams;
    t["http2_connection_body_bytes"] = cfg.tls.http2_connection_body_bytes;
    root["tls"] = std::move(t);
  }
  if (cfg.state.enabled) {  // shared state: the Redis URL without its password
    const auto& st = cfg.state;
    std::string redis;
    if (st.redis) {
      const auto& u = *st.redis;
      redis = "redis://" + (u.password.empty() ? "" : u.username + ":[redacted]@") +
              (u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host) + ":" +
              std::to_string(u.port) + "/" + std::to_string(u.db);
    }
    root["state"] = {
        {"path", st.path},
        {"redis", redis},
        {"timeout", std::to_string(st.timeout.count()) + "ms"},
        {"lease_ttl", std::to_string(st.lease_ttl.count()) + "ms"},
        {"on_failure", st.on_failure == state_config::failure::local ? "local" : "deny"},
        {"instances", st.instances},
        {"prefix", st.prefix},
        {"cluster", st.cluster}};
  }
  return json::serialize(root);
}

}  // namespace ob::config
