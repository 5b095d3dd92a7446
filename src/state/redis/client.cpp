#include "state/redis/client.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>

#include "observe/log.hpp"

// GCC 12 reports a mismatched new/delete on Asio's awaitable frames (its own operator
// new/delete pair, GCC bug 109224): a false positive.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ob::state::redis {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::deferred);
using clock = std::chrono::steady_clock;

bool starts_with(const redisReply* r, std::string_view prefix) {
  return r && r->type == REDIS_REPLY_ERROR &&
         std::string_view(r->str, r->len).substr(0, prefix.size()) == prefix;
}

}  // namespace

const char* to_string(errc e) {
  switch (e) {
    case errc::ok:
      return "ok";
    case errc::not_connected:
      return "not_connected";
    case errc::timeout:
      return "timeout";
    case errc::connection_lost:
      return "connection_lost";
    case errc::stopped:
      return "stopped";
  }
  return "?";
}

void reply_deleter::operator()(redisReply* r) const {
  freeReplyObject(r);
}

script::script(std::string n, std::string b) : name(std::move(n)), body(std::move(b)) {
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(body.data()), body.size(), md);
  static constexpr char hex[] = "0123456789abcdef";
  sha1.reserve(2 * SHA_DIGEST_LENGTH);
  for (unsigned char c : md) {
    sha1 += hex[c >> 4];
    sha1 += hex[c & 15];
  }
}

bool result::is_error_reply() const {
  return reply && reply->type == REDIS_REPLY_ERROR;
}
std::string_view result::error_text() const {
  if (error != errc::ok) return to_string(error);
  if (is_error_reply()) return {reply->str, reply->len};
  return {};
}

void client::ring::push(const entry& e) {
  if (count == slots.size()) {  // grow, keeping the order (only while the pipeline deepens)
    std::vector<entry> bigger;
    bigger.reserve(std::max<std::size_t>(16, slots.size() * 2));
    for (std::size_t i = 0; i < count; ++i) bigger.push_back(at(i));
    bigger.resize(bigger.capacity());
    slots = std::move(bigger);
    head = 0;
  }
  slots[(head + count) % slots.size()] = e;
  ++count;
}

void client::ring::pop() {
  head = (head + 1) % slots.size();
  --count;
}

client::client(asio::any_io_executor ex, client_options options)
    : ex_(ex),
      opt_(std::move(options)),
      socket_(ex),
      timer_(ex),
      backoff_(ex),
      stuck_after_(std::max<millis>(millis{1000}, opt_.timeout * 20)) {}

client::~client() {
  if (reader_) redisReaderFree(reader_);
}

void client::start() {
  if (started_) return;
  started_ = true;
  asio::co_spawn(
      ex_, [self = shared_from_this()] { return self->run(); }, asio::detached);
}

void client::stop() {
  if (stopped_) return;
  stopped_ = true;
  drop_connection(errc::stopped);
  backoff_.cancel();
  timer_.cancel();
}

asio::awaitable<void> client::run() {
  millis backoff = opt_.backoff_min;
  std::array<char, 16 * 1024> buf;
  while (!stopped_) {
    bool connected = co_await connect_once();
    if (!connected) {
      if (stopped_) break;
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
      observe::log(observe::level::warn, "redis: connection to " + opt_.address.host + ":" +
                                             std::to_string(opt_.address.port) + " lost");
      drop_connection(errc::connection_lost);
    }
    if (stopped_) break;
    // A dropped connection waits the shortest backoff before the next attempt.
    backoff_.expires_after(opt_.backoff_min);
    co_await backoff_.async_wait(use_tuple);
  }
}

