// One worker thread: its own io_context, its own SO_REUSEPORT listener on the shared address,
// its own upstream pool. On the hot path workers share the config snapshot and the routing
// state (docs/ARCHITECTURE.md, first section).
#pragma once

#include <array>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "observe/timeseries.hpp"
#include "proxy/context.hpp"
#include "server/client_connection.hpp"
#include "server/tls_context.hpp"
#include "server/worker_mailbox.hpp"
#include "server/worker_state.hpp"

namespace ob::server {

// Threading: the worker's io_context runs without the scheduler's lock, so only the worker's
// thread touches it once start() has run. The public calls below that other threads make
// (begin_drain, cut, stop, ask) go through the worker's mailbox (worker_mailbox.hpp).
class worker {
 public:
  worker(proxy::snapshot_store& store, std::shared_ptr<boost::asio::ssl::context> tls);
  ~worker();

  // Opens the listener (throws boost::system::system_error when the address is unusable) and
  // returns the address it is bound to: with port 0, the port the system picked.
  boost::asio::ip::tcp::endpoint listen(const boost::asio::ip::tcp::endpoint& ep);
  // The same for the TLS listener; its connections handshake with tls.current().
  boost::asio::ip::tcp::endpoint listen_tls(const boost::asio::ip::tcp::endpoint& ep,
                                            std::shared_ptr<const tls_context> tls);
  // Shared state ("state" config): Redis limits and/or the usage ledger (may be null). Before
  // start().
  void attach_state(const config::state_config& cfg, state::ledger* ledger);
  void start();        // runs the event loop on a new thread
  void begin_drain();  // stop accepting; close idle connections; busy ones close when done
  void cut();          // shutdown grace over: end the requests in flight with an error
  void stop();         // close everything and end the loop
  void join();
  std::size_t live_connections() const { return registry_.size(); }

  // From a coroutine on another loop (the admin API's): runs f() on the worker's thread and
  // resumes the caller, on the caller's executor, with its result, or throws f's exception;
  // std::runtime_error once the worker has stopped. One asked in the instant before the stop
  // gets no answer: the caller's coroutine is destroyed with the worker.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&>> ask(F f);

  struct stats {
    observe::metrics::shard metrics;
    // Provider connections per pool key ("https|host|port"): idle in the pool, in use.
    std::map<std::string, std::array<std::size_t, 2>, std::less<>> upstream;
  };
  // What /metrics shows of this worker. Call on the worker's thread only (ask()).
  stats collect() const;
  // This worker's metrics folded into a few totals (the dashboard's per-second sample), without
  // copying the shard. Call on the worker's thread only.
  observe::metrics::traffic_totals traffic() const;

 private:
  // Survives failed accepts (backs off) and connections it cannot set up (logged).
  boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor, bool tls);
  // A connection whose stream is ready (plain, or TLS after its handshake) to its protocol's
  // handler: HTTP/1.1 (client_connection).
  void serve(proxy::client_stream stream);
  // The TLS handshake, within timeouts.client_header of the accept (a client that stalls it is
  // cut), then serve() with the protocol chosen by ALPN. Here is where an HTTP/2 handler
  // would be picked (tls_context.hpp, app_protocol).
  boost::asio::awaitable<void> handshake(proxy::client_stream stream);
  // Drain and stop: handshakes in progress are closed (a stalled one would otherwise last
  // until timeouts.client_header).
  void close_handshakes();
  // Lazy client watches of slow requests, the buffered access log, idle pooled connections and
  // retired Redis backends: every 20 ms while a request is in flight or lines wait in the
  // buffer, else once a second; a request or line that arrives meanwhile wakes it
  // (proxy::sweep_waker).
  boost::asio::awaitable<void> flush_loop();

  // Destroyed explicitly first in ~worker: its pending coroutine frames reference the members
  // below.
  std::unique_ptr<boost::asio::io_context> ioc_;
  std::unique_ptr<worker_mailbox> mailbox_;  // other threads' only way in; goes before ioc_
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  std::optional<boost::asio::ip::tcp::acceptor> tls_acceptor_;  // open with the "tls" listener
  std::shared_ptr<const tls_context> tls_server_;
  std::optional<boost::asio::steady_timer> flush_timer_;
  bool stopping_ = false;
  proxy::worker_context ctx_;
  std::unique_ptr<worker_state> state_;  // with a "state" config
  connection_registry registry_;
  std::vector<boost::asio::ip::tcp::socket*> handshaking_;  // TLS sockets in their handshake
  std::thread thread_;
};

template <class F>
boost::asio::awaitable<std::invoke_result_t<F&>> worker::ask(F f) {
  namespace asio = boost::asio;
  using T = std::invoke_result_t<F&>;
  auto caller = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>,
                                          void(std::exception_ptr, T)>(
      [this, &f, caller](auto handler) {
        // Shared: the mailbox's tasks are copyable std::functions. The handler is invoked once,
        // on the caller's executor.
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        bool queued = mailbox_->post([h, f = std::move(f), caller]() mutable {
          std::exception_ptr e;
          T v{};
          try {
            v = f();
          } catch (...) {
            e = std::current_exception();
          }
          asio::post(caller, [h, e, v = std::move(v)]() mutable { (*h)(e, std::move(v)); });
        });
        if (!queued)  // the worker has stopped: the task stays unrun
          asio::post(caller, [h] {
            (*h)(std::make_exception_ptr(std::runtime_error("worker stopped")), T{});
          });
      },
      asio::use_awaitable);
}

}  // namespace ob::server
