#include "proxy/deadline.hpp"

#include <gtest/gtest.h>

#include <memory>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A connected pair of sockets on 127.0.0.1 and a deadline on the first.
struct pair_fixture {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  tcp::socket client{ioc};
  tcp::socket server{ioc};
  std::shared_ptr<int> owner = std::make_shared<int>(0);
  ob::proxy::deadline dl{ioc.get_executor()};

  pair_fixture() {
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
    dl.set_owner(owner);
  }

  // Starts a read on `server` and runs until it completes (bounded by the test's deadline).
  boost::system::error_code read_until_done() {
    char b[16];
    boost::system::error_code out;
    bool done = false;
    server.async_read_some(asio::buffer(b), [&](boost::system::error_code ec, std::size_t) {
      out = ec;
      done = true;
    });
    ioc.run_for(2s);
    EXPECT_TRUE(done);
    return out;
  }
};

TEST(Deadline, CancelOnExpiryLeavesTheSocketOpen) {
  pair_fixture f;
  f.dl.arm(20ms, &f.server, ob::proxy::deadline::on_expiry::cancel);
  auto ec = f.read_until_done();
  EXPECT_EQ(ec, asio::error::operation_aborted);
  EXPECT_TRUE(f.dl.expired());
  EXPECT_TRUE(f.server.is_open());  // an answer (a 408) can still be written
}

TEST(Deadline, CloseOnExpiryClosesTheSocket) {
  pair_fixture f;
  f.dl.arm(20ms, &f.server);
  f.read_until_done();
  EXPECT_TRUE(f.dl.expired());
  EXPECT_FALSE(f.server.is_open());
}

TEST(Deadline, AnAbsoluteDeadlineIsNotPushedBackByReArming) {
  pair_fixture f;
  auto until = std::chrono::steady_clock::now() + 30ms;
  auto t0 = std::chrono::steady_clock::now();
  // Re-armed for the same instant after a first read: still expires at `until`.
  f.dl.arm_until(until, &f.server, ob::proxy::deadline::on_expiry::cancel);
  f.dl.disarm();
  f.dl.arm_until(until, &f.server, ob::proxy::deadline::on_expiry::cancel);
  auto ec = f.read_until_done();
  EXPECT_EQ(ec, asio::error::operation_aborted);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST(Deadline, APassedDeadlineExpiresAtOnce) {
  pair_fixture f;
  f.dl.arm_until(std::chrono::steady_clock::now() - 1ms, &f.server,
                 ob::proxy::deadline::on_expiry::cancel);
  auto ec = f.read_until_done();
  EXPECT_EQ(ec, asio::error::operation_aborted);
  EXPECT_TRUE(f.dl.expired());
}

}  // namespace
