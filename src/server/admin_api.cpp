#include "server/admin_api.hpp"

#include <charconv>
#include "server/admin_usage.hpp"

#include <ctime>
#include <map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "auth/token_check.hpp"
#include "config/redacted.hpp"
#include "observe/clock.hpp"
#include "observe/events.hpp"
#include "observe/gateway_metrics.hpp"
#include "observe/log.hpp"
#include "proxy/json/model.hpp"
#include "state/keys_state.hpp"

#ifndef OPENBRIDGE_VERSION
#define OPENBRIDGE_VERSION "dev"
#endif

namespace ob::server {

namespace asio = boost::asio;
namespace metrics = observe::metrics;
using json_out = std::string;

namespace {

struct gathered {
  metrics::shard merged;
  std::map<std::string, std::array<std::size_t, 2>, std::less<>> upstream;
};

// Every worker copies its own shard on its own thread (no lock on the hot path); the copies
// are merged here, on the admin thread.
asio::awaitable<gathered> gather(const std::vector<std::unique_ptr<worker>>& workers) {
  gathered g;
  for (const auto& w : workers) {
    worker* wp = w.get();
    auto st = co_await wp->ask([wp] { return wp->collect(); });
    // The copy is ours: the first one becomes the merge's base instead of being added to an
    // empty shard entry by entry.
    if (&w == &workers.front())
      g.merged = std::move(st.metrics);
    else
      g.merged.merge(st.metrics);
    for (const auto& [origin, n] : st.upstream) {
      auto& mine = g.upstream[origin];
      mine[0] += n[0];
      mine[1] += n[1];
    }
  }
  co_return g;
}

// "https|api.openai.com|443" -> "api.openai.com:443"
std::string origin_label(std::string_view pool_key) {
  auto a = pool_key.find('|');
  auto b = pool_key.rfind('|');
  if (a == std::string_view::npos || b == a) return std::string(pool_key);
  return std::string(pool_key.substr(a + 1, b - a - 1)) + ":" + std::string(pool_key.substr(b + 1));
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::chrono::system_clock::time_point wall_of(std::chrono::steady_clock::time_point t) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             t - std::chrono::steady_clock::now());
}

void append_number(std::string& out, double v) {
  metrics::append_number(out, v);
}

// Whether target i is the first of its group with its label: entries the same in every respect
// (a duplicated provider entry) share one label and one health (routing/table.cpp), so their
// per-target series are written once.
bool first_with_label(const routing::group& g, std::size_t i) {
  for (std::size_t j = 0; j < i; ++j)
    if (g.targets[j].metric_target == g.targets[i].metric_target) return false;
  return true;
}

using ratelimit_map =
    std::unordered_map<metrics::series_key, metrics::shard::gauge_at, metrics::series_key_hash>;

std::string targets_json(const proxy::snapshot& snap, const ratelimit_map& ratelimit) {
  auto now = observe::coarse_now();
  std::string out = R"({"targets":[)";
  bool first = true;
  for (const auto* g : snap.routes.groups()) {
    for (const auto& t : g->targets) {
      auto v = t.health->view(now);
      if (!first) out += ',';
      first = false;
      out += R"({"group":)";
      proxy::json::append_json_string(out, g->name);
      out += R"(,"target":)";
      proxy::json::append_json_string(out, metrics::labels().value(t.metric_target));
      out += R"(,"model":)";
      proxy::json::append_json_string(out, t.provider->name);
      out += R"(,"provider":)";
      proxy::json::append_json_string(out, t.provider->url.host_header);
      out += R"(,"weight":)";
      append_number(out, t.weight);
      out += R"(,"state":")";
      out += routing::to_string(v.state);
      out += R"(","ejected_until":)";
      if (v.state != routing::health_state::healthy)
        proxy::json::append_json_string(out, rfc3339(wall_of(v.until)));
      else
        out += "null";
      out += R"(,"last_ejection_reason":)";
      if (*v.reason)
        proxy::json::append_json_string(out, v.reason);
      else
        out += "null";
      out += R"(,"ejections":)";
      append_number(out, static_cast<double>(v.ejections));
      out += R"(,"in_flight":)";
      append_number(out, v.in_flight);
      auto seen = v.window_ok + v.window_failed;
      out += R"(,"window_requests":)";
      append_number(out, static_cast<double>(seen));
      out += R"(,"error_ratio":)";
      if (seen)
        append_number(out, static_cast<double>(v.window_failed) / static_cast<double>(seen));
      else
        out += "null";
      out += R"(,"ewma_ttfb_ms":)";
      if (v.ewma_ms > 0)
        append_number(out, v.ewma_ms);
      else
        out += "null";
      out += R"(,"ratelimit_remaining":{)";
      bool any = false;
      for (std::uint32_t type : {0u, 1u}) {
        auto it = ratelimit.find(metrics::shard::key(t.metric_target, type));
        if (it == ratelimit.end()) continue;
        if (any) out += ',';
        any = true;
        out += type == 0 ? R"("requests":)" : R"("tokens":)";
        append_number(out, it->second.value);
      }
      out += "}}";
    }
  }
  out += "]}";
  return out;
}

