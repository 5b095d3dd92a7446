// proxy::memory_pipe: the in-process duplex pipe between an HTTP/2 stream (near end) and the
// client_connection serving it (far end, through client_stream).
#include "proxy/memory_pipe.hpp"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "proxy/client_stream.hpp"
#include "proxy/deadline.hpp"

namespace ob::proxy {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

struct recorder final : memory_pipe::near_end {
  std::string got;
  bool backlog = false;
  int closes = 0;
  std::size_t drained_bytes = 0;
  void take(std::string_view b) override { got.append(b); }
  void drained(std::size_t n) override { drained_bytes += n; }
  bool backlogged() const override { return backlog; }
  void far_closed() override { ++closes; }
};

struct result {
  bool done = false;
  error_code ec;
  std::size_t n = 0;
  auto handler() {
    return [this](error_code e, std::size_t k) {
      done = true;
      ec = e;
      n = k;
    };
  }
};

class MemoryPipe : public ::testing::Test {
 protected:
  asio::io_context io;
  std::shared_ptr<memory_pipe> pipe = std::make_shared<memory_pipe>(io.get_executor());
  recorder near;
  void SetUp() override { pipe->attach(&near); }
};

TEST_F(MemoryPipe, ReadsTheRequestThenEndOfInputNeverInline) {
  pipe->feed("GET / HTTP/1.1\r\n\r\n");
  pipe->feed_end();
  char buf[8];
  result r;
  pipe->async_read_some(asio::buffer(buf), r.handler());
  EXPECT_FALSE(r.done) << "completed inside the initiating call";
  io.run();
  io.restart();
  ASSERT_TRUE(r.done);
  EXPECT_FALSE(r.ec);
  EXPECT_EQ(std::string(buf, r.n), "GET / HT");
  std::string rest;
  for (int i = 0; i < 10; ++i) {
    result more;
    pipe->async_read_some(asio::buffer(buf), more.handler());
    io.run();
    io.restart();
    ASSERT_TRUE(more.done);
    if (more.ec) {
      EXPECT_EQ(more.ec, asio::error::eof);
      break;
    }
    rest.append(buf, more.n);
  }
  EXPECT_EQ(rest, "TP/1.1\r\n\r\n");
}

TEST_F(MemoryPipe, AReadWaitingForTheRequestCompletesWhenItIsFed) {
  char buf[64];
  result r;
  pipe->async_read_some(asio::buffer(buf), r.handler());
  io.run();
  io.restart();
  EXPECT_FALSE(r.done);
  pipe->feed("abc");
  EXPECT_FALSE(r.done);
  io.run();
  ASSERT_TRUE(r.done);
  EXPECT_EQ(std::string(buf, r.n), "abc");
}

TEST_F(MemoryPipe, AWriteIsTakenAndWaitsWhileTheNearEndIsBacklogged) {
  std::string a = "HTTP/1.1 200 OK\r\n", b = "\r\n";
  std::array<asio::const_buffer, 2> bufs{asio::buffer(a), asio::buffer(b)};
  near.backlog = true;
  result w;
  pipe->async_write(bufs, w.handler());
  EXPECT_EQ(near.got, a + b) << "the bytes are taken at once";
  io.run();
  io.restart();
  EXPECT_FALSE(w.done) << "back-pressure: waits for the near end";
  near.backlog = false;
  pipe->writable();
  EXPECT_FALSE(w.done);
  io.run();
  ASSERT_TRUE(w.done);
  EXPECT_FALSE(w.ec);
  EXPECT_EQ(w.n, a.size() + b.size());
}

TEST_F(MemoryPipe, ResetFailsPendingOperationsAndFiresTheWatch) {
  near.backlog = true;
  result w, r;
  pipe->async_write(asio::buffer("x", 1), w.handler());
  bool gone = false;
  pipe->async_wait_gone([&](error_code ec) { gone = !ec; });
  char buf[4];
  pipe->async_read_some(asio::buffer(buf), r.handler());
  pipe->reset();
  io.run();
  io.restart();
  EXPECT_TRUE(gone);
  EXPECT_EQ(r.ec, asio::error::connection_reset);
  EXPECT_TRUE(w.ec);
  // Detached: nothing reaches the near end after a reset.
  result later;
  pipe->async_write(asio::buffer("y", 1), later.handler());
  io.run();
  EXPECT_TRUE(later.ec);
  EXPECT_EQ(near.got, "x");
  EXPECT_EQ(near.closes, 0);
}

TEST_F(MemoryPipe, TakeOverIsAResetThatTheClientStreamReports) {
  client_stream stream(pipe, io.get_executor());
  EXPECT_FALSE(stream.taken_over());
  char buf[4];
  result r;
  pipe->async_read_some(asio::buffer(buf), r.handler());
  pipe->take_over();
  io.run();
  EXPECT_EQ(r.ec, asio::error::connection_reset);  // the far end sees its client leave
  EXPECT_TRUE(pipe->gone());
  EXPECT_TRUE(stream.taken_over());
  // A plain reset is a client that left: the far end records its request as usual.
  auto other = std::make_shared<memory_pipe>(io.get_executor());
  client_stream plain(other, io.get_executor());
  other->reset();
  EXPECT_FALSE(plain.taken_over());
}

TEST_F(MemoryPipe, CancelledWatchAndFarCloseTellTheNearEnd) {
  bool aborted = false;
  pipe->async_wait_gone([&](error_code ec) { aborted = ec == asio::error::operation_aborted; });
  pipe->cancel_wait_gone();
  io.run();
  io.restart();
  EXPECT_TRUE(aborted);
  pipe->close();
  EXPECT_EQ(near.closes, 1);
  pipe->close();
  EXPECT_EQ(near.closes, 1);
  EXPECT_FALSE(pipe->is_open());
}

TEST_F(MemoryPipe, ADeadlineOnAPipeClientStreamCancelsItsRead) {
  client_stream s(pipe, io.get_executor());
  auto owner = std::make_shared<int>(0);
  deadline dl(io.get_executor());
  dl.set_owner(owner);
  char buf[4];
  result r;
  dl.arm(std::chrono::milliseconds(10), &s, deadline::on_expiry::cancel);
  s.async_read_some(asio::buffer(buf), r.handler());
  io.run_for(std::chrono::seconds(2));
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.ec, asio::error::operation_aborted);
  EXPECT_TRUE(dl.expired());
  EXPECT_TRUE(s.is_open()) << "cancel, not close: a 408 can still be written";
  dl.stop();
}

