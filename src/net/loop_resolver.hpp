// Host name lookups for a loop that runs without its scheduler's lock
// (BOOST_ASIO_CONCURRENCY_HINT_UNSAFE: the gateway's workers). Asio's own async_resolve does
// the lookup on a private thread and completes by posting into the io_context's scheduler from
// that thread, which the hint forbids. A loop that registers this service (asio::make_service)
// with a thread-safe way in (`post_back`) has its lookups done on the service's thread instead,
// the results handed back through post_back. net::resolve() picks the right way for its
// executor, so code shared with ordinary loops (health checks, the admin API) calls only that.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace ob::net {

using resolve_results =
    std::pair<boost::system::error_code, std::vector<boost::asio::ip::tcp::endpoint>>;

class loop_resolver : public boost::asio::execution_context::service {
 public:
  using key_type = loop_resolver;
  static boost::asio::execution_context::id id;
  using task = std::function<void()>;
  // A blocking lookup (the system's getaddrinfo by default; tests give their own).
  using lookup_fn =
      std::function<resolve_results(const std::string& host, const std::string& port)>;

  // Lookups at once, at most: each on its own thread, so that a name whose DNS server does not
  // answer (a resolver timeout is 5 s per try, or what resolv.conf says) does not hold up the
  // lookups of other names behind it.
  static constexpr std::size_t max_threads = 4;

  // `post_back` runs a task on the loop's thread; callable from any thread.
  loop_resolver(boost::asio::execution_context& ctx, std::function<void(task)> post_back,
                lookup_fn lookup = {});
  // Only for asio::use_service's sake; resolve() must not be called on one made this way.
  explicit loop_resolver(boost::asio::execution_context& ctx) : loop_resolver(ctx, nullptr) {}
  ~loop_resolver() override;

  // Any thread: looks host:port up on one of the service's threads (started as needed, up to
  // max_threads), then hands `done` to post_back. Lookups start in order.
  void resolve(std::string host, std::string port, std::function<void(resolve_results)> done);
  // Waits for the lookups in progress (their `done` is handed to post_back), then ends the
  // threads; the lookups still queued are dropped, their `done` destroyed unrun on the
  // caller's thread. Call once the loop no longer runs (their `done` may own its suspended
  // coroutines). Idempotent.
  void stop();

 private:
  void shutdown() override { stop(); }
  struct job {
    std::string host, port;
    std::function<void(resolve_results)> done;
  };
  void run();

  std::function<void(task)> post_back_;
  lookup_fn lookup_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<job> jobs_;              // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  std::size_t idle_ = 0;              // threads waiting for a job; guarded by mu_
  std::vector<std::thread> threads_;  // started under mu_ by resolve(), joined by stop()
};

// co_await resolve(ex, host, port) from a coroutine running on `ex`: through the loop's
// loop_resolver when it has one, asio's resolver otherwise. The error is set when the lookup
// fails; there is no cancellation (a lookup in progress runs to its end either way).
boost::asio::awaitable<resolve_results> resolve(boost::asio::any_io_executor ex, std::string host,
                                                std::string port);

}  // namespace ob::net