std::string reload_json(const proxy::snapshot_store::reload_outcome& o, std::uint64_t generation) {
  std::string out = R"({"applied":)";
  out += o.applied || o.unchanged ? "true" : "false";
  out += R"(,"generation":)";
  append_number(out, static_cast<double>(generation));
  out += R"(,"diagnostics":[)";
  bool first = true;
  for (const auto& d : o.diagnostics) {
    if (!first) out += ',';
    first = false;
    out += R"({"level":)";
    out += d.severity == config::diagnostic::level::error ? R"("error")" : R"("warning")";
    out += R"(,"path":)";
    proxy::json::append_json_string(out, d.path);
    out += R"(,"message":)";
    proxy::json::append_json_string(out, d.message);
    out += '}';
  }
  out += "]}";
  return out;
}

}  // namespace

// The shared counters of the snapshot's keys that `which` picks, in one pipelined batch on the
// admin loop's own connection (state/keys_state.hpp); each call times out after
// state.timeout, the whole read shortly after. /admin/v1/keys and /metrics both read through
// here. A dashboard and a scraper poll: one log line when reading starts failing and one when
// it works again, not one per call.
asio::awaitable<shared_read> read_shared(admin_context& c, const proxy::snapshot& snap,
                                         shared_keys which) {
  std::vector<const limits::key_demand*> picked;
  std::vector<std::size_t> index;  // picked[j] is snapshot key index[j]
  for (std::size_t i = 0; i < snap.keys.keys.size(); ++i) {
    const auto& k = snap.keys.keys[i];
    bool want = which == shared_keys::limited ? k.limited
                                              : k.demand.budget.unit != limits::budget_unit::none;
    if (!want) continue;
    picked.push_back(&k.demand);
    index.push_back(i);
  }
  auto read = co_await state::read_keys_state(c.redis, c.redis_head, c.redis_one_slot, picked,
                                              c.redis_timeout * 2 + std::chrono::milliseconds(50));
  // Reading no key asks Redis nothing: it says nothing of Redis either.
  if (!picked.empty() && read.error != c.redis_last_error) {
    if (read.error.empty())
      observe::log(observe::level::info, "admin: reads the keys' shared counters from Redis again");
    else
      observe::log(observe::level::warn,
                   "admin: cannot read the keys' shared counters: redis " + read.error +
                       " (/admin/v1/keys shows this instance's local counters, /metrics leaves "
                       "out openbridge_budget_remaining)");
    c.redis_last_error = read.error;
  }
  shared_read out;
  out.error = std::move(read.error);
  if (!out.error.empty()) co_return out;
  out.now = read.now;
  out.usage.resize(snap.keys.keys.size());
  for (std::size_t j = 0; j < index.size(); ++j) out.usage[index[j]] = read.usage[j];
  co_return out;
}

