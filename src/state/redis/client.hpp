// Asynchronous Redis client for one worker thread: one TCP connection, commands pipelined
// (written as they come, several in flight, replies matched in order), a timeout per command,
// reconnection with exponential backoff (100 ms -> 5 s), AUTH/SELECT from the URL and Lua
// scripts loaded on every (re)connection.
//
// Why hiredis: we only take its RESP parser (redisReader) and its command formatter; sockets,
// timers and coroutines are Asio's like the rest of the gateway. hiredis is small, well kept,
// packaged by Debian (libhiredis-dev), and its reader is the one Redis itself ships with, so
// we write no protocol parser of our own.
//
// Threading: not thread-safe; one client per io_context (per worker), used only on its thread.
//
// Timeouts never desynchronize the connection: a command that times out has its handler
// called at once with errc::timeout, but its entry stays in the in-flight queue, so the late
// reply is read when it arrives and discarded (or given to the command's late handler, below) and
// the next reply goes to the next command. If a timed-out command still has no reply after
// `stuck_after` (1 s or 20 timeouts), the server is taken as stuck and the connection is closed and
// reopened.
//
// Late replies: a command may carry a `late_reply` handler for what it did anyway (an admission
// whose script took a lease after its waiter gave up). When the waiter times out, the handler
// is called first with errc::timeout (while the waiter's state is still alive) and returns the
// context for the rest (null: not interested); then it is called exactly once more, with the
// reply when it comes (errc::ok), or with errc::connection_lost / errc::stopped when it never
// will. A command re-sent after MOVED/ASK keeps its handler: only its final reply reaches it.
// A waiter that gets its reply in time, or errc::connection_lost / errc::stopped, never
// engages it. Cost: two pointers per in-flight entry and one branch per timeout and reply.
//
// Redis Cluster (`cluster` option, docs/SCALING.md "Redis Cluster"): the gateway writes all its
// keys under one hash tag, so every command goes to one node. The client connects to the
// configured node; a `-MOVED <slot> <host:port>` reply makes it finish reading the replies of
// what is on the wire, reconnect to the named node and re-send there, in order, every command
// that was answered MOVED (a MOVED or ASK reply means the command did not run: re-sending it
// applies it once). `-ASK` re-sends the command after `ASKING` on a connection to the named
// node. A command is redirected at most `max_redirects` times; a connection that cannot be
// made to the named node goes back to the configured one. To re-send, the client keeps the
// bytes of every command in flight in cluster mode (a copy into a reused buffer per command).
//
// `-TRYAGAIN` (cluster: a multi-key command while its slot's keys are split by a migration; it
// did not run) re-sends the command after a short wait (10 ms doubling to 100 ms, at most
// `max_tryagain` times): a waiter's command only while the retry goes out before its deadline
// (else the waiter gets the TRYAGAIN reply at once), a fire-and-forget one up to the cap (then
// dropped with a warning). A timed-out waiter's command is not retried: its late handler gets
// the TRYAGAIN reply. Costs nothing until such a reply comes.
//
// Fire-and-forget EVALSHA (settlements) keep their bytes too: a NOSCRIPT reply (the server lost
// its scripts: SCRIPT FLUSH, failover) re-sends them once as EVAL, so none is lost. Any other
// error reply to a fire-and-forget script call (BUSY, LOADING...: the script did not run) goes,
// with the command's bytes, to the `detached_error` handler if one is set (set_detached_error):
// the owner of what the call carried decides whether it goes again. Costs nothing until such a
// reply comes.
//
// stop() does not drop what is queued: the commands not yet written are written and their
// replies read, for at most `timeout`, then the connection closes. Fire-and-forget commands
// answered MOVED/ASK or TRYAGAIN, waiting to be re-sent, go first (same bound).
//
// Cost per command: the formatted command is appended to a reused output buffer (hiredis
// mallocs the formatted bytes once and we free them at once: one malloc/free); the reply
// objects are malloc'd by hiredis's reader (one per reply, one more per array element) and
// freed after the handler returns; the in-flight queue is a grow-only ring (no allocation in
// steady state). The coroutine form `call()` adds one small allocation for the handler.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/redis_url.hpp"

