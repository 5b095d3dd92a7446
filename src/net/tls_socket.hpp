// A TLS connection driven directly on its TCP socket. OpenSSL writes the socket itself (a
// BIO over the socket's descriptor) and, on the server side (the gateway's TLS listener),
// read-ahead on, reads it too once the bytes it was handed run out. A read for which OpenSSL holds
// no byte starts with the socket's own async_read_some into a small input buffer that the BIO hands
// to OpenSSL first: a recv_buffer read (recv_buffer.hpp), which waits in the reactor with no
// syscall when the last read drained the socket, and otherwise makes one speculative recv that
// takes the request when it is there (the descriptor stays registered for input). Waiting
// instead with async_wait cost an epoll_ctl per wait (Asio re-registers the descriptor for every
// non-speculative op), and OpenSSL's own recv before it one more EAGAIN: a request on an idle
// keep-alive connection now costs one recv, as on the plain listener.
//
// The server side (the gateway's TLS listener) has a 4 KiB input buffer (listener_input_size):
// a connection waits for its next request with that buffer as the read's target, so it is
// held by every idle keep-alive connection, beside OpenSSL's SSL object (a few KiB with
// SSL_MODE_RELEASE_BUFFERS, tls_context.cpp). A request's first record is the request as the
// client wrote it: ~1.25 KiB in the benchmark, 1-8 KiB for a chat request; 4 KiB takes the
// usual ones whole (and the HTTP/1 reader asks for 4 KiB at a time), and a larger record costs
// one more recv (OpenSSL reads the rest from the socket directly once the buffer is used up),
// still no epoll_ctl. Only the read and the handshake fill the buffer: a
// write that OpenSSL asks to read (a renegotiation; the listener refuses them) waits with
// async_wait, since an HTTP/2 connection keeps a read waiting while it writes and two reads
// into one buffer would race; while the buffer's read is outstanding the BIO reads nothing
// from the socket (bytes received for it come first).
//
// The client side (upstream connections) reads only through its 17 KiB input buffer (a whole
// record). A read its owner allows to drain the socket (set_draining: an answer's read, not one
// beside a write) fills it with a recv_buffer read, as a plain provider connection reads: the
// answer is never there yet when its first read starts, and the pool's idle watch starts right
// after the answer's last read, so both wait in the reactor with no recv when that last read
// took everything. A RST that came with the last bytes taken is not in the kernel's hint: the
// owner finds such a read by a poll and reads the socket itself (fill_now;
// proxy::exchange::check_stalled_read). Other fills (the handshake, a read beside a write)
// are Asio's own reads. Only one of its operations at a time may be reading (upstream
// exchanges write, then read).
//
// Why not asio::ssl::stream (+ beast::ssl_stream): that design puts a BIO pair between OpenSSL
// and the socket, so every record is copied twice more (socket -> Asio's 17 KiB input vector
// -> BIO pair -> OpenSSL, and the reverse on writes), every read and write runs two nested
// composed operations plus flat_stream's, and each connection holds 2 x 17 KiB of Asio
// vectors and 2 x 17 KiB of BIO pair buffers for its whole life, idle or not. Here an idle
// listener connection holds OpenSSL's SSL object and the 4 KiB input buffer.
//
// Writes gather their buffers into records of up to 16 KiB (one SSL_write, one send each); a
// piece that is alone or already that large goes out without a copy. The gathering is done in
// one buffer per thread, shared by all its connections, so the bytes of the record being written
// are in cache whichever connection writes (a buffer per connection, 64 connections each
// answering 7 KiB streams, cost ~3% more CPU per request in the benchmark's scenario v: every
// write touched a cold buffer). A write that has to wait in the middle of such a record (the
// peer not reading; with small records, OpenSSL reads the rest of the bytes on its retry) first
// copies the record into the connection's own buffer, which another connection's write cannot
// overwrite, and gives it back when the record is out. Completions are never
// run inside the initiating call (posted, as Asio's socket operations do). One read and one
// write may be outstanding at once, not two of a kind.
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <memory>
#include <string>
#include <utility>

