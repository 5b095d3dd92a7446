#include "server/worker.hpp"

#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/loop_resolver.hpp"
#include "observe/log.hpp"
#include "server/h2_connection.hpp"

namespace ob::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using upstream::use_tuple;

worker::worker(proxy::snapshot_store& store, std::shared_ptr<asio::ssl::context> tls)
    // One thread runs this context and is the only one to touch it once it runs: no lock in
    // the scheduler nor per socket. Other threads come in through the mailbox; host name
    // lookups go to a thread of their own and come back the same way (loop_resolver).
    : ioc_(std::make_unique<asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE)),
      mailbox_(std::make_unique<worker_mailbox>(*ioc_)),
      acceptor_(std::in_place, *ioc_),
      tls_acceptor_(std::in_place, *ioc_),
      flush_timer_(std::in_place, *ioc_),
      ctx_(ioc_->get_executor(), store, std::move(tls)) {
  asio::make_service<net::loop_resolver>(
      *ioc_, [m = mailbox_.get()](worker_mailbox::task t) { m->post(std::move(t)); });
}

worker::~worker() {
  stop();
  join();
  // No other thread reaches the loop from here on: the lookup in progress is waited for, and
  // what never ran (it may own suspended connections) goes while the context still exists.
  asio::use_service<net::loop_resolver>(*ioc_).stop();
  mailbox_->discard();
  mailbox_.reset();
  acceptor_.reset();
  tls_acceptor_.reset();
  flush_timer_.reset();
  ctx_.pool.clear();
  ctx_.state = nullptr;
  state_.reset();  // stopped in stop(); what requests still hold goes with them below
  ioc_.reset();    // destroys suspended connections while the registry and context still exist
}

