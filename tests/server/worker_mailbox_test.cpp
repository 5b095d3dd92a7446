#include "server/worker_mailbox.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>

namespace ob::server {
namespace {

namespace asio = boost::asio;

// A loop like a worker's: no scheduler lock, one thread, the mailbox the only way in.
struct mailbox_loop {
  asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE};
  worker_mailbox mailbox{ioc};
  asio::steady_timer deadline{ioc};
  std::thread::id loop_id;
  bool timed_out = false;

  // Runs the loop on a thread of its own until a task stops it, or 20 s at most.
  std::thread run() {
    mailbox.start();
    deadline.expires_after(std::chrono::seconds(20));
    deadline.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      timed_out = true;
      ioc.stop();
    });
    return std::thread([this] {
      loop_id = std::this_thread::get_id();
      auto guard = asio::make_work_guard(ioc);
      ioc.run();
    });
  }
};

TEST(WorkerMailbox, EveryTaskOfManySendersRunsOnceOnTheLoopInOrderPerSender) {
  constexpr int senders = 8, per_sender = 2000;
  mailbox_loop loop;
  // Queued before the loop's thread starts: must run first, once it does.
  std::vector<int> early;
  loop.mailbox.post([&] { early.push_back(1); });
  // Touched on the loop's thread only (TSan checks that it is).
  std::vector<std::vector<int>> seen(senders);
  int total = 0;
  bool off_loop = false;
  auto t = loop.run();
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int s = 0; s < senders; ++s)
    threads.emplace_back([&, s] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < per_sender; ++i)
        EXPECT_TRUE(loop.mailbox.post([&, s, i] {
          if (std::this_thread::get_id() != loop.loop_id) off_loop = true;
          seen[s].push_back(i);
          if (++total == senders * per_sender) {
            loop.deadline.cancel();
            loop.ioc.stop();
          }
        }));
    });
  go = true;
  for (auto& th : threads) th.join();
  t.join();
  ASSERT_FALSE(loop.timed_out) << "ran " << total << " of " << senders * per_sender;
  EXPECT_EQ(early, std::vector<int>{1});
  EXPECT_FALSE(off_loop);
  for (int s = 0; s < senders; ++s) {
    ASSERT_EQ(seen[s].size(), static_cast<std::size_t>(per_sender)) << "sender " << s;
    for (int i = 0; i < per_sender; ++i) ASSERT_EQ(seen[s][i], i) << "sender " << s;
  }
}

TEST(WorkerMailbox, CloseWhilePostingRefusesLaterTasksAndDiscardDestroysTheUnrun) {
  constexpr int senders = 4, max_per_sender = 1'000'000;
  // Every task holds a copy: the count tells how many are not destroyed yet.
  auto token = std::make_shared<int>(0);
  std::vector<int> ran_after_close;
  int ran = 0;
  std::atomic<int> accepted{0};
  {
    mailbox_loop loop;
    bool closed = false;
    auto t = loop.run();
    std::vector<std::thread> threads;
    for (int s = 0; s < senders; ++s)
      threads.emplace_back([&] {
        // Until refused (the loop closes after 1000 tasks), bounded in count.
        for (int i = 0; i < max_per_sender; ++i) {
          bool ok = loop.mailbox.post([&, token] {
            if (closed) ran_after_close.push_back(1);
            if (++ran == 1000) {
              closed = true;
              loop.mailbox.close();
              loop.deadline.cancel();
              loop.ioc.stop();
            }
          });
          if (!ok) return;
          ++accepted;
        }
        ADD_FAILURE() << "never refused";
      });
    for (auto& th : threads) th.join();
    t.join();
    ASSERT_FALSE(loop.timed_out);
    EXPECT_TRUE(ran_after_close.empty());
    EXPECT_EQ(ran, 1000);
    EXPECT_GE(accepted.load(), 1000);
    // The tasks never run (refused, or queued before the close) are still held...
    EXPECT_GT(token.use_count(), 1);
    loop.mailbox.discard();
    // ...until discard(): each is destroyed once, none runs.
    EXPECT_EQ(token.use_count(), 1);
    EXPECT_EQ(ran, 1000);
  }
}

}  // namespace
}  // namespace ob::server
