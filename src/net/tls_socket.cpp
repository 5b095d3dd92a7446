#include "net/tls_socket.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

namespace ob::net {

namespace {

using tcp = boost::asio::ip::tcp;

// The BIO's data is the connection's state: a closed socket (a deadline closed it) has no
// descriptor, so OpenSSL can never reach a descriptor number reused by another connection.
tls_socket::state* state_of(BIO* b) {
  return static_cast<tls_socket::state*>(BIO_get_data(b));
}
int socket_fd(BIO* b) {
  auto& sock = state_of(b)->sock;
  return sock.is_open() ? sock.native_handle() : -1;
}

bool retryable(int e) {
  return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

int bio_write(BIO* b, const char* p, int n) {
  BIO_clear_retry_flags(b);
  int fd = socket_fd(b);
  if (fd < 0) {
    errno = EBADF;
    return -1;
  }
  auto r = ::send(fd, p, static_cast<std::size_t>(n), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (r < 0 && retryable(errno)) BIO_set_retry_write(b);
  return static_cast<int>(r);
}

// The input buffer's bytes first. Then the socket directly (server side), unless the buffer's
// read is outstanding: bytes it took from the socket come before any read now.
int bio_read(BIO* b, char* p, int n) {
  BIO_clear_retry_flags(b);
  auto* st = state_of(b);
  if (!st->sock.is_open()) {
    errno = EBADF;
    return -1;
  }
  if (std::size_t have = st->in_len - st->in_pos; have > 0) {
    std::size_t k = std::min(have, static_cast<std::size_t>(n));
    std::memcpy(p, st->in.get() + st->in_pos, k);
    st->in_pos += k;
    if (st->in_pos == st->in_len) st->in_pos = st->in_len = 0;
    return static_cast<int>(k);
  }
  if (st->client || st->filling) {
    BIO_set_retry_read(b);
    return -1;
  }
  auto r = ::recv(st->sock.native_handle(), p, static_cast<std::size_t>(n), MSG_DONTWAIT);
  if (r < 0 && retryable(errno)) BIO_set_retry_read(b);
  if (r > 0) st->maybe_drained = true;  // no hint here: perhaps the socket's last bytes
  return static_cast<int>(r);
}

long bio_ctrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

BIO_METHOD* socket_method() {
  static BIO_METHOD* m = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "openbridge socket");
    if (!m || BIO_meth_set_write(m, bio_write) != 1 || BIO_meth_set_read(m, bio_read) != 1 ||
        BIO_meth_set_ctrl(m, bio_ctrl) != 1 || BIO_meth_set_create(m, bio_create) != 1)
      throw std::bad_alloc();
    return m;
  }();
  return m;
}

int clamp_int(std::size_t n) {
  return n > INT_MAX ? INT_MAX : static_cast<int>(n);
}

}  // namespace

tls_socket::tls_socket(tcp::socket s, SSL_CTX* ctx)
    : s_(std::make_unique<state>(std::move(s), ctx, false)) {}

tls_socket::tls_socket(tcp::socket s, SSL_CTX* ctx, client_t)
    : s_(std::make_unique<state>(std::move(s), ctx, true)) {}

tls_socket::state::state(tcp::socket s, SSL_CTX* ctx, bool client)
    : sock(std::move(s)),
      ssl(SSL_new(ctx)),
      client(client),
      in_size(client ? input_size : listener_input_size) {
  if (!ssl) throw std::bad_alloc();
  in.reset(new char[in_size]);
  BIO* bio = BIO_new(socket_method());
  if (!bio) throw std::bad_alloc();
  BIO_set_data(bio, this);
  SSL_set_bio(ssl.get(), bio, bio);  // the SSL object owns the BIO
  // write_op needs both, whatever the context says: a record's retry may come from another
  // buffer (a gathered record kept while it waits), and each SSL_write returns once a record
  // is out.
  SSL_set_mode(ssl.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!client) {
    SSL_set_accept_state(ssl.get());
    return;
  }
  // As the listener's context (server/tls_context.cpp), here per connection (the client
  // context is Asio's, upstream/connector.cpp), but OpenSSL's record buffers are kept: an
  // upstream connection carries a request and its answer at once, and releasing them cost a
  // malloc and a free of ~17 KiB each per record; pooled connections are few.
  SSL_clear_mode(ssl.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_set_read_ahead(ssl.get(), 1);
  SSL_set_connect_state(ssl.get());
}

std::size_t tls_socket::fill_now(error_code& ec) {
  ec = {};
  auto* st = s_.get();
  if (st->filling || !st->sock.is_open()) return 0;
  auto room = st->input_room();
  if (room.size() == 0) return 0;
  auto got = ::recv(st->sock.native_handle(), room.data(), room.size(), MSG_DONTWAIT);
  if (got > 0) {
    st->in_len += static_cast<std::size_t>(got);
    return static_cast<std::size_t>(got);
  }
  if (got == 0) {
    ec = boost::asio::error::eof;
    st->broken = true;
  } else if (!retryable(errno)) {
    ec = error_code(errno, boost::system::system_category());
    st->broken = true;
  }
  return 0;
}

bool tls_socket::has_buffered_input() const {
  SSL* ssl = s_->ssl.get();
  return s_->in_pos < s_->in_len || SSL_pending(ssl) > 0 || SSL_has_pending(ssl) == 1;
}

boost::asio::mutable_buffer tls_socket::state::input_room() {
  if (in_pos > 0) {  // OpenSSL asked for more before taking all of it: keep the rest first
    std::memmove(in.get(), in.get() + in_pos, in_len - in_pos);
    in_len -= in_pos;
    in_pos = 0;
  }
  return boost::asio::buffer(in.get() + in_len, in_size - in_len);
}

boost::asio::mutable_buffer tls_socket::state::fill_target() {
  auto room = input_room();
  filling = true;
  return room;
}

void tls_socket::state::filled(error_code ec, std::size_t n) {
  filling = false;
  in_len += n;
  // The peer's end or a reset, as the socket read by OpenSSL would report it; not a close or
  // cancel of ours.
  if (ec && ec != boost::asio::error::operation_aborted) broken = true;
}

bool tls_socket::state::socket_first() const {
  SSL* s = ssl.get();
  return !client && !broken && !filling && in_pos == in_len && SSL_is_init_finished(s) &&
         (SSL_get_shutdown(s) & SSL_RECEIVED_SHUTDOWN) == 0 && SSL_pending(s) == 0 &&
         SSL_has_pending(s) == 0;
}

tls_socket::step tls_socket::state::failure(int ret, error_code& ec) {
  int e = SSL_get_error(ssl.get(), ret);
  switch (e) {
    case SSL_ERROR_WANT_READ:
      return step::want_read;
    case SSL_ERROR_WANT_WRITE:
      return step::want_write;
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
      ec = boost::asio::error::eof;
      return step::failed;
    case SSL_ERROR_SYSCALL:
      broken = true;
      if (!sock.is_open())
        ec = boost::asio::error::bad_descriptor;
      else if (errno != 0 && ret < 0)
        ec = error_code(errno, boost::system::system_category());
      else
        ec = boost::asio::error::eof;  // the peer closed without close_notify
      ERR_clear_error();
      return step::failed;
    default: {
      broken = true;
      unsigned long code = ERR_get_error();
      ec = code ? error_code(static_cast<int>(code), boost::asio::error::get_ssl_category())
                : error_code(boost::asio::ssl::error::unspecified_system_error);
      ERR_clear_error();
      return step::failed;
    }
  }
}

// Each call starts with an empty error queue: SSL_get_error reads it, and another TLS user on
// this thread (an upstream connection) may have left an entry there. Peeked first: clearing
// walks all 16 slots (~840 instructions), three times per request.
namespace {
void clear_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}
}  // namespace

tls_socket::step tls_socket::state::handshake(error_code& ec) {
  clear_errors();
  errno = 0;
  int r = SSL_do_handshake(ssl.get());
  return r == 1 ? step::done : failure(r, ec);
}

tls_socket::step tls_socket::state::read(void* p, std::size_t n, std::size_t& got, error_code& ec) {
  clear_errors();
  errno = 0;
  int r = SSL_read(ssl.get(), p, clamp_int(n));
  if (r > 0) {
    got = static_cast<std::size_t>(r);
    return step::done;
  }
  return failure(r, ec);
}

tls_socket::step tls_socket::state::write(const void* p, std::size_t n, std::size_t& put,
                                          error_code& ec) {
  clear_errors();
  errno = 0;
  int r = SSL_write(ssl.get(), p, clamp_int(n));
  if (r > 0) {
    put = static_cast<std::size_t>(r);
    return step::done;
  }
  return failure(r, ec);
}

bool tls_socket::state::close_notify() {
  if (broken || !sock.is_open() || !SSL_is_init_finished(ssl.get()) ||
      (SSL_get_shutdown(ssl.get()) & SSL_SENT_SHUTDOWN))
    return false;
  ERR_clear_error();
  int r = SSL_shutdown(ssl.get());  // the alert goes out now if the socket takes it; no waiting
  ERR_clear_error();
  // The FIN right behind the alert. The peer answers the alert with its own close_notify; a
  // close() that finds it unread (this thread lost the CPU between the two) would send a reset
  // instead of the FIN, an abortive end for the peer or a proxy in front of us.
  if (r < 0) return false;
  error_code ec;
  sock.shutdown(tcp::socket::shutdown_send, ec);
  return !ec;
}

}  // namespace ob::net
