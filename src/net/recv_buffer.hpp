// A socket read that tells Asio's reactor when it drained the socket, so that the next read
// waits for the next epoll edge instead of trying a recv that finds nothing. Used for the
// reads of HTTP/1 clients (the plain listener, the TLS listener's input buffer) and of
// provider connections (upstream::connection::read_some: a plain one's reads, a TLS one's
// reads into its input buffer), not of HTTP/2 connections.
//
// Asio (1.81, epoll) starts every socket read with a speculative recv unless the descriptor's
// last read returned 0 bytes, and the descriptor stays registered edge-triggered for input. On
// a keep-alive client connection that recv almost always fails with EAGAIN: the gateway reads
// the client's next request right after answering. On a provider connection it is the pool's
// idle watch, an answer's first read and a stream's read between events. That was one to two
// syscalls per request that found nothing (docs/BENCHMARKS.md).
//
// A short read alone does not prove the socket drained: a FIN that arrived before or with the
// last bytes leaves the socket readable (recv returns 0 next) while its epoll edge is already
// spent, and a read queued without trying would wait for an edge that never comes (a client
// that half-closes after its request). So the read asks the kernel: with TCP_INQ set on the
// socket (enable_drain_hint), recvmsg returns the bytes still queued after it, and 1 when a FIN
// is queued (Linux tcp_inq_hint). Only 0 marks the socket drained ("done_and_exhausted", as
// Asio marks a short write); any byte or FIN that arrives later raises a new edge, whose event
// makes Asio try reads again. Without the hint (the option refused, a socket that is not TCP)
// a read never marks the socket drained: Asio's behaviour.
//
// What the hint does not count: a RST that came with the last bytes (the kernel records it as
// the socket's error, not as a FIN). A read queued after such a drained read waits for an edge
// that does not come, or for its deadline. On an HTTP/1 client connection only the wait for a
// request's first byte is queued that way: every read in the middle of a request (the rest of
// a head, a body) tries the socket first (proxy::client_stream::async_read_more), so a client
// that resets mid-request is let go at once, not at client_header / client_body; while a
// request is with its provider, the client watch (async_wait, which re-arms the descriptor;
// armed after 20 ms) sees the reset, and the answer's write fails. On a provider connection
// (plain or TLS) a write fails at once on such a socket (a pooled connection's request is then
// sent again on a fresh one), and a read that waits over a second is looked at with a poll
// once a second (proxy::exchange::check_stalled_read): a stream cut by such a reset ends
// within about a second, not at timeouts.idle. An HTTP/2 connection's read has no deadline
// while its streams live (a stream waiting on its provider, or on a shut flow control window,
// writes nothing that would fail), so those reads stay Asio's own.
//
// Also: a drained read ends the reactor's pass over the descriptor's queued reads, so another
// read-side operation queued behind it (a TLS write that waits for readiness to read, which
// only a renegotiation asks for, and the listener refuses those) completes on the next edge.
//
// Use: socket.async_read_some(net::recv_into(b), handler) on a socket for which
// enable_drain_hint ran. Other reads on the same socket stay correct (a read queued while the
// socket is marked drained completes on the next edge, and nothing is drained while bytes or a
// FIN wait).
#pragma once

#include <cstddef>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/version.hpp>
// After the socket headers, which it assumes.
#include <boost/asio/detail/reactive_socket_recv_op.hpp>

// The specialisation below mirrors the receive operation of Asio 1.26 (Boost 1.81, Debian 12's)
// on Linux. With another Asio, recv_into gives a plain buffer and the reads are Asio's own.
#if BOOST_ASIO_VERSION == 102600 && defined(__linux__)
#define OB_NET_DRAINING_READS 1
#else
#define OB_NET_DRAINING_READS 0
#endif

namespace ob::net {

// One contiguous read target (a MutableBufferSequence of one buffer). `drained`, when set, is
// where a read that takes bytes, an end or an error records whether it drained the socket (so
// that the next read in the middle of a message knows it must try the socket itself:
// proxy::client_stream::async_read_more); it must outlive the read (a member of the socket's
// owner: a closed socket's reads are aborted without reading).
struct recv_buffer : boost::asio::mutable_buffer {
  explicit recv_buffer(boost::asio::mutable_buffer b, bool* drained = nullptr)
      : boost::asio::mutable_buffer(b), drained(drained) {}
  bool* drained;
};

// The read target of a single-buffer read (`b` converts to one mutable_buffer).
template <class MutableBuffer>
auto recv_into(const MutableBuffer& b, bool* drained = nullptr) {
#if OB_NET_DRAINING_READS
  return recv_buffer(boost::asio::mutable_buffer(b), drained);
#else
  // Asio's own read never marks the socket drained.
  if (drained) *drained = false;
  return boost::asio::mutable_buffer(b);
#endif
}

// Asks the kernel for the queued-bytes hint on `s`'s reads (TCP_INQ); false when refused.
// One setsockopt per connection.
bool enable_drain_hint(boost::asio::ip::tcp::socket& s);

// The read itself, non-blocking: recvmsg into `b`. Returns false when nothing was there
// (EAGAIN: the caller waits); true otherwise, with `n` bytes or `ec` (asio::error::eof for an
// orderly end). `drained` is true when the read left nothing behind it: the hint said no byte
// and no FIN is queued (false whenever the socket gives no hint), or the end was read.
// `flags` are recv's (MSG_PEEK: nothing is consumed, so nothing is drained).
bool recv_some(int fd, boost::asio::mutable_buffer b, int flags, std::size_t& n,
               boost::system::error_code& ec, bool& drained);

}  // namespace ob::net

#if OB_NET_DRAINING_READS
namespace boost::asio::detail {

// Asio's recv operation, for net::recv_buffer: the same, except that a read which drained the
// socket reports done_and_exhausted, so the reactor skips the next read's speculative recv.
// (Asio's own reports it only for a read of 0 bytes.)
template <>
class reactive_socket_recv_op_base<ob::net::recv_buffer> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                               socket_ops::state_type state, const ob::net::recv_buffer& buffer,
                               socket_base::message_flags flags, func_type complete_func)
      : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
        socket_(socket),
        stream_((state & socket_ops::stream_oriented) != 0),
        flags_(flags),
        buffer_(buffer) {}

  static status do_perform(reactor_op* base);

 private:
  socket_type socket_;
  bool stream_;
  socket_base::message_flags flags_;
  ob::net::recv_buffer buffer_;
};

}  // namespace boost::asio::detail
#endif
