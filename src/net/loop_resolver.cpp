#include "net/loop_resolver.hpp"

#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace ob::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

asio::execution_context::id loop_resolver::id;

loop_resolver::loop_resolver(asio::execution_context& ctx, std::function<void(task)> post_back,
                             lookup_fn lookup)
    : asio::execution_context::service(ctx),
      post_back_(std::move(post_back)),
      lookup_(std::move(lookup)) {
  if (!lookup_)
    lookup_ = [](const std::string& host, const std::string& port) {
      asio::io_context own;  // synchronous lookups only: never run
      tcp::resolver resolver(own);
      resolve_results r;
      auto found = resolver.resolve(host, port, r.first);
      if (!r.first)
        for (const auto& e : found) r.second.push_back(e.endpoint());
      return r;
    };
}

loop_resolver::~loop_resolver() {
  stop();
}

void loop_resolver::resolve(std::string host, std::string port,
                            std::function<void(resolve_results)> done) {
  std::lock_guard lock(mu_);
  if (stopping_) return;  // `done` goes with this frame: only after the loop ended
  jobs_.push_back({std::move(host), std::move(port), std::move(done)});
  if (idle_ < jobs_.size() && threads_.size() < max_threads)
    threads_.emplace_back([this] { run(); });
  else
    cv_.notify_one();
}

void loop_resolver::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_;
    cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    --idle_;
    if (stopping_) return;
    job j = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    auto r = lookup_(j.host, j.port);
    post_back_([done = std::move(j.done), r = std::move(r)] { done(r); });
    lock.lock();
  }
}

void loop_resolver::stop() {
  std::deque<job> dropped;
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dropped.swap(jobs_);
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
}

asio::awaitable<resolve_results> resolve(asio::any_io_executor ex, std::string host,
                                         std::string port) {
  auto& ctx = asio::query(ex, asio::execution::context);
  if (!asio::has_service<loop_resolver>(ctx)) {
    tcp::resolver resolver(ex);
    auto [ec, found] =
        co_await resolver.async_resolve(host, port, asio::as_tuple(asio::use_awaitable));
    resolve_results r{ec, {}};
    if (!ec)
      for (const auto& e : found) r.second.push_back(e.endpoint());
    co_return r;
  }
  auto& service = asio::use_service<loop_resolver>(ctx);
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>, void(resolve_results)>(
      [&service, &host, &port](auto handler) {
        // Shared: the task that resumes this coroutine is a copyable std::function. Invoked
        // once, on the loop's thread; if it never is (the loop ended first), the worker
        // destroys it with the rest of its loop.
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        service.resolve(std::move(host), std::move(port),
                        [h](resolve_results r) { (*h)(std::move(r)); });
      },
      asio::use_awaitable);
}

}  // namespace ob::net
