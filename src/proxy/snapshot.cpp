#include "proxy/snapshot.hpp"

#include <fstream>
#include <sstream>

#include "observe/gateway_metrics.hpp"
#include "proxy/json/model.hpp"

namespace ob::proxy {
namespace {

// The model list of every group, or of those `key` may use.
std::string build_models_body(const routing::table& routes,
                              const limits::key_entry* key = nullptr) {
  std::string out = R"({"object":"list","data":[)";
  bool first = true;
  for (const auto* g : routes.groups()) {
    if (key && !key->may_use(g->name)) continue;
    if (!first) out += ',';
    first = false;
    out += R"({"id":)";
    out += g->name_literal;
    out += R"(,"object":"model","created":0,"owned_by":"openbridge"})";
  }
  out += "]}";
  return out;
}

std::vector<std::string> build_key_models(const limits::key_table& keys,
                                          const routing::table& routes) {
  std::vector<std::string> out(keys.keys.size());
  for (std::size_t i = 0; i < keys.keys.size(); ++i)
    if (!keys.keys[i].all_groups) out[i] = build_models_body(routes, &keys.keys[i]);
  return out;
}

std::vector<std::uint32_t> build_client_labels(const config::config& cfg) {
  auto& labels = observe::metrics::labels();
  std::vector<std::uint32_t> out;
  out.reserve(cfg.keys.size());
  for (std::size_t i = 0; i < cfg.keys.size(); ++i)
    out.push_back(
        labels.intern(i < cfg.metrics.max_clients ? cfg.keys[i].name : std::string("other")));
  return out;
}

std::vector<auth::digest> digests_of(const config::config& cfg) {
  std::vector<auth::digest> out;
  out.reserve(cfg.keys.size());
  for (const auto& k : cfg.keys) out.push_back(k.digest);
  return out;
}

limits::state_registry& process_limit_states() {
  static limits::state_registry r;
  return r;
}

}  // namespace

snapshot::snapshot(config::config c, routing::state_registry& states, std::uint64_t gen,
                   limits::state_registry* limit_states)
    : cfg(std::move(c)),
      routes(cfg, states),
      tokens(auth::token_set::from_digests(digests_of(cfg))),
      keys(cfg, limit_states ? *limit_states : process_limit_states()),
      models_body(build_models_body(routes)),
      key_models(build_key_models(keys, routes)),
      client_labels(build_client_labels(cfg)),
      client_names([this] {
        std::vector<std::string> names;
        for (const auto& k : cfg.keys) names.push_back(k.name);
        return names;
      }()),
      generation(gen) {}

void snapshot_store::install(config::config cfg) {
  auto gen = generation_.load() + 1;
  auto s = std::make_shared<const snapshot>(std::move(cfg), states_, gen, &limit_states_);
  if (prepare_) prepare_(*s);
  current_.store(std::move(s), std::memory_order_release);
  generation_.store(gen, std::memory_order_release);
}

snapshot_store::reload_outcome snapshot_store::reload(const std::string& path, bool force) {
  std::lock_guard lock(reload_mu_);
  reload_outcome out;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  if (in) ss << in.rdbuf();
  std::string text = ss.str();
  if (in && !force && text == last_text_) {
    out.unchanged = true;
    return out;
  }
  auto parsed = in ? config::parse(text) : config::load_file(path);
  out.diagnostics = std::move(parsed.diagnostics);
  if (!parsed.ok()) return out;
  last_text_ = std::move(text);
  install(std::move(*parsed.cfg));
  out.applied = true;
  return out;
}

}  // namespace ob::proxy
