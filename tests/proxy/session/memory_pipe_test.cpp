// proxy::memory_pipe: the in-process duplex pipe between an HTTP/2 stream (near end) and the
// client_connection serving it (far end, through client_stream).
#include "proxy/memory_pipe.hpp"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>

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
  void take(std::string_view b) override { got.append(b); }
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

}  // namespace
}  // namespace ob::proxy