#include <openssl/ssl.h>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/execution/allocator.hpp>
#include <boost/asio/execution/blocking.hpp>
#include <boost/asio/execution/relationship.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/require.hpp>

#include "net/recv_buffer.hpp"

namespace ob::net {

class tls_socket {
 public:
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::system::error_code;

  // A server connection (accept state) on `s` with a new SSL object of `ctx`.
  tls_socket(tcp::socket s, SSL_CTX* ctx);
  // A client connection (connect state): reads only through the input buffer (see above),
  // read-ahead on, OpenSSL's record buffers kept. Set SNI, verification and the session to
  // offer on native_handle() before the handshake. Only one operation at a time may be reading:
  // a write fills the input buffer too (it needs to read only for a TLS 1.2 renegotiation;
  // upstream exchanges write, then read).
  struct client_t {};
  static constexpr client_t client{};
  tls_socket(tcp::socket s, SSL_CTX* ctx, client_t);
  tls_socket(tls_socket&&) noexcept = default;
  tls_socket& operator=(tls_socket&&) noexcept = default;
  ~tls_socket() = default;

  tcp::socket& socket() { return s_->sock; }
  SSL* native_handle() { return s_->ssl.get(); }

  // Whether bytes were received and not handed out yet: in the input buffer, or records or
  // plaintext held inside OpenSSL.
  bool has_buffered_input() const;

  // Client side: whether the reads started from now on may leave the socket marked drained
  // (see above); off at first.
  void set_draining(bool on) { s_->draining = on; }
  // Client side, no read outstanding: one recv now, without waiting, into the input buffer
  // (for a read that waited on a socket that had something after all: an end, an error, bytes;
  // the next read hands them to OpenSSL). Returns the bytes taken; 0 with `ec` the end or the
  // socket's error (the connection is broken then), 0 without: nothing there, or no room.
  std::size_t fill_now(error_code& ec);

  // Sends close_notify once, without waiting: if the socket does not take the alert now it is
  // not sent. Nothing after a failed handshake or a fatal error (OpenSSL forbids it), nothing
  // twice, nothing on a closed socket. Call it before closing a connection the gateway ends.
  // A sent alert is followed at once by the FIN (the socket's sending side is shut down): the
  // stream ends in order even if the peer's answering close_notify is in, unread, when the
  // socket is closed (that close then resets a connection already ended, not one still open).
  // Returns whether this call sent the alert and the FIN.
  bool close_notify() { return s_->close_notify(); }

  // Completion signature (error_code).
  template <class Token>
  auto async_handshake(Token&& token) {
    return boost::asio::async_compose<Token, void(error_code)>(handshake_op{s_.get()}, token,
                                                               s_->sock);
  }
  // Completion signature (error_code, std::size_t): reads into the first buffer of `b`.
  // A close_notify from the peer reads as asio::error::eof.
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& b, Token&& token) {
    boost::asio::mutable_buffer first;
    for (auto it = boost::asio::buffer_sequence_begin(b); it != boost::asio::buffer_sequence_end(b);
         ++it) {
      first = boost::asio::mutable_buffer(*it);
      if (first.size() > 0) break;
    }
    return start(read_op{s_.get(), first}, std::forward<Token>(token));
  }
  // The same, for a read in the middle of a message (a server connection's): after a read of
  // the socket that may have drained it, OpenSSL reads first, its BIO trying the socket, even
  // when it holds nothing: a reset that came with the bytes taken raises no edge
  // (proxy::client_stream::async_read_more).
  template <class MutableBuffer, class Token>
  auto async_read_more(const MutableBuffer& b, Token&& token) {
    return start(read_op{s_.get(), boost::asio::mutable_buffer(b), 0, s_->maybe_drained},
                 std::forward<Token>(token));
  }
  // Completion signature (error_code, std::size_t): writes all of `b`.
  template <class ConstBuffers, class Token>
  auto async_write(const ConstBuffers& b, Token&& token) {
    return start(write_op<ConstBuffers>{s_.get(), b, boost::asio::buffer_size(b)},
                 std::forward<Token>(token));
  }

