// net::recv_buffer and net::recv_some on real loopback TCP sockets: a read that takes every
// queued byte marks the socket drained, one that leaves bytes or a queued FIN behind does not,
// a socket without the kernel's hint never is; and through Asio, reads after a draining read
// still see the bytes and the end that come later, and an end that came with the last bytes.
// (What the hint does not count, a RST behind the last bytes, is why provider reads do not use
// it: tests/e2e/socket_reads.test.mjs has the provider that resets right after an event.)
#include "net/recv_buffer.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

namespace ob::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A connected pair over 127.0.0.1: `reader` (the side under test) and `peer`.
struct socket_pair {
  asio::io_context io;
  tcp::socket reader{io}, peer{io};
  explicit socket_pair(bool hint = true) {
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    peer.connect(acc.local_endpoint());
    acc.accept(reader);
    reader.non_blocking(true);
    if (hint) {
      EXPECT_TRUE(enable_drain_hint(reader));
    }
  }
  void send(std::string_view s) { asio::write(peer, asio::buffer(s.data(), s.size())); }
  void end() { peer.shutdown(tcp::socket::shutdown_send); }
  // Until the reader's kernel holds what the peer sent (events: POLLIN, POLLRDHUP for the FIN).
  bool wait_for(short events) {
    pollfd p{reader.native_handle(), events, 0};
    return ::poll(&p, 1, 2000) == 1 && (p.revents & events) == events;
  }
};

struct read_result {
  bool ready = false;
  std::size_t n = 0;
  boost::system::error_code ec;
  bool drained = false;
};

read_result read_now(socket_pair& s, char* buf, std::size_t size, int flags = 0) {
  read_result r;
  r.ready =
      recv_some(s.reader.native_handle(), asio::buffer(buf, size), flags, r.n, r.ec, r.drained);
  return r;
}

TEST(RecvSome, ARead_ThatTakesEveryQueuedByte_MarksTheSocketDrained) {
  socket_pair s;
  s.send("hello");
  ASSERT_TRUE(s.wait_for(POLLIN));
  char buf[64];
  auto r = read_now(s, buf, sizeof buf);
  ASSERT_TRUE(r.ready);
  EXPECT_FALSE(r.ec);
  EXPECT_EQ(std::string(buf, r.n), "hello");
  EXPECT_TRUE(r.drained);
}

TEST(RecvSome, ARead_ThatLeavesBytesBehind_DoesNot) {
  socket_pair s;
  s.send(std::string(100, 'x'));
  ASSERT_TRUE(s.wait_for(POLLIN));
  char buf[10];
  auto r = read_now(s, buf, sizeof buf);
  ASSERT_TRUE(r.ready);
  EXPECT_EQ(r.n, 10u);
  EXPECT_FALSE(r.drained);
}

// The case a short read alone gets wrong: the bytes all taken, the FIN still queued.
TEST(RecvSome, ARead_WithTheFinQueuedBehindItsBytes_DoesNot_AndTheNextReadsTheEnd) {
  socket_pair s;
  s.send("last");
  s.end();
  ASSERT_TRUE(s.wait_for(POLLIN | POLLRDHUP));
  char buf[64];
  auto r = read_now(s, buf, sizeof buf);
  ASSERT_TRUE(r.ready);
  EXPECT_EQ(std::string(buf, r.n), "last");
  EXPECT_FALSE(r.drained);
  auto end = read_now(s, buf, sizeof buf);
  ASSERT_TRUE(end.ready);
  EXPECT_EQ(end.ec, asio::error::eof);
  EXPECT_EQ(end.n, 0u);
}

TEST(RecvSome, APeek_NeverDrains) {
  socket_pair s;
  s.send("peek");
  ASSERT_TRUE(s.wait_for(POLLIN));
  char buf[64];
  auto r = read_now(s, buf, sizeof buf, MSG_PEEK);
  ASSERT_TRUE(r.ready);
  EXPECT_EQ(r.n, 4u);
  EXPECT_FALSE(r.drained);
}

TEST(RecvSome, NothingQueued_IsNotReady) {
  socket_pair s;
  char buf[8];
  auto r = read_now(s, buf, sizeof buf);
  EXPECT_FALSE(r.ready);
}

TEST(RecvSome, WithoutTheKernelsHint_NoReadMarksTheSocketDrained) {
  socket_pair s(false);
  s.send("hello");
  ASSERT_TRUE(s.wait_for(POLLIN));
  char buf[64];
  auto r = read_now(s, buf, sizeof buf);
  ASSERT_TRUE(r.ready);
  EXPECT_EQ(r.n, 5u);
  EXPECT_FALSE(r.drained);
}