struct redisReader;
struct redisReply;

namespace ob::state::redis {

namespace asio = boost::asio;
using millis = std::chrono::milliseconds;

enum class errc {
  ok,
  not_connected,    // no connection now (connecting or backing off): failed without sending
  timeout,          // no reply within the client's timeout (the reply will be discarded)
  connection_lost,  // the connection broke with the command in flight
  stopped,          // the client was stopped
};
const char* to_string(errc e);

struct reply_deleter {
  void operator()(redisReply* r) const;
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

// A Lua script: its text and SHA-1 (hex), for EVALSHA.
struct script {
  std::string name;
  std::string body;
  std::string sha1;
  script(std::string name, std::string body);
};

// Result of a command: the error, or the reply (which may itself be a Redis error reply).
struct result {
  errc error = errc::ok;
  reply_ptr reply;
  bool ok() const { return error == errc::ok && reply; }
  bool is_error_reply() const;  // a "-ERR ..." reply
  std::string_view error_text() const;
};

using url = config::redis_url;

struct client_options {
  url address;
  millis timeout{50};
  millis backoff_min{100};
  millis backoff_max{5000};
  millis connect_timeout{1000};
  bool cluster = false;  // follow MOVED/ASK redirections (Redis Cluster)
};

// A `-MOVED <slot> <host:port>` or `-ASK <slot> <host:port>` error reply, parsed. An empty host
// (a node that does not know its address) means the node the reply came from.
struct redirect {
  bool ask = false;
  int slot = 0;
  std::string host;
  std::uint16_t port = 0;
};
std::optional<redirect> parse_redirect(std::string_view error_text);

// The RESP bytes of `EVALSHA <sha> ...` rewritten as `EVAL <body> ...` (same arguments); empty
// when `evalsha` is not a formatted EVALSHA command.
std::string evalsha_to_eval(std::string_view evalsha, std::string_view body);

// The arguments of a command as the client writes it (a RESP array of bulk strings), as views
// into `command`; empty when it is not one.
std::vector<std::string_view> parse_command(std::string_view command);

// A command's handler for its reply after its waiter timed out (see "Late replies" above):
// fn(ctx, errc::timeout, null) returns the context of the second call,
// fn(that, errc::ok / connection_lost / stopped, reply), whose return value is ignored.
struct late_reply {
  void* (*fn)(void* ctx, errc error, reply_ptr reply) = nullptr;
  void* ctx = nullptr;
};

class client : public std::enable_shared_from_this<client> {
 public:
  // fn(ctx, error, reply): reply is null unless error == ok; fn owns it.
  using callback = void (*)(void* ctx, errc error, reply_ptr reply);
  // fn(ctx, s, command, reply): a fire-and-forget call of script `s` (EVALSHA or EVAL; its bytes
  // in `command`, valid during the call) was answered with an error reply other than NOSCRIPT.
  using detached_error = void (*)(void* ctx, const script& s, std::string_view command,
                                  const redisReply* reply);

  client(asio::any_io_executor ex, client_options options);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Scripts loaded (SCRIPT LOAD, pipelined before anything else) on every connection.
  // Register before start().
  void add_script(const script* s) { scripts_.push_back(s); }

  void start();  // begins connecting (in the background, with backoff)
  // Completes once the first connection attempt after start() has ended, made or failed, or
  // connect_timeout after start() if it has not by then (a slow name lookup); at once after
  // that, after stop(), or before start(). What a worker awaits before it accepts clients:
  // a request must not find Redis unreachable only because the gateway has just started.
  asio::awaitable<void> first_attempt();
  // Closes for good: takes no more commands; in-flight handlers get errc::stopped at once, but
  // the commands already queued are still written and their replies read (at most `timeout`)
  // before the connection closes; then `closed` is called (posted on the executor).
  void stop(std::function<void()> closed = {});

  // Commands can be sent (a connection is up, or one to the node a MOVED named is being made).
  bool connected() const { return !stopped_ && (ready_ || moving_); }
  std::uint64_t connections_made() const { return connections_; }
  std::uint64_t connect_attempts() const { return attempts_; }
  const asio::any_io_executor& executor() const { return ex_; }