// Reads until eof (or `max` reads), each into a buffer of `size` bytes.
std::string read_all(asio::io_context& io, memory_pipe& pipe, std::size_t size, int max = 10000) {
  std::string all;
  std::vector<char> buf(size);
  for (int i = 0; i < max; ++i) {
    result r;
    pipe.async_read_some(asio::buffer(buf), r.handler());
    io.run();
    io.restart();
    if (!r.done) {  // waits for more: withdrawn (it points at this frame's buffer)
      pipe.cancel();
      io.run();
      io.restart();
      break;
    }
    if (r.ec) break;
    all.append(buf.data(), r.n);
  }
  return all;
}

TEST_F(MemoryPipe, PiecesFedAreReadAsTheyComeAndAReadWaitsForMore) {
  pipe->feed("POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\n");
  EXPECT_EQ(read_all(io, *pipe, 64), "POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\n");
  char buf[64];
  result r;
  pipe->async_read_some(asio::buffer(buf), r.handler());
  io.run();
  io.restart();
  EXPECT_FALSE(r.done) << "nothing fed yet: the read waits";
  pipe->feed("abc");
  io.run();
  io.restart();
  ASSERT_TRUE(r.done);
  EXPECT_FALSE(r.ec);
  EXPECT_EQ(std::string(buf, r.n), "abc");
  pipe->feed("de");
  pipe->feed("f");
  pipe->feed_end();
  result all;
  pipe->async_read_some(asio::buffer(buf), all.handler());
  io.run();
  io.restart();
  EXPECT_EQ(std::string(buf, all.n), "def");
  result end;
  pipe->async_read_some(asio::buffer(buf), end.handler());
  io.run();
  EXPECT_EQ(end.ec, asio::error::eof);
  EXPECT_EQ(near.drained_bytes, 38u + 6u) << "every byte fed is reported read once";
}

