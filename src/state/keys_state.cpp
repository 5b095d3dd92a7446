#include "state/keys_state.hpp"

#include <charconv>

#include <hiredis/hiredis.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "state/redis/lua_scripts.hpp"
#include "state/redis_backend.hpp"

namespace ob::state {
namespace {

namespace asio = boost::asio;

// An integer element: an integer reply, or a bulk string of digits (Redis's stored amounts).
template <class T>
bool number(const redisReply* e, T& out) {
  if (e->type == REDIS_REPLY_INTEGER) {
    if constexpr (std::is_unsigned_v<T>) {
      if (e->integer < 0) return false;
    }
    out = static_cast<T>(e->integer);
    return true;
  }
  if (e->type != REDIS_REPLY_STRING) return false;
  auto [p, ec] = std::from_chars(e->str, e->str + e->len, out);
  return ec == std::errc() && p == e->str + e->len && e->len > 0;
}

// The replies of one read, filled as they come; whichever of the reader and the last reply
// ends last frees it.
struct fan_in {
  fan_in(const asio::any_io_executor& ex, std::size_t n) : done(ex), results(n), pending(n) {}
  asio::steady_timer done;  // cancelled by the last reply
  std::vector<redis::result> results;
  std::size_t pending;
  redis::arg_buffer args;
  std::vector<std::pair<std::size_t, std::size_t>> calls;  // per key: first arg, count
};

}  // namespace

const redis::script& keys_state_script() {
  static const redis::script s("keys_state", std::string(redis::lua_keys_state));
  return s;
}

std::size_t keys_state_call(redis::arg_buffer& a, std::string_view head, bool one_slot,
                            const limits::key_demand& k, limits::epoch_ms clock) {
  for (auto part : {"rpm", "rpd", "tpm", "tpd", "conc", "budget"})
    a.add_name(head, one_slot, "k", k.name, part);
  a.add(clock);
  a.add_u(k.limits.rpm);
  a.add_u(k.limits.rpd);
  a.add_u(k.limits.burst);
  a.add_u(k.limits.tpm);
  a.add_u(k.limits.tpd);
  a.add(k.budget.unit == limits::budget_unit::none ? 0 : period_arg(k.budget.period));
  return 6;
}

std::optional<key_state_reply> parse_keys_state(const redisReply* r) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 10) return std::nullopt;
  key_state_reply out;
  auto& u = out.usage;
  const auto* e = r->element;
  if (!number(e[0], out.now) || !number(e[1], u.rpm_remaining) || !number(e[2], u.rpd_remaining) ||
      !number(e[3], u.tpm_remaining) || !number(e[4], u.tpd_remaining) ||
      !number(e[5], u.inflight) || !number(e[6], u.budget_used) ||
      !number(e[7], u.budget_reserved) || !number(e[8], u.budget_period_start) ||
      !number(e[9], u.budget_period_end))
    return std::nullopt;
  return out;
}

asio::awaitable<keys_state_read> read_keys_state(std::shared_ptr<redis::client> client,
                                                 std::string_view head, bool one_slot,
                                                 std::span<const limits::key_demand* const> keys,
                                                 std::chrono::milliseconds limit,
                                                 limits::epoch_ms clock) {
  keys_state_read out;
  if (keys.empty()) co_return out;
  if (!client->connected()) {
    out.error = redis::to_string(redis::errc::not_connected);
    co_return out;
  }
  auto f = std::make_shared<fan_in>(client->executor(), keys.size());
  for (const auto* k : keys) {
    std::size_t first = f->args.size();
    keys_state_call(f->args, head, one_slot, *k, clock);
    f->calls.emplace_back(first, f->args.size() - first);
  }
  auto views = f->args.views();  // into f->args, which nothing changes any more
  f->done.expires_after(limit);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto call = views.subspan(f->calls[i].first, f->calls[i].second);
    // Each call is written at once (the client pipelines them); the replies come in order.
    asio::co_spawn(
        client->executor(),
        [client, f, i, call]() -> asio::awaitable<void> {
          f->results[i] = co_await client->eval(keys_state_script(), 6, call);
          if (--f->pending == 0) f->done.cancel();
        },
        asio::detached);
  }
  if (f->pending > 0) {
    auto [ec] = co_await f->done.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!ec && f->pending > 0) {  // `limit` passed first
      out.error = redis::to_string(redis::errc::timeout);
      co_return out;
    }
  }
  out.usage.reserve(keys.size());
  for (auto& r : f->results) {
    if (r.error != redis::errc::ok) {
      out.error = redis::to_string(r.error);
      break;
    }
    if (r.is_error_reply()) {
      out.error = "script error: " + std::string(r.error_text());
      break;
    }
    auto one = parse_keys_state(r.reply.get());
    if (!one) {
      out.error = "bad reply";
      break;
    }
    if (out.usage.empty()) out.now = one->now;
    out.usage.push_back(one->usage);
  }
  if (!out.error.empty()) out.usage.clear();
  co_return out;
}

}  // namespace ob::state