asio::awaitable<std::string> render_metrics(admin_context& c) {
  auto g = co_await gather(c.workers);
  auto snap = c.store.load();
  // The budgets' shared figures, on the admin loop (no worker waits), within state.timeout.
  shared_read shared;
  if (c.redis) shared = co_await read_shared(c, *snap, shared_keys::budgeted);
  metrics::live_set live;
  for (const auto* grp : snap->routes.groups()) {
    live.groups.insert(grp->metric_group);
    for (const auto& t : grp->targets) live.targets.insert(t.metric_target);
  }
  // Sized from the previous scrape: rendering megabytes then appends into one allocation.
  static metrics::output_size_hint size_hint;
  std::string out = size_hint.buffer();
  metrics::text_writer w(out);
  metrics::render(w, g.merged, live);

  auto now = observe::coarse_now();
  w.family("openbridge_target_up", "gauge",
           "1 while a target takes traffic, 0 while it is ejected or being probed.");
  for (const auto* grp : snap->routes.groups())
    for (std::size_t i = 0; i < grp->targets.size(); ++i) {
      const auto& t = grp->targets[i];
      if (!first_with_label(*grp, i)) continue;
      metrics::label l[] = {{"group", grp->name},
                            {"target", metrics::labels().value(t.metric_target)}};
      w.sample("openbridge_target_up", l,
               t.health->state(now) == routing::health_state::healthy ? 1.0 : 0.0);
    }
  w.family("openbridge_target_ejections_total", "counter",
           "Ejections of a target by passive health or active checks, by reason.");
  for (const auto* grp : snap->routes.groups())
    for (std::size_t i = 0; i < grp->targets.size(); ++i) {
      const auto& t = grp->targets[i];
      if (!first_with_label(*grp, i)) continue;
      auto v = t.health->view(now);
      for (std::size_t r = 0; r < v.by_reason.size(); ++r) {
        metrics::label l[] = {
            {"group", grp->name},
            {"target", metrics::labels().value(t.metric_target)},
            {"reason", routing::to_string(static_cast<routing::ejection_reason>(r))}};
        w.sample("openbridge_target_ejections_total", l,
                 static_cast<std::uint64_t>(v.by_reason[r]));
      }
    }
  w.family("openbridge_upstream_connections", "gauge",
           "Connections to provider origins (host:port), idle in the pool or in use.");
  for (const auto& [origin, n] : g.upstream) {
    auto label = origin_label(origin);
    metrics::label idle[] = {{"target", label}, {"state", "idle"}};
    w.sample("openbridge_upstream_connections", idle, static_cast<std::uint64_t>(n[0]));
    metrics::label active[] = {{"target", label}, {"state", "active"}};
    w.sample("openbridge_upstream_connections", active, static_cast<std::uint64_t>(n[1]));
  }
  // With Redis the budgets live there (this instance's counters hold nothing): the figures are
  // Redis's, or, when Redis did not answer, left out rather than shown wrong.
  w.family("openbridge_budget_remaining", "gauge",
           "What is left of a key's budget in the current period (unit tokens or usd).");
  if (!c.redis || shared.error.empty()) {
    auto wall = limits::wall_now();
    for (std::size_t i = 0; i < snap->keys.keys.size(); ++i) {
      const auto& k = snap->keys.keys[i];
      const auto& b = k.demand.budget;
      if (b.unit == limits::budget_unit::none) continue;
      auto u = c.redis ? shared.usage[i] : snap->keys.memory->peek(k.demand, wall);
      auto spent = u.budget_used + u.budget_reserved;
      auto left = spent >= b.amount ? 0 : b.amount - spent;
      bool usd = b.unit == limits::budget_unit::usd;
      metrics::label l[] = {{"client", k.cfg->name}, {"unit", usd ? "usd" : "tokens"}};
      w.sample("openbridge_budget_remaining", l,
               usd ? static_cast<double>(left) / 1e6 : static_cast<double>(left));
    }
  }
  if (c.redis) {
    w.family("openbridge_state_read_ok", "gauge",
             "With state.redis: 1 when this scrape read the keys' shared counters from Redis, 0 "
             "when Redis did not answer within state.timeout (openbridge_budget_remaining is "
             "then left out).");
    w.sample("openbridge_state_read_ok", {}, shared.error.empty() ? 1.0 : 0.0);
  }
  w.family("openbridge_config_reloads_total", "counter",
           "Config reloads since start, by result (applied, refused).");
  w.sample("openbridge_config_reloads_total", {{"result", "applied"}},
           c.reloads.applied.load(std::memory_order_relaxed));
  w.sample("openbridge_config_reloads_total", {{"result", "refused"}},
           c.reloads.refused.load(std::memory_order_relaxed));
  w.family("openbridge_config_last_reload_success_timestamp_seconds", "gauge",
           "When the running config was loaded (start or the last applied reload), unix time.");
  w.sample("openbridge_config_last_reload_success_timestamp_seconds", {},
           c.reloads.last_success.load(std::memory_order_relaxed));
  w.family("openbridge_build_info", "gauge", "Always 1; the version is a label.");
  w.sample("openbridge_build_info", {{"version", OPENBRIDGE_VERSION}}, 1.0);
  metrics::write_process_metrics(w);
  size_hint.remember(out.size());
  co_return out;
}

