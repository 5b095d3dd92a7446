#include "server/worker_state.hpp"

#include <algorithm>

#include "limits/algorithms.hpp"
#include "proxy/admission.hpp"
#include "proxy/snapshot.hpp"

namespace ob::server {

worker_state::worker_state(boost::asio::any_io_executor ex, const config::state_config& cfg,
                           state::ledger* ledger) {
  if (ledger) stage_ = &ledger->add_stage();
  if (!cfg.redis) return;
  options_.prefix = cfg.prefix;
  options_.cluster = cfg.cluster;
  options_.on_failure = cfg.on_failure == config::state_config::failure::deny
                            ? state::failure_mode::deny
                            : state::failure_mode::local;
  options_.instances = cfg.instances;
  options_.lease_ttl = cfg.lease_ttl;
  // Renewed three times per ttl: a holder that misses one renewal keeps its lease.
  options_.renew_every = std::max(std::chrono::milliseconds(100), cfg.lease_ttl / 3);
  client_ = std::make_shared<state::redis::client>(
      ex, state::redis::client_options{
              .address = *cfg.redis, .timeout = cfg.timeout, .cluster = cfg.cluster});
  state::register_scripts(*client_);
  // One settlements' queue per connection: every backend of the worker shares it, so a
  // settlement rides with the worker's next admission whatever snapshot that one runs on.
  options_.batch = std::make_shared<state::settle_batch>(client_);
}

void worker_state::start() {
  if (client_) client_->start();
}

boost::asio::awaitable<void> worker_state::first_attempt() {
  if (auto c = client_) co_await c->first_attempt();  // (c keeps the client while it waits)
}

void worker_state::stop(std::function<void()> done) {
  if (current_) current_->stop();
  for (auto& b : retired_) b->stop();
  if (options_.batch) options_.batch->stop();  // hands what is queued to the connection
  // The connection writes what it holds and reads the replies (at most state.timeout) before
  // it closes: settlements of the last requests are not dropped at shutdown.
  if (client_)
    client_->stop(std::move(done));
  else if (done)
    done();
}

void worker_state::sweep() {
  std::erase_if(retired_, [this](const std::shared_ptr<state::redis_backend>& b) {
    if (b.use_count() > 1 || b->live_leases() > 0) return false;
    // Settlements it queued while Redis was unreachable are not lost with it.
    if (current_) b->hand_over(*current_);
    b->stop();
    return true;
  });
}

limits::backend* worker_state::backend_for(const proxy::snapshot& snap,
                                           std::shared_ptr<void>& hold) {
  if (!client_) return snap.keys.active;
  if (snap.generation != current_gen_ || !current_) {
    // A request still on an older snapshot than the current backend's: a backend of its own
    // (its fallback must be that snapshot's in-memory state, which the request keeps alive).
    auto b = std::make_shared<state::redis_backend>(client_, snap.keys.memory.get(), options_);
    const bool older = current_ && snap.generation < current_gen_;
    b->start(!older);  // refused calls keep going to the current one
    if (older) {
      retired_.push_back(b);
      hold = b;
      return b.get();
    }
    if (current_) retired_.push_back(std::move(current_));
    current_ = std::move(b);
    current_gen_ = snap.generation;
  }
  hold = current_;
  return current_.get();
}

void worker_state::settled(const proxy::snapshot& snap, const observe::request_record& rec,
                           const limits::reservation* key_res) {
  if (!stage_ || rec.ttfb_ms < 0) return;  // nothing reached a provider: no usage
  std::uint64_t in = std::max<std::int64_t>(0, rec.prompt_tokens);
  std::uint64_t out = std::max<std::int64_t>(0, rec.completion_tokens);
  bool known = rec.prompt_tokens >= 0 || rec.completion_tokens >= 0;
  // The price of the provider that answered (the last attempt's).
  const config::provider* served = proxy::served_provider(snap.cfg, rec);
  std::uint64_t usd = 0;
  if (served && served->price)
    usd = state::usd_cost({served->price->input, served->price->output}, in, out);
  auto now = limits::wall_now();
  stage_->record({.key = rec.client_name,
                  .group = rec.group,
                  .target = rec.target,
                  .requests = 1,
                  .input_tokens = in,
                  .output_tokens = out,
                  .usd_micros = usd},
                 now);
  if (!key_res || !key_res->key) return;
  const auto& b = key_res->key->budget;
  std::uint64_t spent = 0;
  if (b.unit == limits::budget_unit::tokens)
    spent = known ? in + out : key_res->budget_cost;
  else if (b.unit == limits::budget_unit::usd)
    spent = known ? usd : key_res->budget_cost;
  else
    return;
  if (spent) stage_->budget(key_res->key->name, key_res->budget_period_start, spent);
}

}  // namespace ob::server