  // Internals, public only so that the BIO functions in tls_socket.cpp reach the state.
  enum class step { done, want_read, want_write, failed };
  static constexpr std::size_t record_size = 16 * 1024;
  // Client side: a whole record of the usual ciphers (16 KiB + header + tag); a larger one
  // takes two reads.
  static constexpr std::size_t input_size = 17 * 1024;
  // Server side: a usual request's first record (see above); the rest of a larger one is read
  // from the socket directly.
  static constexpr std::size_t listener_input_size = 4 * 1024;

  struct ssl_free {
    void operator()(SSL* p) const { SSL_free(p); }
  };
  // Heap-held so that the BIO's pointer to the state survives moves of tls_socket.
  struct state {
    tcp::socket sock;
    std::unique_ptr<SSL, ssl_free> ssl;
    std::string gather;     // a gathered record kept while its write waits (see write_op)
    bool broken = false;    // a fatal error: no more SSL calls that write (close_notify)
    bool client;            // reads only through `in`, never the socket directly
    bool filling = false;   // the socket's async_read_some into `in` is outstanding
    bool draining = false;  // client side: reads may fill `in` with a draining read
    // The socket's last read may have drained it: a fill read that did (recv_buffer.hpp), or
    // the BIO's own recv, which has no hint (read_op::tried).
    bool maybe_drained = false;
    // Bytes the socket's async_read_some put in `in`, [in_pos, in_len) not yet taken by
    // OpenSSL.
    std::unique_ptr<char[]> in;
    std::size_t in_size, in_pos = 0, in_len = 0;

    state(tcp::socket s, SSL_CTX* ctx, bool client);
    // Whether an operation that waits for input fills `in` (see wait).
    bool fills(bool reads) const { return (reads || client) && !filling && in_len < in_size; }
    // The free end of `in`, the bytes OpenSSL did not take yet moved to its start first.
    boost::asio::mutable_buffer input_room();
    // input_room() as the target of the socket's read into `in`, outstanding until filled.
    boost::asio::mutable_buffer fill_target();
    void filled(error_code ec, std::size_t n);
    // Server side: whether a read has to start on the socket (no bytes held in `in` or
    // OpenSSL, and OpenSSL would read, not report an end or an error).
    bool socket_first() const;
    step handshake(error_code& ec);
    step read(void* p, std::size_t n, std::size_t& got, error_code& ec);
    step write(const void* p, std::size_t n, std::size_t& put, error_code& ec);
    bool close_notify();
    step failure(int ret, error_code& ec);
  };

  // Waits for what OpenSSL asked for; false when `s` is the final answer. An operation that
  // reads (a read, the handshake; on the client side any) waits by filling the input buffer;
  // a server-side write waits for readiness only, and so does anything while the buffer's
  // read is outstanding or the buffer is full.
  template <class Self>
  static bool wait(state* st, step s, Self& self, bool reads) {
    if (s == step::want_read) {
      if (st->fills(reads)) {  // completes with (error_code, bytes): the ops' filled() overload
        if (st->client && !(reads && st->draining))  // Asio's own read (see above)
          st->sock.async_read_some(st->fill_target(), std::move(self));
        else
          st->sock.async_read_some(recv_into(st->fill_target(), &st->maybe_drained),
                                   std::move(self));
      } else
        st->sock.async_wait(tcp::socket::wait_read, std::move(self));
      return true;
    }
    if (s == step::want_write) {
      st->sock.async_wait(tcp::socket::wait_write, std::move(self));
      return true;
    }
    return false;
  }