namespace {

tcp::endpoint open_listener(tcp::acceptor& a, const tcp::endpoint& ep) {
  a.open(ep.protocol());
  a.set_option(asio::socket_base::reuse_address(true));
  int one = 1;
  if (::setsockopt(a.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    throw boost::system::system_error(errno, boost::system::system_category(), "SO_REUSEPORT");
  if (ep.protocol() == tcp::v6()) a.set_option(asio::ip::v6_only(false));
  a.bind(ep);
  a.listen(4096);
  return a.local_endpoint();
}

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

tcp::endpoint worker::listen(const tcp::endpoint& ep) {
  return open_listener(*acceptor_, ep);
}

tcp::endpoint worker::listen_tls(const tcp::endpoint& ep, std::shared_ptr<const tls_context> tls) {
  tls_server_ = std::move(tls);
  return open_listener(*tls_acceptor_, ep);
}

asio::awaitable<void> worker::handshake(proxy::client_stream stream) {
  // Not a proxy::deadline: nothing owns this connection yet. The timer's handler may already
  // be queued when the handshake ends, so it reads `done` (shared) before it touches the
  // stream, which lives in this frame only until `done` is set.
  struct state {
    bool done = false, timed_out = false;
  };
  auto st = std::make_shared<state>();
  asio::steady_timer timer(*ioc_);
  timer.expires_after(ctx_.current()->cfg.timeouts.client_header);
  timer.async_wait([st, &sock = stream.lowest()](boost::system::error_code ec) {
    if (ec || st->done) return;
    st->timed_out = true;
    sock.close(ec);
  });
  // In handshaking_ until it ends, so that a drain closes it (begin_drain).
  auto* raw = &stream.lowest();
  handshaking_.push_back(raw);
  auto [ec] = co_await stream.async_handshake(use_tuple);
  std::erase(handshaking_, raw);
  st->done = true;
  timer.cancel();
  if (ec || st->timed_out || ctx_.draining) {
    if (!ec) stream.close_notify();  // finished during a drain
    if (observe::log_enabled(observe::level::debug))
      observe::log(observe::level::debug,
                   std::string("TLS handshake ") +
                       (st->timed_out ? "not finished within timeouts.client_header"
                                      : "failed: " + ec.message()));
    co_return;  // the stream closes with this frame
  }
  switch (negotiated_protocol(stream.tls()->native_handle())) {
    case app_protocol::http1:
      serve(std::move(stream));
      break;
    case app_protocol::h2:
      serve_h2(ctx_, std::move(stream), registry_);
      break;
  }
}

void worker::serve(proxy::client_stream stream) {
  auto conn = std::make_shared<client_connection>(ctx_, std::move(stream), registry_);
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

asio::awaitable<void> worker::accept_loop(tcp::acceptor& acceptor, bool tls) {
  // Clients wait in the backlog until this worker's first Redis connection is made (or its
  // attempt has failed): accepted before, a request would find Redis "unreachable" (503 with
  // on_failure "deny", counted apart from the other instances with "local") only because
  // the gateway had just started.
  if (state_) co_await state_->first_attempt();
  asio::steady_timer backoff(*ioc_);
  std::uint64_t failures = 0;  // in a row; logged when they start and when they end
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
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
      if (tls)
        asio::co_spawn(*ioc_,
                       handshake(proxy::client_stream(std::move(socket), tls_server_->current())),
                       log_failure("TLS handshake"));
      else
        serve(proxy::client_stream(std::move(socket)));
    } catch (const std::exception& e) {  // e.g. bad_alloc: this connection is lost, not the loop
      observe::log(observe::level::error, std::string("cannot serve a connection: ") + e.what());
    }
  }
}

namespace {
// The loop's tick while a request is in flight or access lines wait: the lazy client watch
// starts 20-40 ms into a request (exchange.cpp, lazy_watch_after) and a line is written within
// 20 ms of its request's end.
constexpr auto fast_tick = std::chrono::milliseconds(20);
// Otherwise. What is left to do then has deadlines in seconds: idle pooled connections past
// max_idle (sweep_pool prunes at most once a second anyway, and a reload's unused origins wait
// for the next pass, at most this long) and retired Redis backends (dropped once unused, a
// second later at worst). An idle worker thus wakes once a second, not 50 times.
constexpr auto slow_tick = std::chrono::seconds(1);
}  // namespace

asio::awaitable<void> worker::flush_loop() {
  auto& waker = registry_.waker();
  waker.attach(&*flush_timer_);
  // A request that starts (exchange::run) or a line logged while the loop sleeps cancels the
  // long wait: the loop runs at once and ticks every 20 ms from then on.
  observe::on_access_buffered([](void* w) { static_cast<proxy::sweep_waker*>(w)->need_fast(); },
                              &waker);
  while (!stopping_) {
    flush_timer_->expires_after(waker.fast() ? fast_tick : slow_tick);
    co_await flush_timer_->async_wait(use_tuple);  // cancelled: woken (or stopping)
    bool busy = true;
    try {
      auto now = std::chrono::steady_clock::now();
      busy = registry_.sweep(now);
      ctx_.sweep_pool(now);
      if (state_) state_->sweep();
      // Lines written now keep the fast tick once more: under steady traffic answered without
      // an upstream request, the loop batches them every 20 ms instead of waking per line.
      busy |= observe::access_log_pending();
      observe::flush_access_log();
    } catch (const std::exception& e) {  // keep sweeping and flushing on the next tick
      observe::log(observe::level::error, std::string("access log flush failed: ") + e.what());
    }
    waker.set_fast(busy);
  }
  observe::on_access_buffered(nullptr, nullptr);
  waker.attach(nullptr);
}

void worker::attach_state(const config::state_config& cfg, state::ledger* ledger) {
  if (!cfg.enabled || (!cfg.redis && !ledger)) return;
  state_ = std::make_unique<worker_state>(ioc_->get_executor(), cfg, ledger);
  ctx_.state = state_.get();
}

void worker::start() {
  // Before the thread exists, so still from this one. The mailbox's tasks queued before (none
  // today) run first, once the loop runs.
  mailbox_->start();
  // On the worker's thread: its coroutines (Redis client) begin there like every other.
  if (state_) asio::post(*ioc_, [this] { state_->start(); });
  if (acceptor_->is_open())
    asio::co_spawn(*ioc_, accept_loop(*acceptor_, false), log_failure("accept loop"));
  if (tls_acceptor_->is_open())
    asio::co_spawn(*ioc_, accept_loop(*tls_acceptor_, true), log_failure("TLS accept loop"));
  asio::co_spawn(*ioc_, flush_loop(), log_failure("access log flush loop"));
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(*ioc_);
    ioc_->run();
  });
}

worker::stats worker::collect() const {
  stats s;
  s.metrics = ctx_.metrics;
  auto tls = ctx_.connector.tls_handshakes();
  s.metrics.upstream_tls_full = tls.full;
  s.metrics.upstream_tls_resumed = tls.resumed;
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
  mailbox_->post([this] {
    ctx_.draining = true;
    boost::system::error_code ec;
    acceptor_->close(ec);
    tls_acceptor_->close(ec);
    close_handshakes();
    registry_.close_idle();
  });
}

void worker::close_handshakes() {
  auto copy = handshaking_;  // each closed handshake leaves the list when it resumes
  boost::system::error_code ec;
  for (auto* sock : copy) sock->close(ec);
}

void worker::cut() {
  mailbox_->post([this] {
    ctx_.stopping = true;
    registry_.cut_all();
  });
}

void worker::stop() {
  if (!thread_.joinable()) return;
  mailbox_->post([this] {
    boost::system::error_code ec;
    acceptor_->close(ec);
    tls_acceptor_->close(ec);
    close_handshakes();
    registry_.close_all();
    ctx_.pool.clear();
    stopping_ = true;
    flush_timer_->cancel();
    auto finish = [this] {
      observe::flush_access_log();
      mailbox_->close();
      ioc_->stop();
    };
    // The Redis connection first sends the settlements still queued (bounded by state.timeout).
    if (state_)
      state_->stop(finish);
    else
      finish();
  });
}

void worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace ob::server