asio::awaitable<std::string> keys_answer(admin_context& c) {
  auto snap = c.store.load();  // the key pointers read_shared takes live as long as this
  // 429s per key and limit: from the workers' shards (a copy each, on their threads).
  auto g = co_await gather(c.workers);
  if (!c.redis) co_return keys_json(*snap, limits::wall_now(), &g.merged.ratelimited, c.ledger);
  auto read = co_await read_shared(c, *snap, shared_keys::limited);
  if (!read.error.empty()) {
    co_return keys_json(*snap, limits::wall_now(), &g.merged.ratelimited, c.ledger,
                        {.name = "local", .redis_error = read.error});
  }
  // Redis's clock: the budget period and expiry agree with what admit.lua decides.
  co_return keys_json(*snap, read.now ? read.now : limits::wall_now(), &g.merged.ratelimited,
                      c.ledger, {.name = "redis", .usage = &read.usage});
}

void reload_history::record(std::string_view trigger,
                            const proxy::snapshot_store::reload_outcome& o,
                            std::uint64_t generation) {
  entry e;
  e.time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  e.trigger = trigger;
  e.applied = o.applied || o.unchanged;
  e.generation = generation;
  e.diagnostics = o.diagnostics;
  std::lock_guard lock(m_);
  entries_.push_front(std::move(e));
  if (entries_.size() > kept) entries_.pop_back();
}

std::string reload_history::json() const {
  std::lock_guard lock(m_);
  std::string out = R"({"reloads":[)";
  bool first = true;
  for (const auto& e : entries_) {
    if (!first) out += ',';
    first = false;
    out += R"({"time":)";
    proxy::json::append_json_string(
        out, rfc3339(std::chrono::system_clock::time_point(
                 std::chrono::duration_cast<std::chrono::system_clock::duration>(
                     std::chrono::duration<double>(e.time)))));
    out += R"(,"trigger":)";
    proxy::json::append_json_string(out, e.trigger);
    out += R"(,"applied":)";
    out += e.applied ? "true" : "false";
    out += R"(,"generation":)";
    append_number(out, static_cast<double>(e.generation));
    out += R"(,"diagnostics":[)";
    bool first_d = true;
    for (const auto& d : e.diagnostics) {
      if (!first_d) out += ',';
      first_d = false;
      out += R"({"level":)";
      out += d.severity == config::diagnostic::level::error ? R"("error")" : R"("warning")";
      out += R"(,"path":)";
      proxy::json::append_json_string(out, d.path);
      out += R"(,"message":)";
      proxy::json::append_json_string(out, d.message);
      out += '}';
    }
    out += "]}";
  }
  out += "]}";
  return out;
}

traffic_sampler::traffic_sampler(asio::io_context& ioc, admin_context& c)
    : ioc_(ioc), c_(c), state_(std::make_shared<state>(ioc)) {}

void traffic_sampler::start() {
  asio::co_spawn(ioc_, loop(state_, c_), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      observe::log(observe::level::error, std::string("dashboard sampler stopped: ") + ex.what());
    }
  });
}

void traffic_sampler::stop() {
  state_->stopped = true;
  state_->timer.cancel();
}