  // Reads and writes are one attempt, repeated until OpenSSL finishes (done or failed):
  //   step attempt(error_code& e)  one more try (SSL_read, SSL_write)
  //   finish(f, e)                 calls f with the completion's arguments
  //   first_attempt(e)             the initiation's: an attempt, or for a server-side read
  //                                with no byte held yet, want_read (the socket's read first)
  // When OpenSSL finishes in the initiation (the bytes of a read already held, a socket that
  // takes the answer), the handler is posted with its result to its associated executor: no
  // composed operation, no work guard. Otherwise the handler
  // goes into a composed operation (waiting_op) that waits for the socket, keeps work on the
  // socket's executor meanwhile, and completes on the handler's executor; closing the socket
  // aborts the wait (operation_aborted).
  template <class Op, class Token>
  static auto start(Op op, Token&& token) {
    return boost::asio::async_initiate<Token, typename Op::signature>(initiation{}, token,
                                                                      std::move(op));
  }

  struct initiation {
    template <class Handler, class Op>
    void operator()(Handler handler, Op op) const {
      auto& sock = op.st->sock;
      error_code e;
      auto s = op.first_attempt(e);
      if (s == step::want_read || s == step::want_write) {
        boost::asio::async_compose<Handler, typename Op::signature>(
            waiting_op<Op>{std::move(op), s}, handler, sock);
        return;
      }
      // Posted, never run here: to the handler's executor (the socket's when it has none),
      // which counts the posted completion as outstanding work, with the handler's allocator.
      // What asio::post(executor, handler) does, without its binders and executor copies
      // (a few hundred instructions per completion).
      namespace execution = boost::asio::execution;
      auto ex = boost::asio::get_associated_executor(handler, sock.get_executor());
      auto alloc = boost::asio::get_associated_allocator(handler);
      op.finish(
          [&](auto... args) {
            boost::asio::prefer(boost::asio::require(ex, execution::blocking.never),
                                execution::relationship.fork, execution::allocator(alloc))
                .execute([h = std::move(handler), args...]() mutable { std::move(h)(args...); });
          },
          e);
    }
  };

  // An operation that has to wait: first for what the initiation's attempt asked for, then
  // for whatever each further attempt asks for.
  template <class Op>
  struct waiting_op {
    Op op;
    step next;  // the wait to start with; done once it started
    template <class Self>
    void operator()(Self& self, error_code ec, std::size_t filled) {
      op.st->filled(ec, filled);
      (*this)(self, ec);
    }
    template <class Self>
    void operator()(Self& self, error_code ec = {}) {
      if (!ec) {
        auto s = std::exchange(next, step::done);
        if (s == step::done) s = op.attempt(ec);
        if (wait(op.st, s, self, Op::reads)) return;
      }
      op.finish([&](auto... args) { self.complete(args...); }, ec);
    }
  };

  struct read_op {
    using signature = void(error_code, std::size_t);
    static constexpr bool reads = true;
    state* st;
    boost::asio::mutable_buffer b;
    std::size_t n = 0;   // set by the attempt that succeeds
    bool tried = false;  // OpenSSL reads first, whatever it holds (async_read_more)
    step attempt(error_code& e) {
      return b.size() == 0 ? step::done : st->read(b.data(), b.size(), n, e);
    }
    // A server-side read for which OpenSSL holds nothing goes to the socket's read at once
    // (its one speculative recv finds the bytes, or the read waits): OpenSSL's own recv would
    // only add an EAGAIN before it when the request is not there yet.
    step first_attempt(error_code& e) {
      return b.size() > 0 && !tried && st->socket_first() ? step::want_read : attempt(e);
    }
    template <class F>
    void finish(F&& f, error_code e) {
      f(e, n);
    }
  };

  template <class ConstBuffers>
  struct write_op {
    using signature = void(error_code, std::size_t);
    static constexpr bool reads = false;
    state* st;
    ConstBuffers b;
    std::size_t total;
    std::size_t done = 0;         // bytes of `b` OpenSSL took
    const char* chunk = nullptr;  // the record being written: into `b`, scratch() or st->gather
    std::size_t chunk_size = 0, chunk_done = 0;
    bool in_scratch = false;  // `chunk` is the thread's scratch buffer
    bool kept = false;        // `chunk` is st->gather

