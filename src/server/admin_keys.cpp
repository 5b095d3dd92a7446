// GET /admin/v1/keys: the client keys of the running config and their limit state.
#include <boost/json.hpp>

#include <map>

#include "limits/algorithms.hpp"
#include "server/admin_api.hpp"

namespace ob::server {

namespace {

namespace json = boost::json;

const char* period_name(limits::budget_period p) {
  switch (p) {
    case limits::budget_period::day:
      return "day";
    case limits::budget_period::week:
      return "week";
    case limits::budget_period::month:
      return "month";
  }
  return "month";
}

// {"limit": N, "remaining": R} for a configured limit; absent otherwise.
void window(json::object& o, const char* name, std::uint64_t limit, std::int64_t remaining) {
  if (!limit) return;
  o[name] = {{"limit", limit}, {"remaining", std::max<std::int64_t>(0, remaining)}};
}

// Per key name: {requests, input_tokens, output_tokens, usd} of the ledger's period.
std::map<std::string, json::object, std::less<>> ledger_usage(state::ledger& ledger,
                                                              state::ledger_period p,
                                                              limits::epoch_ms now) {
  std::map<std::string, json::object, std::less<>> out;
  state::usage_query q;
  q.period = p;
  q.now = now;
  for (auto& r : ledger.query(q))
    out[r.key] = {{"requests", r.requests},
                  {"input_tokens", r.input_tokens},
                  {"output_tokens", r.output_tokens},
                  {"usd", static_cast<double>(r.usd_micros) / 1e6}};
  return out;
}

}  // namespace

std::string keys_json(const proxy::snapshot& snap, limits::epoch_ms now,
                      const observe::metrics::series_map<std::uint64_t>* rate_limited,
                      state::ledger* ledger, const keys_source& source) {
  std::map<std::string, json::object, std::less<>> today, month;
  if (ledger) {
    ledger->flush();  // the last second's usage too
    today = ledger_usage(*ledger, state::ledger_period::day, now);
    month = ledger_usage(*ledger, state::ledger_period::month, now);
  }
  // client label -> {limit: count}
  std::map<std::string_view, json::object, std::less<>> limited;
  if (rate_limited) {
    auto& labels = observe::metrics::labels();
    for (const auto& [key, n] : *rate_limited) {
      auto& o = limited[labels.value(key.v[0])];
      auto name = labels.value(key.v[1]);
      auto* v = o.if_contains(name);
      o[name] = (v ? v->to_number<std::uint64_t>() : 0) + n;
    }
  }
  json::array out;
  for (const auto& k : snap.keys.keys) {
    const auto& c = *k.cfg;
    json::object o;
    o["name"] = c.name;
    json::object labels;
    for (const auto& [lk, lv] : c.labels) labels[lk] = lv;
    o["labels"] = std::move(labels);
    if (!c.all_groups) {
      json::array g;
      for (const auto& n : c.groups) g.push_back(json::string(n));
      o["groups"] = std::move(g);
    }
    o["disabled"] = c.disabled;
    o["expires_ms"] = c.expires_ms ? json::value(*c.expires_ms) : json::value(nullptr);
    o["expired"] = c.expires_ms && now >= *c.expires_ms;
    o["legacy"] = c.from_security;
    const auto& l = k.demand.limits;
    json::object lim;
    for (auto [name, v] : {std::pair<const char*, std::uint64_t>{"rpm", l.rpm},
                           {"rpd", l.rpd},
                           {"tpm", l.tpm},
                           {"tpd", l.tpd},
                           {"concurrency", l.concurrency},
                           {"burst", l.burst}})
      if (v) lim[name] = v;
    lim["default_output_tokens"] = k.default_output_tokens;
    o["limits"] = std::move(lim);
    limits::key_usage u;
    if (source.usage)
      u = (*source.usage)[static_cast<std::size_t>(&k - snap.keys.keys.data())];
    else if (k.limited)
      u = snap.keys.memory->peek(k.demand, now);
    json::object usage;
    window(usage, "rpm", l.rpm, u.rpm_remaining);
    window(usage, "rpd", l.rpd, u.rpd_remaining);
    window(usage, "tpm", l.tpm, u.tpm_remaining);
    window(usage, "tpd", l.tpd, u.tpd_remaining);
    if (l.concurrency) usage["concurrency"] = {{"limit", l.concurrency}, {"in_flight", u.inflight}};
    o["usage"] = std::move(usage);
    if (ledger) {
      auto zero = [] {
        return json::object{
            {"requests", 0}, {"input_tokens", 0}, {"output_tokens", 0}, {"usd", 0.0}};
      };
      auto t = today.find(c.name);
      o["usage_today"] = t != today.end() ? t->second : zero();
      auto m = month.find(c.name);
      o["usage_month"] = m != month.end() ? m->second : zero();
    }
    auto rl = limited.find(c.name);
    o["rate_limited"] = rl != limited.end() ? rl->second : json::object{};
    const auto& b = k.demand.budget;
    if (b.unit != limits::budget_unit::none) {
      bool usd = b.unit == limits::budget_unit::usd;
      auto amount = [usd](std::uint64_t v) -> json::value {
        return usd ? json::value(static_cast<double>(v) / 1e6) : json::value(v);
      };
      std::uint64_t spent = u.budget_used + u.budget_reserved;
      o["budget"] = {{"unit", usd ? "usd" : "tokens"},
                     {"period", period_name(b.period)},
                     {"amount", amount(b.amount)},
                     {"used", amount(u.budget_used)},
                     {"reserved", amount(u.budget_reserved)},
                     {"remaining", amount(spent >= b.amount ? 0 : b.amount - spent)},
                     {"period_start_ms", u.budget_period_start},
                     {"period_end_ms", u.budget_period_end}};
    }
    out.push_back(std::move(o));
  }
  json::object answer{{"keys", std::move(out)}, {"source", source.name}};
  if (!source.redis_error.empty()) answer["redis_error"] = source.redis_error;
  return json::serialize(answer);
}

}  // namespace ob::server