asio::awaitable<void> traffic_sampler::loop(std::shared_ptr<state> s, admin_context& c) {
  // Status code label ids -> numbers, resolved once per distinct code.
  std::unordered_map<std::uint32_t, int> codes;
  auto status_of = [&codes](std::uint32_t id) {
    auto [it, added] = codes.try_emplace(id, 0);
    if (added) {
      auto v = metrics::labels().value(id);
      int n = 0;
      std::from_chars(v.data(), v.data() + v.size(), n);
      it->second = n;
    }
    return it->second;
  };
  using clock = std::chrono::system_clock;
  while (!s->stopped) {
    // Sample just after each wall-clock second, so points line up with unix seconds.
    auto now = clock::now();
    auto next = std::chrono::floor<std::chrono::seconds>(now) + std::chrono::seconds(1) +
                std::chrono::milliseconds(5);
    s->timer.expires_after(next - now);
    co_await s->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (s->stopped) co_return;
    metrics::traffic_totals sum;
    for (const auto& w : c.workers) {
      worker* wp = w.get();
      auto t = co_await wp->ask([wp] { return wp->traffic(); });
      if (s->stopped) co_return;
      sum.add(t);
    }
    auto second = std::chrono::floor<std::chrono::seconds>(clock::now()).time_since_epoch().count();
    c.series.sample(second, sum, status_of);
    c.latest = std::move(sum);
    c.have_latest = true;
  }
}

admin::admin_handlers make_admin_handlers(admin_context& c) {
  admin::admin_handlers h;
  h.metrics = [&c]() { return render_metrics(c); };
  h.targets = [&c]() -> asio::awaitable<std::string> {
    // The sampler folds the shards every second: its rate-limit headers are at most a second
    // old, and a dashboard polling this route costs the workers nothing.
    if (c.have_latest) co_return targets_json(*c.store.load(), c.latest.ratelimit_remaining);
    auto g = co_await gather(c.workers);
    co_return targets_json(*c.store.load(), g.merged.ratelimit_remaining);
  };
  h.config = [&c] { return config::redacted_json(c.store.load()->cfg); };
  h.keys = [&c]() -> asio::awaitable<std::string> { return keys_answer(c); };
  h.reload = [&c] {
    auto o = c.reload();
    return admin::reload_answer{o.applied || o.unchanged, reload_json(o, c.store.generation())};
  };
  h.not_ready = [&c]() -> std::optional<std::string> {
    if (c.shutting_down.load(std::memory_order_relaxed)) return std::string("shutting down");
    auto snap = c.store.load();
    if (!snap) return std::string("no config loaded");
    auto now = observe::coarse_now();
    for (const auto* g : snap->routes.groups()) {
      bool any = false;
      for (const auto& t : g->targets) any = any || t.health->available(now);
      if (!any) return "every target of group \"" + g->name + "\" is ejected";
    }
    return std::nullopt;
  };
  h.events = [](std::uint64_t& cursor, std::size_t tail) {
    admin::events_page page;
    auto& ring = observe::events();
    if (cursor == 0) {
      // A new viewer starts with the last few hundred records.
      auto last = ring.last_sequence();
      cursor = last > 200 ? last - 200 : 0;
    }
    auto batch = tail ? ring.read_recent(cursor, tail, "access") : ring.read_after(cursor, 1000);
    page.missed = batch.dropped;
    page.records.reserve(batch.events.size());
    for (auto& e : batch.events) page.records.push_back(std::move(e.line));
    if (batch.next > cursor) cursor = batch.next;
    return page;
  };
  h.timeseries = [&c](std::int64_t after) {
    return c.series.json(after, [](std::uint32_t id) { return metrics::labels().value(id); });
  };
  h.reloads = [&c] {
    return c.reload_log ? c.reload_log->json() : std::string(R"({"reloads":[]})");
  };
  if (c.ledger)
    h.usage = [&c](std::string_view query) {
      auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
      return usage_answer(*c.ledger, query, now);
    };
  h.token_ok = [&c](std::string_view token) {
    auto snap = c.store.load();  // kept: a reload on another thread may drop it meanwhile
    const auto& want = snap->cfg.admin.token;
    // No token configured: open on loopback only. A listener bound elsewhere (with a token at
    // start) stays closed when a reload drops the token; a restart applies the new address.
    if (want.empty()) return c.loopback;
    return auth::token_set({want}).contains(token);
  };
  return h;
}

}  // namespace ob::server
