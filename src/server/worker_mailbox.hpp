// The one way another thread reaches a worker's event loop. The worker's io_context runs
// without the scheduler's lock (BOOST_ASIO_CONCURRENCY_HINT_UNSAFE), so no other thread may
// post, dispatch or co_spawn onto it, nor touch its sockets and timers: the main thread
// (drain, cut, stop), the admin API (metrics, samples) and the DNS thread (loop_resolver) queue
// a task here instead. The loop learns of it through an eventfd its reactor watches; writing
// the eventfd is a plain syscall, safe from any thread. Off the hot path: a request never
// passes through here.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

namespace ob::server {

class worker_mailbox {
 public:
  using task = std::function<void()>;

  // Throws boost::system::system_error when no eventfd can be made.
  explicit worker_mailbox(boost::asio::io_context& loop);
  ~worker_mailbox();
  worker_mailbox(const worker_mailbox&) = delete;
  worker_mailbox& operator=(const worker_mailbox&) = delete;

  // Any thread. Queues `t` to run on the loop's thread; tasks run in the order they were
  // queued (so in order per sender). Returns false once closed: the task is kept, never run,
  // and destroyed by discard() (a task may own a suspended coroutine of the loop, which must
  // not be destroyed on the caller's thread).
  bool post(task t);
  // Before the loop runs, or on its thread: watch for tasks (those queued earlier run first).
  void start();
  // On the loop's thread: stop watching; later tasks are refused (post() returns false), and
  // those already queued, or after the closing task in its batch, never run.
  void close();
  // Once no thread runs the loop or posts any more: destroys the tasks that never ran.
  void discard();

 private:
  void wait();
  void run_queued();

  boost::asio::posix::stream_descriptor wake_;  // the eventfd
  std::uint64_t wake_count_ = 0;                // where the eventfd's read lands
  std::mutex mu_;
  std::vector<task> queued_;   // guarded by mu_
  bool closed_ = false;        // guarded by mu_
  std::vector<task> running_;  // the loop's thread only: the batch it is running
};

}  // namespace ob::server