  // Sends a command now (pipelined). Returns false, without calling fn, when not connected:
  // the caller decides what a missing Redis means. Otherwise fn is called exactly once, on this
  // client's executor, never from inside send().
  bool send(std::span<const std::string_view> argv, callback fn, void* ctx, late_reply late = {});

  // Fire and forget (settlement): the reply is discarded; a NOSCRIPT reply to an EVALSHA
  // reloads the scripts for the next ones. False when not connected.
  bool send_detached(std::span<const std::string_view> argv);

  // co_await form of send(): errc::not_connected at once when not connected.
  asio::awaitable<result> call(std::span<const std::string_view> argv);

  // EVALSHA sha numkeys keys... args...; on NOSCRIPT falls back to EVAL (which caches the
  // script again) in a second round trip. argv = keys then args.
  asio::awaitable<result> eval(const script& s, std::size_t numkeys,
                               std::span<const std::string_view> keys_and_args,
                               late_reply late = {});
  // Fire-and-forget EVALSHA (see send_detached).
  bool eval_detached(const script& s, std::size_t numkeys,
                     std::span<const std::string_view> keys_and_args);
  // Fire-and-forget EVAL (the script's text, which caches it again): for a call known to have
  // met a server without the script (a late NOSCRIPT reply).
  bool eval_text_detached(const script& s, std::size_t numkeys,
                          std::span<const std::string_view> keys_and_args);

  // One handler per client (a later call replaces it); clear_detached_error(ctx) removes it if
  // it is still ctx's.
  void set_detached_error(detached_error fn, void* ctx) {
    detached_error_ = fn;
    detached_error_ctx_ = ctx;
  }
  void clear_detached_error(void* ctx) {
    if (detached_error_ctx_ == ctx) detached_error_ = nullptr, detached_error_ctx_ = nullptr;
  }

  // Commands whose reply never came before the timeout (diagnostics and tests).
  std::uint64_t timeouts() const { return timeouts_; }
  // Late replies handed to a late_reply handler (diagnostics and tests).
  std::uint64_t late_replies() const { return late_replies_; }
  // Commands re-sent after a MOVED/ASK reply, or as EVAL after NOSCRIPT (diagnostics and tests).
  std::uint64_t redirected() const { return redirected_count_; }
  std::uint64_t resent_as_eval() const { return resent_eval_; }
  // Commands sent again after a TRYAGAIN reply (diagnostics and tests).
  std::uint64_t tryagain_retries() const { return tryagain_count_; }
  // The node the client talks to now (the configured one until a MOVED reply names another).
  std::string node() const { return node_host_ + ":" + std::to_string(node_port_); }

  static constexpr unsigned max_redirects = 5;
  // TRYAGAIN: at most this many retries of a command, the first 10 ms after the reply, each
  // wait twice the last, at most 100 ms.
  static constexpr unsigned max_tryagain = 5;
  static constexpr millis tryagain_min_delay{10};
  static constexpr millis tryagain_max_delay{100};

 private:
  struct entry {
    callback fn = nullptr;  // null once expired (reply to be discarded) or detached
    void* ctx = nullptr;
    std::chrono::steady_clock::time_point deadline;
    bool detached = false;
    const script* evalsha = nullptr;  // a detached call of this script (EVALSHA: NOSCRIPT, EVAL)
    unsigned redirects = 0;           // MOVED/ASK replies this command had
    unsigned tryagains = 0;           // TRYAGAIN replies this command had
    bool asking = false;              // to re-send (sent, in flight) after ASKING
    std::chrono::steady_clock::time_point retry_at;  // answered TRYAGAIN: when it goes again
    std::string bytes;  // the formatted command, kept while it may have to be re-sent
    late_reply late;    // engaged (fn null, late.fn set) once the waiter timed out
  };
  // Grow-only ring of in-flight commands, in send order (slots keep their buffers' capacity).
  struct ring {
    std::vector<entry> slots;
    std::size_t head = 0, count = 0;
    bool empty() const { return count == 0; }
    entry& front() { return slots[head]; }
    entry& at(std::size_t i) { return slots[(head + i) % slots.size()]; }
    entry& push();  // the new last slot (its bytes cleared)
    void pop();
  };

