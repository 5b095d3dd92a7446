// An in-process duplex byte pipe between an HTTP/2 stream (the near end,
// server/h2_connection.cpp) and the client_connection serving it over client_stream (the far
// end): no descriptor, no syscall, no epoll. The near end hands over the whole request at once
// (its end follows it); the far end's writes are taken by the near end as they are made.
//
// Every far-end operation completes through the executor, never inside the call that starts
// it. A write completes once the near end has taken its bytes and is not backlogged (its
// answer queue under the stream's high-water mark): the back-pressure a socket buffer gave.
// "Gone" (the stream was reset or its connection died: reset()) is the far end's client
// leaving: pending operations fail, the client watch fires. The far end's close() is the end
// of the answer for the near end.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

namespace ob::proxy {

class memory_pipe {
 public:
  using io_handler =
      boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;
  using wait_handler = boost::asio::any_completion_handler<void(boost::system::error_code)>;

  // What the near end does with the far end's writes and close.
  class near_end {
   public:
    // Bytes the far end wrote (called within its write's initiation).
    virtual void take(std::string_view bytes) = 0;
    // Whether a write must wait for the near end to drain (then it calls writable()).
    virtual bool backlogged() const = 0;
    // The far end closed: the answer ends here.
    virtual void far_closed() = 0;

   protected:
    ~near_end() = default;
  };

  explicit memory_pipe(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}
  memory_pipe(const memory_pipe&) = delete;
  memory_pipe& operator=(const memory_pipe&) = delete;

  // ---- near end
  void attach(near_end* n) { near_ = n; }
  // The request: all of it, then the end of input.
  void feed(std::string request);
  // The near end drained below its mark: a write waiting on it completes.
  void writable();
  // The stream was reset or its connection died: the far end's client is gone. Detaches the
  // near end (no call reaches it afterwards).
  void reset();

  // ---- far end (client_stream)
  const boost::asio::any_io_executor& get_executor() const { return ex_; }
  bool is_open() const { return !closed_; }
  bool gone() const { return gone_; }
  // Pending read and write fail with operation_aborted (a deadline's on_expiry::cancel).
  void cancel();
  // The far end is done: pending operations abort, later ones fail; the near end is told.
  void close();

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (closed_ || gone_ || off_ < in_.size() || in_end_) {
            std::size_t n = 0;
            auto ec = read_now(b, n);
            complete(io_handler(std::move(handler)), ec, n);
            return;
          }
          read_buf_ = first_buffer(b);
          read_.emplace(std::move(handler));
        },
        token, b);
  }

  template <class ConstBuffers, class Token>
  auto async_write(const ConstBuffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (closed_ || gone_ || !near_) {
            complete(io_handler(std::move(handler)), write_error(), 0);
            return;
          }
          std::size_t n = 0;
          for (auto it = boost::asio::buffer_sequence_begin(b);
               it != boost::asio::buffer_sequence_end(b); ++it) {
            boost::asio::const_buffer cb(*it);
            n += cb.size();
            if (near_ && cb.size()) near_->take({static_cast<const char*>(cb.data()), cb.size()});
          }
          if (near_ && near_->backlogged()) {
            written_ = n;
            write_.emplace(std::move(handler));
            return;
          }
          complete(io_handler(std::move(handler)), {}, n);
        },
        token, b);
  }

  // The client watch: completes with no error when the client is gone, operation_aborted
  // after cancel_wait_gone().
  template <class Token>
  auto async_wait_gone(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler) {
          if (gone_) {
            boost::asio::post(ex_, [h = wait_handler(std::move(handler))]() mutable {
              std::move(h)(boost::system::error_code());
            });
            return;
          }
          watch_.emplace(std::move(handler));
        },
        token);
  }
  void cancel_wait_gone();

 private:
  template <class MutableBuffers>
  static boost::asio::mutable_buffer first_buffer(const MutableBuffers& b) {
    for (auto it = boost::asio::buffer_sequence_begin(b); it != boost::asio::buffer_sequence_end(b);
         ++it) {
      boost::asio::mutable_buffer mb(*it);
      if (mb.size()) return mb;
    }
    return {};
  }
  template <class MutableBuffers>
  boost::system::error_code read_now(const MutableBuffers& b, std::size_t& n) {
    return read_into(first_buffer(b), n);
  }
  boost::system::error_code read_into(boost::asio::mutable_buffer b, std::size_t& n);
  boost::system::error_code write_error() const {
    if (closed_) return boost::asio::error::bad_descriptor;
    return boost::asio::error::broken_pipe;  // gone
  }
  void complete(io_handler h, boost::system::error_code ec, std::size_t n);
  void abort_pending(boost::system::error_code ec);

  boost::asio::any_io_executor ex_;
  near_end* near_ = nullptr;
  std::string in_;  // the request
  std::size_t off_ = 0;
  bool in_end_ = false;  // no byte follows in_
  bool closed_ = false;  // by the far end
  bool gone_ = false;    // reset by the near end
  std::optional<io_handler> read_, write_;
  boost::asio::mutable_buffer read_buf_;
  std::size_t written_ = 0;  // the size of the write waiting in write_
  std::optional<wait_handler> watch_;
};

}  // namespace ob::proxy
