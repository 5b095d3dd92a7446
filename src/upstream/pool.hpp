// Idle keep-alive connections of one worker thread, keyed by origin ("scheme|host|port").
// Last-in-first-out so the warmest connection is reused and surplus ones age out. The pool
// knows nothing of routes or requests: the proxy leases, uses and returns.
//
// An idle connection must stay silent: a provider that sends anything on it (a stray answer
// after a complete one, a TLS alert, its FIN when its keep-alive timer closes it) has left
// HTTP/1.1's request/answer pairing, and reusing it would hand those bytes to the next request
// as its answer. Like nginx's upstream keepalive, each idle connection is watched for
// readability and closed the moment it becomes readable; lease() cancels the watch.
#pragma once

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "upstream/connection.hpp"

namespace ob::upstream {

// How long an idle connection may be kept after an answer that said "Keep-Alive: timeout=N"
// (`value`: that header's value; the seconds the provider keeps an idle connection open, sent
// by Node.js, Apache and others): N seconds less a margin. The provider's timer starts when it
// has sent its answer, before the gateway has read it, and a request written as the provider
// closes the connection is lost after it was sent (a POST is not sent twice): the connection is
// dropped 1 s before the provider would drop it, or at half of N when N is under 2 s. Zero for
// timeout=0 (not kept); milliseconds::max() when `value` gives no timeout.
std::chrono::milliseconds keep_alive_limit(std::string_view value);

class pool {
 public:
  struct options {
    // At most this idle (each connection's keep_limit may say less): below the usual 60 s.
    std::chrono::milliseconds max_idle{50'000};
    std::size_t max_idle_per_origin = 256;
  };
  pool() = default;
  explicit pool(options o) : opts_(o) {}
  pool(const pool&) = delete;  // idle watches point at this object
  pool& operator=(const pool&) = delete;

  // An origin with its hash, so that a caller who looks the same origin up on every request
  // (routing::target keeps pool_key's) does not hash it each time.
  struct origin {
    std::string_view name;
    std::size_t hash;  // hash_of(name)
    friend bool operator==(const origin& a, std::string_view b) { return a.name == b; }
  };
  // std::hash<std::string_view>: routing::target::pool_hash is computed the same way.
  static std::size_t hash_of(std::string_view name) { return std::hash<std::string_view>{}(name); }

  // An idle connection to `origin`, or nullptr.
  // `limit`: the longest idle time the caller accepts (its provider's timeouts.pool_idle: the
  // connection may have been released by another provider of the same origin, or before a
  // reload lowered it); an idle connection past it is closed rather than leased.
  std::unique_ptr<connection> lease(
      origin o, std::chrono::milliseconds limit = std::chrono::milliseconds::max());
  std::unique_ptr<connection> lease(
      std::string_view o, std::chrono::milliseconds limit = std::chrono::milliseconds::max()) {
    return lease(origin{o, hash_of(o)}, limit);
  }
  // Keeps `c` for reuse: the caller saw a complete answer that allows keep-alive. A connection
  // holding unread input (bytes past the answer, in its buffer or inside TLS) is closed.
  void release(origin o, std::unique_ptr<connection> c);
  void release(std::string_view o, std::unique_ptr<connection> c) {
    release(origin{o, hash_of(o)}, std::move(c));
  }
  // Closes connections idle longer than max_idle (or their keep_limit), whether or not requests
  // come for their origin (lease and release expire only their own origin's).
  void sweep(std::chrono::steady_clock::time_point now);
  // Closes the connections of every origin for which keep(origin) is false (after a reload).
  void retain(const std::function<bool(std::string_view origin)>& keep);
  std::size_t idle_count() const;
  // Calls f(origin, idle connections) for every origin with idle connections.
  template <class F>
  void for_each_origin(F&& f) const {
    for (const auto& [origin, q] : idle_)
      if (!q.empty()) f(std::string_view(origin), q.size());
  }
  void clear();

 private:
  using queue = std::deque<std::unique_ptr<connection>>;
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return hash_of(s); }
    std::size_t operator()(const origin& o) const { return o.hash; }
  };
  void expire(queue& q, std::chrono::steady_clock::time_point now);
  bool expired(const connection& c, std::chrono::steady_clock::time_point now,
               std::chrono::milliseconds limit = std::chrono::milliseconds::max()) const {
    return now - c.idle_since > std::min({opts_.max_idle, c.keep_limit, limit});
  }
  void watch(connection& c);
  // `closed_by_peer`: EOF or an error rather than stray bytes.
  static void on_readable(connection& c, bool closed_by_peer);

  options opts_;
  std::unordered_map<std::string, queue, string_hash, std::equal_to<>> idle_;
};

}  // namespace ob::upstream