TEST_F(MemoryPipe, TheNearEndIsToldOnlyWhatWasRead) {
  pipe->feed(std::string(1000, 'x'));
  char buf[100];
  result r;
  pipe->async_read_some(asio::buffer(buf), r.handler());
  io.run();
  io.restart();
  EXPECT_EQ(r.n, 100u);
  EXPECT_EQ(near.drained_bytes, 100u);
  EXPECT_EQ(pipe->unread(), 900u);
  // A far end that never catches up: what was read is dropped as more comes, not kept.
  for (int i = 0; i < 100; ++i) {
    pipe->feed(std::string(100, 'y'));
    result more;
    pipe->async_read_some(asio::buffer(buf), more.handler());
    io.run();
    io.restart();
  }
  EXPECT_EQ(pipe->unread(), 900u);
  EXPECT_EQ(near.drained_bytes, 10100u);
  pipe->close();
  EXPECT_EQ(near.closes, 1);
}

TEST_F(MemoryPipe, ABodyOfUnknownLengthIsReadInChunkFraming) {
  pipe->feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  pipe->frame_chunks();
  pipe->feed("hello");
  EXPECT_EQ(read_all(io, *pipe, 4096),
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
  pipe->feed(std::string(300, 'z'));
  pipe->feed_end();
  EXPECT_EQ(read_all(io, *pipe, 4096), "12c\r\n" + std::string(300, 'z') + "\r\n0\r\n\r\n");
  EXPECT_EQ(near.drained_bytes, 47u + 305u) << "the framing is not counted";
}

TEST_F(MemoryPipe, ChunkFramingSurvivesReadsOfAnySize) {
  // The head and the framing split over reads of 1..7 bytes: the same bytes as one large read.
  for (std::size_t size : {1, 2, 3, 7, 25, 64}) {
    auto p = std::make_shared<memory_pipe>(io.get_executor());
    recorder n;
    p->attach(&n);
    p->feed("H\r\n\r\n");
    p->frame_chunks();
    std::string body;
    std::string framed;
    for (int i = 0; i < 20; ++i) {
      std::string piece(static_cast<std::size_t>(i * 7 + 1), static_cast<char>('a' + i));
      body += piece;
      p->feed(piece);
      framed += read_all(io, *p, size);
    }
    p->feed_end();
    framed += read_all(io, *p, size);
    // De-chunk what was read.
    ASSERT_EQ(framed.substr(0, 5), "H\r\n\r\n") << size;
    std::string got;
    std::size_t pos = 5;
    for (int guard = 0; guard < 10000; ++guard) {
      auto eol = framed.find("\r\n", pos);
      ASSERT_NE(eol, std::string::npos) << size;
      std::size_t len = std::stoul(framed.substr(pos, eol - pos), nullptr, 16);
      pos = eol + 2;
      if (len == 0) {
        EXPECT_EQ(framed.substr(pos), "\r\n") << size;
        break;
      }
      got += framed.substr(pos, len);
      pos += len;
      ASSERT_EQ(framed.substr(pos, 2), "\r\n") << size;
      pos += 2;
    }
    EXPECT_EQ(got, body) << size;
    EXPECT_EQ(n.drained_bytes, 5 + body.size()) << size;
  }
}

TEST_F(MemoryPipe, AResetOrCloseDropsWhatWasNotRead) {
  pipe->feed("abc");
  pipe->reset();
  char buf[8];
  result r;
  pipe->async_read_some(asio::buffer(buf), r.handler());
  io.run();
  EXPECT_EQ(r.ec, asio::error::connection_reset);
  pipe->feed("more");  // after the reset: dropped, no call reaches the near end
  EXPECT_EQ(near.drained_bytes, 0u);
}

}  // namespace
}  // namespace ob::proxy
