// The shared counters of client keys, read from Redis for GET /admin/v1/keys: what admit.lua
// would see for each key now (its remainders on Redis TIME, leases in flight, budget used and
// reserved), computed by keys_state.lua without writing anything.
//
// One EVALSHA per key, every call written at once on one connection (one pipelined batch, one
// round trip): a key's 6 names share one hash tag, so each call stays within one slot of a
// Redis Cluster, which a single script over every key could not.
//
// Who calls it: the admin listener, on its own event loop, with its own redis::client (the
// workers' connections live on their threads). Nothing here blocks: the read ends when every
// reply came, failed or timed out, that is within the client's timeout (a NOSCRIPT answer costs
// one more round trip), and never later than `limit`.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "limits/memory_backend.hpp"
#include "state/redis/arg_buffer.hpp"
#include "state/redis/client.hpp"

struct redisReply;

namespace ob::state {

const redis::script& keys_state_script();

// Appends one key's keys_state.lua keys (admit.lua's 6, through the key naming helper) then
// its arguments to `a`; returns the number of keys. `head` and `one_slot` name keys as the
// backend does (key_head(prefix, cluster), cluster). `clock` 0 = Redis TIME (tests pass one).
std::size_t keys_state_call(redis::arg_buffer& a, std::string_view head, bool one_slot,
                            const limits::key_demand& k, limits::epoch_ms clock = 0);

// One keys_state.lua reply: Redis's clock and the key's counters; nullopt when the reply is
// not one (an error reply, a wrong shape).
struct key_state_reply {
  limits::epoch_ms now = 0;
  limits::key_usage usage;
};
std::optional<key_state_reply> parse_keys_state(const redisReply* r);

struct keys_state_read {
  std::vector<limits::key_usage> usage;  // usage[i] of keys[i]; empty when error is set
  limits::epoch_ms now = 0;              // Redis TIME of the first reply
  // "" when every key was read; else why not: "timeout", "not_connected", "connection_lost",
  // "stopped", "script error: <Redis's message>" or "bad reply".
  std::string error;
};

// Reads every key of `keys` (all-or-nothing: one failed call fails the read). The pointers
// must stay valid until the first suspension only (the call's bytes are copied). Run on the
// client's executor.
boost::asio::awaitable<keys_state_read> read_keys_state(
    std::shared_ptr<redis::client> client, std::string_view head, bool one_slot,
    std::span<const limits::key_demand* const> keys, std::chrono::milliseconds limit,
    limits::epoch_ms clock = 0);

}  // namespace ob::state