TEST(RecvSome, AResetPeer_IsAnError_NotDrained) {
  socket_pair s;
  s.peer.set_option(asio::socket_base::linger(true, 0));
  s.peer.close();  // RST
  ASSERT_TRUE(s.wait_for(POLLIN));
  char buf[8];
  auto r = read_now(s, buf, sizeof buf);
  ASSERT_TRUE(r.ready);
  EXPECT_EQ(r.ec, asio::error::connection_reset);
  EXPECT_FALSE(r.drained);
}

// Through Asio's reactor: the reads the gateway makes.
struct async_read {
  std::optional<read_result> done;
  std::string data;
  char buf[64];
  template <class Buffer>
  void start(tcp::socket& sock, Buffer b) {
    sock.async_read_some(b, [this](boost::system::error_code ec, std::size_t n) {
      done = read_result{true, n, ec, false};
      data.assign(buf, n);
    });
  }
  void start(tcp::socket& sock) { start(sock, recv_buffer(asio::buffer(buf))); }
};

// Runs `io` until `r` completes or 2 s pass.
bool run_until(asio::io_context& io, const async_read& r) {
  io.restart();
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (!r.done && std::chrono::steady_clock::now() < until) io.run_for(50ms);
  return r.done.has_value();
}

TEST(RecvBuffer, AReadAfterADrainingRead_GetsTheBytesThatComeLater) {
  socket_pair s;
  async_read first, second;
  first.start(s.reader);
  s.send("one");
  ASSERT_TRUE(run_until(s.io, first));
  EXPECT_EQ(first.data, "one");
  second.start(s.reader);  // the socket is drained: this read waits for the next edge
  s.io.restart();
  s.io.run_for(20ms);
  EXPECT_FALSE(second.done) << "completed with nothing sent";
  s.send("two");
  ASSERT_TRUE(run_until(s.io, second)) << "the bytes sent after a draining read were not read";
  EXPECT_FALSE(second.done->ec);
  EXPECT_EQ(second.data, "two");
}

TEST(RecvBuffer, AReadAfterADrainingRead_GetsTheEndThatComesLater) {
  socket_pair s;
  async_read first, second;
  first.start(s.reader);
  s.send("one");
  ASSERT_TRUE(run_until(s.io, first));
  second.start(s.reader);
  s.io.restart();
  s.io.run_for(20ms);
  s.end();
  ASSERT_TRUE(run_until(s.io, second));
  EXPECT_EQ(second.done->ec, asio::error::eof);
}

// A client that half-closes after its request: a read that waits, then the last bytes and the
// FIN in one epoll edge, which the read's completion spends. The next read (here a plain Asio
// read, as any other read on the socket may be) must see the end: nothing else will wake it.
TEST(RecvBuffer, AnEndThatCameWithTheLastBytes_IsSeenByTheNextRead) {
  socket_pair s;
  async_read first, watch;
  first.start(s.reader);  // nothing there yet: queued in the reactor
  s.io.restart();
  s.io.run_for(20ms);
  ASSERT_FALSE(first.done);
  s.send("answer");
  s.end();
  ASSERT_TRUE(s.wait_for(POLLIN | POLLRDHUP));  // both in before the reactor looks
  ASSERT_TRUE(run_until(s.io, first));
  EXPECT_EQ(first.data, "answer");
  watch.start(s.reader, asio::buffer(watch.buf, 1));
  ASSERT_TRUE(run_until(s.io, watch)) << "the end queued behind the last bytes was never read";
  EXPECT_EQ(watch.done->ec, asio::error::eof);
}

TEST(RecvBuffer, ABufferLargerThanTheBytes_ReadsThemAll_AndABufferSmallerReadsOnInPieces) {
  socket_pair s;
  s.send("0123456789");
  ASSERT_TRUE(s.wait_for(POLLIN));
  std::string got;
  for (int i = 0; i < 3 && got.size() < 10; ++i) {
    async_read r;
    r.start(s.reader, recv_buffer(asio::buffer(r.buf, 4)));
    ASSERT_TRUE(run_until(s.io, r));
    ASSERT_FALSE(r.done->ec);
    got += r.data;
  }
  EXPECT_EQ(got, "0123456789");
}

}  // namespace
}  // namespace ob::net