    // The thread's buffer that records are gathered in: only between the gathering and the end
    // of the same attempt() (no other write runs in between on this thread).
    static std::string& scratch() {
      static thread_local std::string s;
      return s;
    }

    // The next record's bytes from `done` on: a piece that is the last one or already a
    // record's size as it is, otherwise the pieces copied together up to a record's size.
    void next_chunk() {
      auto it = boost::asio::buffer_sequence_begin(b);
      auto end = boost::asio::buffer_sequence_end(b);
      std::size_t skip = done;
      for (; it != end; ++it) {
        auto size = boost::asio::const_buffer(*it).size();
        if (skip < size) break;
        skip -= size;
      }
      boost::asio::const_buffer first(*it);
      first += skip;
      auto next = std::next(it);
      if (first.size() >= record_size || next == end) {
        chunk = static_cast<const char*>(first.data());
        chunk_size = first.size();
      } else {
        auto& g = scratch();
        g.assign(static_cast<const char*>(first.data()), first.size());
        for (it = next; it != end && g.size() < record_size; ++it) {
          boost::asio::const_buffer x(*it);
          g.append(static_cast<const char*>(x.data()), std::min(x.size(), record_size - g.size()));
        }
        chunk = g.data();
        chunk_size = g.size();
        in_scratch = true;
      }
      chunk_done = 0;
    }

    // Before a wait: a record in the scratch buffer moves to the connection's own (OpenSSL may
    // read its rest again on the retry; SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets it move).
    void keep_chunk() {
      if (!in_scratch) return;
      st->gather.assign(chunk, chunk_size);
      chunk = st->gather.data();
      in_scratch = false;
      kept = true;
    }
    // A record out of the scratch or the kept copy: the kept copy's memory goes back (a
    // connection that had to wait once does not hold 16 KiB for the rest of its life).
    void chunk_out() {
      in_scratch = false;
      if (kept) std::string().swap(st->gather);
      kept = false;
    }

    step first_attempt(error_code& e) { return attempt(e); }
    // Writes records until all of `b` is out or OpenSSL stops (wait or failure).
    step attempt(error_code& e) {
      for (;;) {
        if (chunk_done == chunk_size) {
          done += chunk_size;
          chunk_size = chunk_done = 0;
          chunk_out();
          if (done >= total) return step::done;
          next_chunk();
        }
        std::size_t put = 0;
        auto s = st->write(chunk + chunk_done, chunk_size - chunk_done, put, e);
        if (s != step::done) {
          if (s == step::failed)
            chunk_out();
          else
            keep_chunk();
          return s;
        }
        chunk_done += put;
      }
    }
    template <class F>
    void finish(F&& f, error_code e) {
      f(e, done + chunk_done);
    }
  };

  // The handshake always waits for the peer at least once, so it is a composed operation
  // from the start; a result it has at once (a failure) is posted through it.
  struct handshake_op {
    state* st;
    int stage = 0;  // 0 initiating, 1 resumed by a wait, 2 resumed by the post of a result
    error_code result{};
    template <class Self>
    void operator()(Self& self, error_code ec, std::size_t filled) {
      st->filled(ec, filled);
      (*this)(self, ec);
    }
    template <class Self>
    void operator()(Self& self, error_code ec = {}) {
      if (stage == 2) return self.complete(result);
      if (ec) return self.complete(ec);
      bool initiating = stage == 0;
      stage = 1;
      error_code e;
      auto s = st->handshake(e);
      if (wait(st, s, self, true)) return;
      if (!initiating) return self.complete(e);
      stage = 2;
      result = e;
      boost::asio::post(st->sock.get_executor(), std::move(self));
    }
  };

 private:
  std::unique_ptr<state> s_;
};

}  // namespace ob::net
