// Active health checks: for providers with a "health_check" object, a periodic cheap request
// (GET <base><path> with the provider key) whose outcome is reported to the target's passive
// health like any real request. Runs on the main thread's event loop, off the data plane.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "proxy/snapshot.hpp"
#include "upstream/connector.hpp"

namespace ob::server {

class health_checker {
 public:
  health_checker(boost::asio::io_context& ioc, proxy::snapshot_store& store,
                 std::shared_ptr<boost::asio::ssl::context> tls);
  void start();
  void stop();

 private:
  struct target_state {
    // When the last check started: the next is due `interval` after it, under the interval of
    // the config in force then (a reload that shortens it applies from the last check).
    std::optional<std::chrono::steady_clock::time_point> last;
    bool running = false;
    std::uint64_t seen = 0;  // last pass of loop() that found the target in the config
  };
  boost::asio::awaitable<void> loop();
  boost::asio::awaitable<void> check(std::shared_ptr<const proxy::snapshot> snap,
                                     const routing::target* t);

  boost::asio::io_context& ioc_;
  proxy::snapshot_store& store_;
  upstream::connector connector_;
  boost::asio::steady_timer tick_;
  // By target id; entries of targets a reload removed are dropped once their check is over.
  std::unordered_map<std::string, target_state> states_;
  std::uint64_t pass_ = 0;
  bool stopped_ = false;
};

// One check's verdict from an answer status (pure, for tests): 2xx healthy, 429/503 map to
// rate_limited/overloaded (with Retry-After: ejected for that long), everything else a failure.
routing::outcome check_outcome(int status);

// How long the answer asks us to wait: `retry-after-ms` (OpenAI) first, else `Retry-After`
// (seconds or an HTTP date); nothing when neither parses. Pure, for tests.
std::optional<std::chrono::milliseconds> check_retry_after(
    std::string_view retry_after_ms, std::string_view retry_after,
    std::chrono::system_clock::time_point now);

}  // namespace ob::server
