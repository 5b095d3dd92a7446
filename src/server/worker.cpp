#include "server/worker.hpp"

#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "observe/log.hpp"

namespace ob::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using upstream::use_tuple;

worker::worker(proxy::snapshot_store& store, std::shared_ptr<asio::ssl::context> tls)
    // One thread runs this context and does all of its socket I/O; other threads only post to it
    // (start, stop). So per-socket locking is off (UNSAFE_IO); the scheduler's lock stays.
    : ioc_(std::make_unique<asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO)),
      acceptor_(std::in_place, *ioc_),
      flush_timer_(std::in_place, *ioc_),
      ctx_(ioc_->get_executor(), store, std::move(tls)) {}

worker::~worker() {
  stop();
  join();
  acceptor_.reset();
  flush_timer_.reset();
  ctx_.pool.clear();
  ioc_.reset();  // destroys suspended connections while the registry and context still exist
}

tcp::endpoint worker::listen(const tcp::endpoint& ep) {
  acceptor_->open(ep.protocol());
  acceptor_->set_option(asio::socket_base::reuse_address(true));
  int one = 1;
  if (::setsockopt(acceptor_->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    throw boost::system::system_error(errno, boost::system::system_category(), "SO_REUSEPORT");
  if (ep.protocol() == tcp::v6()) acceptor_->set_option(asio::ip::v6_only(false));
  acceptor_->bind(ep);
  acceptor_->listen(4096);
  return acceptor_->local_endpoint();
}

namespace {

// Completion handler for the worker's loops: an exception that escapes one is logged instead
// of vanishing as it would with asio::detached (the loops catch what they can recover from).
auto log_failure(const char* what) {
  return [what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      observe::log(observe::level::error, std::string(what) + " failed: " + ex.what());
    } catch (...) {
      observe::log(observe::level::error, std::string(what) + " failed");
    }
  };
}

}  // namespace

void worker::serve(tcp::socket socket) {
  auto conn = std::make_shared<client_connection>(ctx_, std::move(socket), registry_);
  asio::co_spawn(
      *ioc_, [conn]() -> asio::awaitable<void> { co_await conn->run(); },
      [conn](std::exception_ptr e) {
        if (!e) return;
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          what = ex.what();
        } catch (...) {
        }
        observe::log(observe::level::error, "connection failed: " + what);
        // Its pending timer would keep it (and shutdown) waiting until the timer's deadline.
        conn->abandon();
      });
}

asio::awaitable<void> worker::accept_loop() {
  asio::steady_timer backoff(*ioc_);
  std::uint64_t failures = 0;  // in a row; logged when they start and when they end
  for (;;) {
    auto [ec, socket] = co_await acceptor_->async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) break;
      // Out of descriptors (EMFILE) or memory: the pending connection stays in the backlog,
      // so back off instead of spinning on the same error, and keep accepting.
      if (failures++ == 0)
        observe::log(observe::level::warn,
                     "accept failed: " + ec.message() + " (retrying every 50 ms)");
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(use_tuple);
      continue;
    }
    if (failures) {
      observe::log(observe::level::info,
                   "accepting again after " + std::to_string(failures) + " failed accepts");
      failures = 0;
    }
    try {
      serve(std::move(socket));
    } catch (const std::exception& e) {  // e.g. bad_alloc: this connection is lost, not the loop
      observe::log(observe::level::error, std::string("cannot serve a connection: ") + e.what());
    }
  }
}

asio::awaitable<void> worker::flush_loop() {
  while (!stopping_) {
    flush_timer_->expires_after(std::chrono::milliseconds(20));
    co_await flush_timer_->async_wait(use_tuple);
    try {
      registry_.sweep(std::chrono::steady_clock::now());
      ctx_.sweep_pool(std::chrono::steady_clock::now());
      observe::flush_access_log();
    } catch (const std::exception& e) {  // keep sweeping and flushing on the next tick
      observe::log(observe::level::error, std::string("access log flush failed: ") + e.what());
    }
  }
}

void worker::start() {
  asio::co_spawn(*ioc_, accept_loop(), log_failure("accept loop"));
  asio::co_spawn(*ioc_, flush_loop(), log_failure("access log flush loop"));
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(*ioc_);
    ioc_->run();
  });
}

worker::stats worker::collect() const {
  stats s;
  s.metrics = ctx_.metrics;
  ctx_.pool.for_each_origin(
      [&](std::string_view origin, std::size_t n) { s.upstream[std::string(origin)][0] += n; });
  registry_.for_each([&](const client_connection& c) {
    if (auto o = c.upstream_origin(); !o.empty()) s.upstream[std::string(o)][1] += 1;
  });
  return s;
}

observe::metrics::traffic_totals worker::traffic() const {
  return observe::metrics::fold(ctx_.metrics);
}

void worker::begin_drain() {
  asio::post(*ioc_, [this] {
    ctx_.draining = true;
    boost::system::error_code ec;
    acceptor_->close(ec);
    registry_.close_idle();
  });
}

void worker::cut() {
  asio::post(*ioc_, [this] {
    ctx_.stopping = true;
    registry_.cut_all();
  });
}

void worker::stop() {
  if (!thread_.joinable()) return;
  asio::post(*ioc_, [this] {
    boost::system::error_code ec;
    acceptor_->close(ec);
    registry_.close_all();
    ctx_.pool.clear();
    stopping_ = true;
    flush_timer_->cancel();
    observe::flush_access_log();
    ioc_->stop();
  });
}

void worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace ob::server