  asio::awaitable<void> run();  // connect, read, reconnect loop
  asio::awaitable<bool> connect_once();
  void start_write();
  void on_reply(redisReply* r);
  void on_timer();
  void arm_timer();
  void drop_connection(errc why);
  bool send_parts(std::span<const std::string_view> prefix, std::span<const std::string_view> rest,
                  callback fn, void* ctx, bool detached, const script* evalsha = nullptr,
                  late_reply late = {});
  entry& push_sent(std::size_t at, callback fn, void* ctx, bool detached, const script* evalsha,
                   late_reply late = {});
  void time_out(entry& e);  // the waiter's timeout (after engaging its late handler)
  void end_late(entry& e, errc why, reply_ptr r);  // the late handler's second call
  void resend(entry& e);
  void maybe_switch_node();
  void maybe_close();
  void keep_detached(std::vector<entry>& v);
  static millis tryagain_delay(unsigned tryagains);
  void arm_retry();
  void on_retry();
  void reload_scripts();
  asio::awaitable<result> call_parts(std::span<const std::string_view> prefix,
                                     std::span<const std::string_view> rest, late_reply late = {});
  void append_command(std::span<const std::string_view> prefix,
                      std::span<const std::string_view> rest);
  void queue_setup();
  static void on_setup_reply(void* ctx, errc e, reply_ptr r);

  asio::any_io_executor ex_;
  client_options opt_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;          // command timeouts
  asio::steady_timer backoff_;        // reconnect waits
  asio::steady_timer first_attempt_;  // first_attempt()'s waiters; expired once it is over
  bool attempted_ = false;            // the first connection attempt has ended
  redisReader* reader_ = nullptr;
  std::vector<const script*> scripts_;
  std::string out_;      // commands not yet handed to the socket
  std::string writing_;  // the bytes of the write in progress
  bool write_pending_ = false;
  ring inflight_;
  std::size_t expired_ = 0;  // leading inflight_ entries whose handler already got a timeout
  std::chrono::steady_clock::time_point timer_at_ = std::chrono::steady_clock::time_point::max();
  bool ready_ = false;
  bool stopped_ = false;
  bool started_ = false;
  std::uint64_t generation_ = 0;  // bumped on each connection drop
  std::uint64_t connections_ = 0;
  std::uint64_t attempts_ = 0;
  std::uint64_t timeouts_ = 0;
  std::uint64_t late_replies_ = 0;
  millis stuck_after_;
  // Redis Cluster: the node in use (the configured one until a MOVED reply names another).
  std::string node_host_;
  std::uint16_t node_port_ = 0;
  bool redirecting_ = false;   // a redirection is pending: finishing the old connection
  bool moving_ = false;        // ...until the connection to the new node is tried
  std::string redirect_host_;  // where to
  std::uint16_t redirect_port_ = 0;
  bool reconnect_now_ = false;     // the next connection without a backoff wait
  std::vector<entry> redirected_;  // answered MOVED/ASK: re-sent once connected to the node
  std::string scratch_;            // the bytes of the command whose reply is being handled
  std::chrono::steady_clock::time_point deadline_cap_ =
      std::chrono::steady_clock::time_point::max();
  std::uint64_t redirected_count_ = 0;
  std::uint64_t resent_eval_ = 0;
  // Redis Cluster TRYAGAIN: commands waiting to go again, and the timer of the earliest.
  std::vector<entry> retry_;
  asio::steady_timer retry_timer_;
  std::chrono::steady_clock::time_point retry_at_ = std::chrono::steady_clock::time_point::max();
  std::uint64_t tryagain_count_ = 0;
  // stop(): closing once the queued commands are written and answered, or at the deadline.
  bool closing_ = false;
  asio::steady_timer stop_timer_;
  std::function<void()> closed_;
  detached_error detached_error_ = nullptr;
  void* detached_error_ctx_ = nullptr;
};

}  // namespace ob::state::redis
