#include "state/redis/client.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>

#include "observe/log.hpp"

// GCC 12 reports a mismatched new/delete on Asio's awaitable frames (its own operator
// new/delete pair, GCC bug 109224): a false positive.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ob::state::redis {
namespace {

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

std::vector<std::string_view> parse_command(std::string_view c) {
  std::vector<std::string_view> argv;
  auto number = [&](char kind, std::size_t& n) {
    if (c.empty() || c[0] != kind) return false;
    const auto eol = c.find("\r\n");
    if (eol == std::string_view::npos) return false;
    auto [p, ec] = std::from_chars(c.data() + 1, c.data() + eol, n);
    if (ec != std::errc{} || p != c.data() + eol) return false;
    c.remove_prefix(eol + 2);
    return true;
  };
  std::size_t count = 0;
  // Every argument takes at least 6 bytes ("$0\r\n\r\n"): a count the bytes cannot hold is
  // refused before anything is reserved for it.
  if (!number('*', count) || count > c.size() / 4) return {};
  argv.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::size_t len = 0;
    if (!number('$', len) || c.size() < 2 || len > c.size() - 2 || c.substr(len, 2) != "\r\n")
      return {};
    argv.push_back(c.substr(0, len));
    c.remove_prefix(len + 2);
  }
  if (!c.empty()) return {};
  return argv;
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

client::entry& client::ring::push() {
  if (count == slots.size()) {  // grow, keeping the order (only while the pipeline deepens)
    std::vector<entry> bigger;
    bigger.reserve(std::max<std::size_t>(16, slots.size() * 2));
    for (std::size_t i = 0; i < count; ++i) bigger.push_back(std::move(at(i)));
    bigger.resize(bigger.capacity());
    slots = std::move(bigger);
    head = 0;
  }
  entry& e = slots[(head + count) % slots.size()];
  ++count;
  e.bytes.clear();  // keeps its capacity
  return e;
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
      first_attempt_(ex),
      stuck_after_(std::max<millis>(millis{1000}, opt_.timeout * 20)),
      node_host_(opt_.address.host),
      node_port_(opt_.address.port),
      retry_timer_(ex),
      stop_timer_(ex) {}

client::~client() {
  // A late handler engaged by a timeout owns its context until it is ended: end those whose
  // replies can no longer come (the client is gone before they did).
  for (std::size_t i = 0; i < inflight_.count; ++i) {
    entry& e = inflight_.at(i);
    if (!e.fn && e.late.fn) end_late(e, errc::stopped, nullptr);
  }
  for (auto* v : {&redirected_, &retry_})
    for (entry& e : *v)
      if (!e.fn && e.late.fn) end_late(e, errc::stopped, nullptr);
  if (reader_) redisReaderFree(reader_);
}

void client::start() {
  if (started_) return;
  started_ = true;
  first_attempt_.expires_after(opt_.connect_timeout);
  asio::co_spawn(
      ex_, [self = shared_from_this()] { return self->run(); }, asio::detached);
}

void client::stop(std::function<void()> closed) {
  if (stopped_) {
    if (closed) asio::post(ex_, std::move(closed));
    return;
  }
  stopped_ = true;
  closed_ = std::move(closed);
  backoff_.cancel();
  first_attempt_.expires_at({});  // nobody waits for a connection any more
  // Whoever waits for a reply gets errc::stopped now; the commands themselves still go out.
  for (std::size_t i = expired_; i < inflight_.count; ++i) {
    entry& e = inflight_.at(i);
    if (!e.fn) continue;
    callback fn = e.fn;
    e.fn = nullptr;
    e.late = {};  // never engaged: its context is the waiter's
    fn(e.ctx, errc::stopped, nullptr);
  }
  keep_detached(redirected_);
  keep_detached(retry_);
  if ((socket_.is_open() && !inflight_.empty()) || !redirected_.empty() || !retry_.empty()) {
    // Settlements queued, on their way, or waiting to be re-sent to the node a MOVED/ASK named:
    // write them (there, after the move) and read their replies (closing a socket with unread
    // replies resets it), for at most `timeout`.
    closing_ = true;
    stop_timer_.expires_after(opt_.timeout);
    stop_timer_.async_wait([this, self = shared_from_this()](boost::system::error_code ec) {
      if (ec || !closing_) return;
      closing_ = false;
      drop_connection(errc::stopped);
    });
    start_write();
    return;
  }
  drop_connection(errc::stopped);
}

void client::maybe_close() {
  if (closing_ && inflight_.empty() && redirected_.empty() && retry_.empty() && !redirecting_ &&
      !moving_) {
    closing_ = false;
    drop_connection(errc::stopped);
  }
}

client::entry& client::push_sent(std::size_t at, callback fn, void* ctx, bool detached,
                                 const script* evalsha, late_reply late) {
  entry& e = inflight_.push();
  e.fn = fn;
  e.ctx = ctx;
  e.late = late;
  e.deadline = std::min(clock::now() + opt_.timeout, deadline_cap_);
  e.detached = detached;
  e.evalsha = evalsha;
  e.redirects = 0;
  e.tryagains = 0;
  e.asking = false;
  // Kept to be sent again: every command in cluster mode (MOVED/ASK), a fire-and-forget
  // EVALSHA always (NOSCRIPT: sent again as EVAL, nobody else would).
  if (opt_.cluster || (detached && evalsha)) e.bytes.assign(out_, at);
  return e;
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
                        bool detached, const script* evalsha, late_reply late) {
  if (stopped_) return false;
  if (moving_) {
    // Moving to the node a MOVED reply named: the command waits with those to re-send there.
    const std::size_t at = out_.size();
    append_command(prefix, rest);
    entry e;
    e.fn = fn;
    e.ctx = ctx;
    e.deadline = clock::now() + opt_.timeout;
    e.detached = detached;
    e.evalsha = evalsha;
    e.late = late;
    e.bytes.assign(out_, at);
    out_.resize(at);
    redirected_.push_back(std::move(e));
    arm_timer();
    return true;
  }
  if (!ready_) return false;
  const std::size_t at = out_.size();
  append_command(prefix, rest);
  push_sent(at, fn, ctx, detached, evalsha, late);
  arm_timer();
  start_write();
  return true;
}

bool client::send(std::span<const std::string_view> argv, callback fn, void* ctx, late_reply late) {
  return send_parts(argv, {}, fn, ctx, false, nullptr, late);
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
  entry& f = inflight_.front();
  const callback fn = f.fn;
  void* const ctx = f.ctx;
  const bool detached = f.detached;
  const script* const evalsha = f.evalsha;
  const unsigned redirects = f.redirects;
  const unsigned tryagains = f.tryagains;
  const bool asked = f.asking;
  const auto deadline = f.deadline;
  const late_reply late = f.late;  // engaged when fn is null (its waiter timed out)
  f.late = {};
  scratch_.swap(f.bytes);  // the slot gets the scratch buffer (cleared when reused)
  inflight_.pop();
  if (expired_ > 0) --expired_;  // its handler got errc::timeout already: discard
  // The command again, to be re-sent (later, or to another node): its bytes (in scratch_),
  // waiter and late-reply handler; a late reply is then the re-sent command's, handled once.
  auto again = [&] {
    entry e;
    e.fn = fn;
    e.ctx = ctx;
    e.deadline = deadline;
    e.detached = detached;
    e.evalsha = evalsha;
    e.late = late;
    e.bytes.swap(scratch_);
    return e;
  };
  if (r->type == REDIS_REPLY_ERROR && !scratch_.empty()) {
    const std::string_view text(r->str, r->len);
    std::optional<redirect> to;
    // Stopped: only a fire-and-forget command still goes (to be delivered before closing).
    if (opt_.cluster && (!stopped_ || (closing_ && detached)) && redirects < max_redirects)
      to = parse_redirect(text);
    if (opt_.cluster && starts_with(r.get(), "TRYAGAIN")) {
      // It did not run (its slot's keys are split by a migration): it goes again after a short
      // wait, a waiter's command only while that ends before its deadline, a fire-and-forget
      // one (a settlement) up to max_tryagain times; either way never past max_tryagain.
      const auto at = clock::now() + tryagain_delay(tryagains);
      const bool wanted = fn ? at < deadline : detached && (!stopped_ || closing_);
      if (wanted && tryagains < max_tryagain) {
        entry e = again();
        e.redirects = redirects;
        e.tryagains = tryagains + 1;
        e.asking = asked;
        e.retry_at = at;
        retry_.push_back(std::move(e));
        ++tryagain_count_;
        arm_retry();
        maybe_switch_node();
        return;
      }
      if (detached)  // its owner's error handler may keep it (a settlement: settle_batch)
        observe::log(observe::level::warn, "redis: a fire-and-forget command answered TRYAGAIN " +
                                               std::to_string(tryagains + 1) +
                                               " times is not retried here: " + std::string(text));
    }
    if (to) {
      // It did not run: it goes again, once, to the node named (after what is on the wire
      // here has been answered: maybe_switch_node).
      entry e = again();
      e.redirects = redirects + 1;
      e.asking = to->ask;
      redirected_.push_back(std::move(e));
      ++redirected_count_;
      if (!redirecting_) {
        redirecting_ = true;
        moving_ = true;  // new commands wait for the new connection
        ready_ = false;
        redirect_host_ = to->host.empty() ? node_host_ : to->host;
        redirect_port_ = to->port;
        observe::log(observe::level::info, std::string("redis: ") + (to->ask ? "ASK" : "MOVED") +
                                               " to " + redirect_host_ + ":" +
                                               std::to_string(redirect_port_) + " (slot " +
                                               std::to_string(to->slot) + "), reconnecting there");
      }
      arm_timer();
      maybe_switch_node();
      return;
    }
    if (!fn && detached && evalsha && starts_with(r.get(), "NOSCRIPT")) {
      // The server lost its script cache (SCRIPT FLUSH, failover): load them again for the
      // next commands, and send this one (a settlement: nobody else would) again as EVAL.
      reload_scripts();
      std::string again = evalsha_to_eval(scratch_, evalsha->body);
      if (!again.empty() && socket_.is_open()) {
        const std::size_t at = out_.size();
        out_ += again;
        push_sent(at, nullptr, nullptr, true, evalsha);  // kept: it may be refused too
        ++resent_eval_;
        arm_timer();
        start_write();
      }
    } else if (fn) {
      fn(ctx, errc::ok, std::move(r));
    } else if (late.fn) {
      ++late_replies_;
      late.fn(late.ctx, errc::ok, std::move(r));
    } else if (detached && evalsha && detached_error_) {
      // A fire-and-forget script call that did not run, or failed: its owner decides.
      detached_error_(detached_error_ctx_, *evalsha, scratch_, r.get());
    }
  } else if (fn) {
    fn(ctx, errc::ok, std::move(r));
  } else if (late.fn) {  // the reply of a command whose waiter timed out
    ++late_replies_;
    late.fn(late.ctx, errc::ok, std::move(r));
  } else if (detached && starts_with(r.get(), "NOSCRIPT")) {
    reload_scripts();
  }
  maybe_switch_node();
  maybe_close();
}

void client::arm_timer() {
  clock::time_point next = clock::time_point::max();
  if (expired_ < inflight_.count)
    next = inflight_.at(expired_).deadline;
  else if (expired_ > 0)
    next = inflight_.front().deadline + stuck_after_;
  for (auto* v : {&redirected_, &retry_})
    for (const entry& e : *v)
      if (e.fn) next = std::min(next, e.deadline);
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
  // Commands waiting to be re-sent to another node: their handlers time out all the same.
  for (auto* v : {&redirected_, &retry_}) {
    for (std::size_t i = 0; i < v->size(); ++i) {
      entry& e = (*v)[i];
      if (!e.fn || e.deadline > now) continue;
      time_out(e);
    }
  }
  while (gen == generation_ && expired_ < inflight_.count &&
         inflight_.at(expired_).deadline <= now) {
    entry& e = inflight_.at(expired_);
    ++expired_;
    if (!e.fn) continue;
    time_out(e);  // may send (the ring may grow) or stop
  }
  if (gen == generation_ && expired_ > 0 && inflight_.front().deadline + stuck_after_ <= now) {
    observe::log(observe::level::warn, "redis: no reply for too long, reconnecting");
    drop_connection(errc::connection_lost);
  }
  if (!stopped_) arm_timer();
}

// The waiter of `e` gets errc::timeout; first its late handler (if any) takes over the reply.
// `e` may not be used after the waiter's handler ran (it may send: the ring may grow).
void client::time_out(entry& e) {
  callback fn = e.fn;
  void* ctx = e.ctx;
  e.fn = nullptr;
  if (e.late.fn) {
    e.late.ctx = e.late.fn(e.late.ctx, errc::timeout, nullptr);
    if (!e.late.ctx) e.late = {};
  }
  ++timeouts_;
  fn(ctx, errc::timeout, nullptr);
}

void client::end_late(entry& e, errc why, reply_ptr r) {
  const late_reply late = e.late;
  e.late = {};
  if (why == errc::ok) ++late_replies_;
  late.fn(late.ctx, why, std::move(r));
}

void client::drop_connection(errc why) {
  ++generation_;
  ready_ = false;
  const bool switching = redirecting_;
  if (redirecting_) {  // the next connection goes to the node named
    redirecting_ = false;
    node_host_ = redirect_host_;
    node_port_ = redirect_port_;
  }
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
  for (std::size_t i = 0; i < skip; ++i) {  // timed out: their replies will never come
    entry& e = old.at(i);
    if (e.late.fn) end_late(e, why, nullptr);
  }
  for (std::size_t i = skip; i < old.count; ++i) {
    entry& e = old.at(i);
    e.late = {};  // never engaged: its context is the waiter's
    if (e.fn) e.fn(e.ctx, why, nullptr);
  }
  old.count = 0;
  old.head = 0;
  if (inflight_.slots.empty()) std::swap(old.slots, inflight_.slots);  // keep the capacity
  // Closing after stop(), moving to the node a MOVED/ASK named: not the end yet.
  if (stopped_ && !(closing_ && switching)) {
    closing_ = false;
    stop_timer_.cancel();
    timer_.cancel();
    retry_timer_.cancel();
    for (auto* v : {&redirected_, &retry_}) {
      for (std::size_t i = 0; i < v->size(); ++i) {
        entry& e = (*v)[i];
        if (!e.fn) {
          if (e.late.fn) end_late(e, errc::stopped, nullptr);
          continue;
        }
        callback fn = e.fn;
        e.fn = nullptr;
        e.late = {};
        fn(e.ctx, errc::stopped, nullptr);
      }
      v->clear();
    }
    if (closed_) {
      asio::post(ex_, std::move(closed_));
      closed_ = nullptr;
    }
  }
}

asio::awaitable<result> client::call_parts(std::span<const std::string_view> prefix,
                                           std::span<const std::string_view> rest,
                                           late_reply late) {
  if (!connected() || stopped_) co_return result{errc::not_connected, nullptr};
  auto [e, r] = co_await asio::async_initiate<decltype(asio::deferred), void(errc, reply_ptr)>(
      [this, prefix, rest, late](auto handler) {
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
            h, false, nullptr, late);
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
                                     std::span<const std::string_view> keys_and_args,
                                     late_reply late) {
  char nk[24];
  auto [p, ec] = std::to_chars(nk, nk + sizeof nk, numkeys);
  std::array<std::string_view, 3> pre{"EVALSHA", s.sha1, std::string_view(nk, p - nk)};
  result r = co_await call_parts(pre, keys_and_args, late);
  if (r.error == errc::ok && starts_with(r.reply.get(), "NOSCRIPT")) {
    pre[0] = "EVAL";
    pre[1] = s.body;
    r = co_await call_parts(pre, keys_and_args, late);
  }
  co_return r;
}

bool client::eval_detached(const script& s, std::size_t numkeys,
                           std::span<const std::string_view> keys_and_args) {
  char nk[24];
  auto [p, ec] = std::to_chars(nk, nk + sizeof nk, numkeys);
  std::array<std::string_view, 3> pre{"EVALSHA", s.sha1, std::string_view(nk, p - nk)};
  return send_parts(pre, keys_and_args, nullptr, nullptr, true, &s);
}

bool client::eval_text_detached(const script& s, std::size_t numkeys,
                                std::span<const std::string_view> keys_and_args) {
  char nk[24];
  auto [p, ec] = std::to_chars(nk, nk + sizeof nk, numkeys);
  std::array<std::string_view, 3> pre{"EVAL", s.body, std::string_view(nk, p - nk)};
  return send_parts(pre, keys_and_args, nullptr, nullptr, true, &s);  // bytes kept (rare)
}

}  // namespace ob::state::redis
