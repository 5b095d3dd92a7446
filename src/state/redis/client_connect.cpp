// The redis::client's connection (client.hpp): connecting with backoff, the read loop, and
// the set-up commands (AUTH, SELECT, SCRIPT LOAD) of every new connection.
#include <algorithm>

#include <hiredis/hiredis.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>

#include "net/loop_resolver.hpp"
#include "observe/log.hpp"
#include "state/redis/client.hpp"

// See client.cpp.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ob::state::redis {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::deferred);
using clock = std::chrono::steady_clock;

}  // namespace

asio::awaitable<void> client::run() {
  millis backoff = opt_.backoff_min;
  std::array<char, 16 * 1024> buf;
  // Stopped, the loop goes on while closing_: to deliver what waits for a redirection.
  while (!stopped_ || closing_) {
    bool connected = co_await connect_once();
    if (!attempted_) {  // first_attempt()'s waiters go on (a time in the past: later ones too)
      attempted_ = true;
      first_attempt_.expires_at({});
    }
    if (!connected) {
      moving_ = false;  // commands fail (or fall back) until a connection is made
      if (stopped_) {
        if (closing_) {  // the node named cannot be reached: what waits for it is lost
          closing_ = false;
          drop_connection(errc::stopped);
        }
        break;
      }
      // A node named by a redirection that cannot be reached: ask the configured one again.
      if (node_host_ != opt_.address.host || node_port_ != opt_.address.port) {
        observe::log(observe::level::warn,
                     "redis: cannot connect to " + node() + ", back to the configured node");
        node_host_ = opt_.address.host;
        node_port_ = opt_.address.port;
      }
      backoff_.expires_after(backoff);
      co_await backoff_.async_wait(use_tuple);
      backoff = std::min(backoff * 2, opt_.backoff_max);
      continue;
    }
    backoff = opt_.backoff_min;
    const auto gen = generation_;
    while (gen == generation_) {
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf), use_tuple);
      if (ec || gen != generation_) break;
      if (redisReaderFeed(reader_, buf.data(), n) != REDIS_OK) break;
      while (gen == generation_) {
        void* r = nullptr;
        if (redisReaderGetReply(reader_, &r) != REDIS_OK) {
          observe::log(observe::level::warn, "redis: protocol error, reconnecting");
          drop_connection(errc::connection_lost);
          break;
        }
        if (!r) break;
        on_reply(static_cast<redisReply*>(r));
      }
    }
    if (gen == generation_) {
      observe::log(observe::level::warn, "redis: connection to " + node() + " lost");
      drop_connection(errc::connection_lost);
    }
    if (stopped_ && !closing_) break;
    if (reconnect_now_ || closing_) {  // moving to the node a MOVED/ASK reply named
      reconnect_now_ = false;
      continue;
    }
    // A dropped connection waits the shortest backoff before the next attempt.
    backoff_.expires_after(opt_.backoff_min);
    co_await backoff_.async_wait(use_tuple);
  }
}

asio::awaitable<void> client::first_attempt() {
  if (!started_ || attempted_ || stopped_) co_return;
  co_await first_attempt_.async_wait(use_tuple);  // ended by the attempt, stop() or the bound
}

asio::awaitable<bool> client::connect_once() {
  ++attempts_;
  boost::system::error_code ec;
  std::vector<asio::ip::tcp::endpoint> eps;
  const std::string host = node_host_;
  const std::uint16_t port = node_port_;
  auto addr = asio::ip::make_address(host, ec);
  if (!ec) {
    eps.emplace_back(addr, port);
  } else {
    // Not an asio resolver: a worker's loop runs without the scheduler's lock, which asio's
    // resolver thread would need (net/loop_resolver.hpp).
    auto [rec, found] = co_await net::resolve(ex_, host, std::to_string(port));
    if (rec) co_return false;
    eps = std::move(found);
  }
  if (stopped_ && !closing_) co_return false;
  socket_ = asio::ip::tcp::socket(ex_);
  // The flag outlives this frame: the timer's handler may already be queued when we cancel.
  auto timed_out = std::make_shared<bool>(false);
  backoff_.expires_after(opt_.connect_timeout);
  backoff_.async_wait([this, timed_out, self = shared_from_this()](boost::system::error_code e) {
    if (!e && !*timed_out) {
      *timed_out = true;
      if (!ready_) socket_.close();
    }
  });
  auto [cec, ep] = co_await asio::async_connect(socket_, eps, use_tuple);
  backoff_.cancel();
  const bool late = *timed_out;
  *timed_out = true;  // a queued handler must not close the connection we keep
  if (cec || late || (stopped_ && !closing_)) {
    socket_.close();
    co_return false;
  }
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  if (reader_) redisReaderFree(reader_);
  reader_ = redisReaderCreate();
  ++connections_;
  ready_ = true;
  moving_ = false;
  // Commands answered MOVED/ASK go again, behind the setup commands; those get no later a
  // deadline than the earliest waiting handler's, so its timeout still fires on time.
  for (const entry& e : redirected_)
    if (e.fn) deadline_cap_ = std::min(deadline_cap_, e.deadline);
  queue_setup();
  for (entry& e : redirected_) resend(e);
  redirected_.clear();
  deadline_cap_ = clock::time_point::max();
  arm_timer();
  start_write();
  co_return true;
}

// AUTH, SELECT and SCRIPT LOAD go first on a new connection; user commands are pipelined
// behind them. A refused AUTH or SELECT closes the connection (and the backoff retries).
void client::queue_setup() {
  if (!opt_.address.password.empty()) {
    if (opt_.address.username.empty()) {
      std::array<std::string_view, 2> a{"AUTH", opt_.address.password};
      send_parts(a, {}, &client::on_setup_reply, this, false);
    } else {
      std::array<std::string_view, 3> a{"AUTH", opt_.address.username, opt_.address.password};
      send_parts(a, {}, &client::on_setup_reply, this, false);
    }
  }
  if (opt_.address.db != 0) {
    std::string db = std::to_string(opt_.address.db);
    std::array<std::string_view, 2> a{"SELECT", db};
    send_parts(a, {}, &client::on_setup_reply, this, false);
  }
  reload_scripts();
}

void client::reload_scripts() {
  for (const script* s : scripts_) {
    std::array<std::string_view, 3> a{"SCRIPT", "LOAD", s->body};
    send_parts(a, {}, &client::on_setup_reply, this, false);
  }
}

void client::on_setup_reply(void* ctx, errc e, reply_ptr r) {
  auto* self = static_cast<client*>(ctx);
  if (e == errc::ok && r && r->type == REDIS_REPLY_ERROR) {
    observe::log(observe::level::error,
                 "redis: setup command refused: " + std::string(r->str, r->len));
    asio::post(self->ex_, [s = self->shared_from_this(), gen = self->generation_] {
      if (gen == s->generation_) s->drop_connection(errc::connection_lost);
    });
  }
}

}  // namespace ob::state::redis
