#include "net/recv_buffer.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace ob::net {

bool enable_drain_hint(boost::asio::ip::tcp::socket& s) {
  int on = 1;
  return ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_INQ, &on, sizeof on) == 0;
}

bool recv_some(int fd, boost::asio::mutable_buffer b, int flags, std::size_t& n,
               boost::system::error_code& ec, bool& drained) {
  iovec iov{b.data(), b.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  for (;;) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t got = ::recvmsg(fd, &msg, flags);
    if (got > 0) {
      n = static_cast<std::size_t>(got);
      ec = {};
      // The hint comes only from a socket with TCP_INQ on; no hint, no conclusion.
      int queued = 1;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ &&
            c->cmsg_len >= CMSG_LEN(sizeof(int)))
          std::memcpy(&queued, CMSG_DATA(c), sizeof queued);
      drained = queued == 0 && (flags & MSG_PEEK) == 0;
      return true;
    }
    if (got == 0) {  // the peer's orderly end (an empty buffer never gets here: Asio's no-op)
      n = 0;
      ec = boost::asio::error::eof;
      drained = true;
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    n = 0;
    ec = boost::system::error_code(errno, boost::asio::error::get_system_category());
    drained = false;
    return true;
  }
}

}  // namespace ob::net

#if OB_NET_DRAINING_READS
namespace boost::asio::detail {

reactor_op::status reactive_socket_recv_op_base<ob::net::recv_buffer>::do_perform(
    reactor_op* base) {
  auto* o = static_cast<reactive_socket_recv_op_base*>(base);
  if (!o->stream_) {  // not TCP: Asio's own read, which never marks anything drained
    return socket_ops::non_blocking_recv1(o->socket_, o->buffer_.data(), o->buffer_.size(),
                                          o->flags_, false, o->ec_, o->bytes_transferred_)
               ? done
               : not_done;
  }
  bool drained = false;
  if (!ob::net::recv_some(o->socket_, o->buffer_, o->flags_, o->bytes_transferred_, o->ec_,
                          drained))
    return not_done;
  if (o->buffer_.drained) *o->buffer_.drained = drained;
  return drained ? done_and_exhausted : done;
}

}  // namespace boost::asio::detail
#endif
