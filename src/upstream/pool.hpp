// Idle keep-alive connections of one worker thread, keyed by origin ("scheme|host|port").
// Last-in-first-out so the warmest connection is reused and surplus ones age out. The pool
// knows nothing of routes or requests: the proxy leases, uses and returns.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "upstream/connection.hpp"

namespace ob::upstream {

class pool {
 public:
  struct options {
    std::chrono::milliseconds max_idle{50'000};  // below the usual 60 s upstream keep-alive
    std::size_t max_idle_per_origin = 256;
    std::chrono::milliseconds check_after{1'000};  // idle longer: check it is still open
  };
  pool() = default;
  explicit pool(options o) : opts_(o) {}

  // An idle connection to `origin`, or nullptr.
  std::unique_ptr<connection> lease(std::string_view origin);
  // Keeps `c` for reuse (the caller saw a complete answer that allows keep-alive).
  void release(std::string_view origin, std::unique_ptr<connection> c);
  std::size_t idle_count() const;
  void clear();

 private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  void expire(std::deque<std::unique_ptr<connection>>& q,
              std::chrono::steady_clock::time_point now);

  options opts_;
  std::unordered_map<std::string, std::deque<std::unique_ptr<connection>>, string_hash,
                     std::equal_to<>>
      idle_;
};

}  // namespace ob::upstream
