#include "server/worker_mailbox.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include <boost/asio/buffer.hpp>
#include <boost/system/system_error.hpp>

#include "observe/log.hpp"

namespace ob::server {

namespace asio = boost::asio;

namespace {

int make_eventfd() {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw boost::system::system_error(errno, boost::system::system_category(), "eventfd");
  return fd;
}

}  // namespace

worker_mailbox::worker_mailbox(asio::io_context& loop) : wake_(loop, make_eventfd()) {}

worker_mailbox::~worker_mailbox() {
  discard();
}

bool worker_mailbox::post(task t) {
  bool wake = false, open = false;
  {
    std::lock_guard lock(mu_);
    open = !closed_;
    // The loop drains the whole queue after each wake-up: only the first task of a batch
    // needs one.
    wake = open && queued_.empty();
    queued_.push_back(std::move(t));
  }
  if (wake) {
    std::uint64_t one = 1;
    // Cannot fail short of a counter overflow (2^64 - 2 unread wake-ups): not reachable.
    [[maybe_unused]] auto n = ::write(wake_.native_handle(), &one, sizeof one);
  }
  return open;
}

void worker_mailbox::start() {
  wait();
}

void worker_mailbox::wait() {
  wake_.async_read_some(asio::buffer(&wake_count_, sizeof wake_count_),
                        [this](boost::system::error_code ec, std::size_t) {
                          if (ec == asio::error::operation_aborted) return;
                          if (ec) {
                            observe::log(
                                observe::level::error,
                                "worker mailbox: cannot read its eventfd: " + ec.message());
                            return;
                          }
                          run_queued();
                          std::lock_guard lock(mu_);
                          if (!closed_) wait();
                        });
}

void worker_mailbox::run_queued() {
  {
    std::lock_guard lock(mu_);
    running_.swap(queued_);
  }
  for (auto& t : running_) {
    // A task closed the mailbox (the worker's stop): the rest stay unrun, for discard(). Read
    // without the lock: only this thread writes closed_.
    if (closed_) return;
    try {
      t();
    } catch (const std::exception& e) {  // the other tasks still run
      observe::log(observe::level::error, std::string("worker task failed: ") + e.what());
    } catch (...) {
      observe::log(observe::level::error, "worker task failed");
    }
    t = nullptr;  // what it owns goes now, as it would with a task run by asio
  }
  running_.clear();
}

void worker_mailbox::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  boost::system::error_code ec;
  wake_.cancel(ec);
}

void worker_mailbox::discard() {
  std::vector<task> left;
  {
    std::lock_guard lock(mu_);
    left.swap(queued_);
  }
  running_.clear();
}

}  // namespace ob::server