asio::awaitable<bool> client::connect_once() {
  ++attempts_;
  boost::system::error_code ec;
  std::vector<asio::ip::tcp::endpoint> eps;
  auto addr = asio::ip::make_address(opt_.address.host, ec);
  if (!ec) {
    eps.emplace_back(addr, opt_.address.port);
  } else {
    asio::ip::tcp::resolver resolver(ex_);
    auto [rec, results] = co_await resolver.async_resolve(
        opt_.address.host, std::to_string(opt_.address.port), use_tuple);
    if (rec) co_return false;
    for (auto& r : results) eps.push_back(r.endpoint());
  }
  if (stopped_) co_return false;
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
  if (cec || late || stopped_) {
    socket_.close();
    co_return false;
  }
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  if (reader_) redisReaderFree(reader_);
  reader_ = redisReaderCreate();
  ++connections_;
  ready_ = true;
  queue_setup();
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

void client::append_command(std::span<const std::string_view> prefix,
                            std::span<const std::string_view> rest) {
  constexpr std::size_t small = 32;
  const std::size_t n = prefix.size() + rest.size();
  std::array<const char*, small> argv_s;
  std::array<std::size_t, small> len_s;
  std::vector<const char*> argv_v;
  std::vector<std::size_t> len_v;
  const char** argv = argv_s.data();
  std::size_t* len = len_s.data();
  if (n > small) {
    argv_v.resize(n);
    len_v.resize(n);
    argv = argv_v.data();
    len = len_v.data();
  }
  std::size_t i = 0;
  for (auto a : prefix) argv[i] = a.data(), len[i++] = a.size();
  for (auto a : rest) argv[i] = a.data(), len[i++] = a.size();
  char* cmd = nullptr;
  int size = redisFormatCommandArgv(&cmd, static_cast<int>(n), argv, len);
  if (size > 0) out_.append(cmd, static_cast<std::size_t>(size));
  redisFreeCommand(cmd);
}

bool client::send_parts(std::span<const std::string_view> prefix,
                        std::span<const std::string_view> rest, callback fn, void* ctx,
                        bool detached) {
  if (!ready_ || stopped_) return false;
  append_command(prefix, rest);
  inflight_.push(entry{fn, ctx, clock::now() + opt_.timeout, detached});
  arm_timer();
  start_write();
  return true;
}

bool client::send(std::span<const std::string_view> argv, callback fn, void* ctx) {
  return send_parts(argv, {}, fn, ctx, false);
}

bool client::send_detached(std::span<const std::string_view> argv) {
  return send_parts(argv, {}, nullptr, nullptr, true);
}

void client::start_write() {
  if (write_pending_ || out_.empty() || !socket_.is_open()) return;
  writing_.swap(out_);
  out_.clear();
  write_pending_ = true;
  asio::async_write(socket_, asio::buffer(writing_),
                    [this, self = shared_from_this(), gen = generation_](
                        boost::system::error_code ec, std::size_t) {
                      write_pending_ = false;
                      writing_.clear();
                      if (ec && gen == generation_) {
                        drop_connection(errc::connection_lost);
                        return;
                      }
                      start_write();
                    });
}

void client::on_reply(redisReply* raw) {
  reply_ptr r(raw);
  if (inflight_.empty()) {  // a reply nobody asked for: the stream cannot be trusted
    observe::log(observe::level::warn, "redis: unexpected reply, reconnecting");
    drop_connection(errc::connection_lost);
    return;
  }
  entry e = inflight_.front();
  inflight_.pop();
  if (expired_ > 0) --expired_;  // its handler got errc::timeout already: discard
  if (e.fn) {
    e.fn(e.ctx, errc::ok, std::move(r));
  } else if (e.detached && starts_with(r.get(), "NOSCRIPT")) {
    // The server lost its script cache (SCRIPT FLUSH, failover): load them again for the
    // next commands. This one settlement is lost.
    for (const script* s : scripts_) {
      std::array<std::string_view, 3> a{"SCRIPT", "LOAD", s->body};
      send_parts(a, {}, &client::on_setup_reply, this, false);
    }
  }
}

void client::arm_timer() {
  clock::time_point next = clock::time_point::max();
  if (expired_ < inflight_.count)
    next = inflight_.at(expired_).deadline;
  else if (expired_ > 0)
    next = inflight_.front().deadline + stuck_after_;
  if (next == clock::time_point::max() || next >= timer_at_) return;
  timer_at_ = next;
  timer_.expires_at(next);
  timer_.async_wait([this, self = shared_from_this()](boost::system::error_code ec) {
    if (ec) return;  // re-armed earlier or stopped
    timer_at_ = clock::time_point::max();
    on_timer();
  });
}

void client::on_timer() {
  const auto now = clock::now();
  const auto gen = generation_;
  while (gen == generation_ && expired_ < inflight_.count &&
         inflight_.at(expired_).deadline <= now) {
    entry& e = inflight_.at(expired_);
    ++expired_;
    if (!e.fn) continue;
    callback fn = e.fn;
    void* ctx = e.ctx;
    e.fn = nullptr;
    ++timeouts_;
    fn(ctx, errc::timeout, nullptr);  // may send (the ring may grow) or stop
  }
  if (gen == generation_ && expired_ > 0 && inflight_.front().deadline + stuck_after_ <= now) {
    observe::log(observe::level::warn, "redis: no reply for too long, reconnecting");
    drop_connection(errc::connection_lost);
  }
  if (!stopped_) arm_timer();
}

void client::drop_connection(errc why) {
  ++generation_;
  ready_ = false;
  boost::system::error_code ec;
  socket_.close(ec);
  out_.clear();
  if (reader_) {
    redisReaderFree(reader_);
    reader_ = nullptr;
  }
  ring old;
  std::swap(old, inflight_);
  const std::size_t skip = expired_;
  expired_ = 0;
  for (std::size_t i = skip; i < old.count; ++i) {
    entry& e = old.at(i);
    if (e.fn) e.fn(e.ctx, why, nullptr);
  }
  old.count = 0;
  old.head = 0;
  if (inflight_.slots.empty()) std::swap(old.slots, inflight_.slots);  // keep the capacity
}

asio::awaitable<result> client::call_parts(std::span<const std::string_view> prefix,
                                           std::span<const std::string_view> rest) {
  if (!ready_ || stopped_) co_return result{errc::not_connected, nullptr};
  auto [e, r] = co_await asio::async_initiate<decltype(asio::deferred), void(errc, reply_ptr)>(
      [this, prefix, rest](auto handler) {
        using H = decltype(handler);
        auto* h = new H(std::move(handler));
        bool sent = send_parts(
            prefix, rest,
            [](void* ctx, errc err, reply_ptr rep) {
              std::unique_ptr<H> owned(static_cast<H*>(ctx));
              H local(std::move(*owned));
              owned.reset();
              std::move(local)(err, std::move(rep));
            },
            h, false);
        if (!sent) {  // cannot happen: checked above, and nothing ran in between
          std::unique_ptr<H> owned(h);
          asio::post(ex_, [hh = std::move(*owned)]() mutable {
            std::move(hh)(errc::not_connected, reply_ptr{});
          });
        }
      },
      asio::deferred);
  co_return result{e, std::move(r)};
}

asio::awaitable<result> client::call(std::span<const std::string_view> argv) {
  return call_parts(argv, {});
}

asio::awaitable<result> client::eval(const script& s, std::size_t numkeys,
                                     std::span<const std::string_view> keys_and_args) {
  char nk[24];
  auto [p, ec] = std::to_chars(nk, nk + sizeof nk, numkeys);
  std::array<std::string_view, 3> pre{"EVALSHA", s.sha1, std::string_view(nk, p - nk)};
  result r = co_await call_parts(pre, keys_and_args);
  if (r.error == errc::ok && starts_with(r.reply.get(), "NOSCRIPT")) {
    pre[0] = "EVAL";
    pre[1] = s.body;
    r = co_await call_parts(pre, keys_and_args);
  }
  co_return r;
}

bool client::eval_detached(const script& s, std::size_t numkeys,
                           std::span<const std::string_view> keys_and_args) {
  char nk[24];
  auto [p, ec] = std::to_chars(nk, nk + sizeof nk, numkeys);
  std::array<std::string_view, 3> pre{"EVALSHA", s.sha1, std::string_view(nk, p - nk)};
  return send_parts(pre, keys_and_args, nullptr, nullptr, true);
}

}  // namespace ob::state::redis
