// An in-process duplex byte pipe between an HTTP/2 stream (the near end,
// server/h2_connection.cpp) and the client_connection serving it over client_stream (the far
// end): no descriptor, no syscall, no epoll. The near end feeds the request in pieces as they
// arrive (feed, then feed_end); a far-end read takes what is there, or waits for more, and
// tells the near end how many of the fed bytes it took (drained: the HTTP/2 stream's flow
// control gives the client that much window back). A body of unknown length reaches the far
// end in chunked framing made by the reads themselves (frame_chunks): one chunk per read of
// what is there, so the near end counts exactly the body bytes read, framing aside. The far
// end's writes are taken by the near end as they are made.
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
    // The far end closed: the answer ends here. Bytes fed and not read are dropped.
    virtual void far_closed() = 0;
    // The far end read `n` of the bytes fed (not counting chunk framing). Called within its
    // read, or within feed()/feed_end() when a read was waiting.
    virtual void drained(std::size_t n) = 0;

   protected:
    ~near_end() = default;
  };

  explicit memory_pipe(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}
  memory_pipe(const memory_pipe&) = delete;
  memory_pipe& operator=(const memory_pipe&) = delete;

  // ---- near end
  void attach(near_end* n) { near_ = n; }
  // More of the request (appended to what the far end has not read yet).
  void feed(std::string_view bytes);
  // The same, taking the string's buffer when nothing is waiting to be read (the head).
  void feed(std::string&& bytes);
  void feed(const char* bytes) { feed(std::string_view(bytes)); }
  // From now on the bytes fed are a body of unknown length: reads carry them as chunks
  // (Transfer-Encoding: chunked), and the end of input as the last chunk. Once, after the head.
  void frame_chunks();
  // No byte follows: once what was fed is read, reads end (eof).
  void feed_end();
  // Fed bytes the far end has not read yet.
  std::size_t unread() const { return in_.size() - off_; }
  // The near end drained below its mark: a write waiting on it completes.
  void writable();
  // The stream was reset or its connection died: the far end's client is gone. Detaches the
  // near end (no call reaches it afterwards).
  void reset();
  // reset(), and the near end answers the request itself (refused before its answer began):
  // the far end does not record it (no access line, no request metric), so one request makes
  // one record.
  void take_over() {
    taken_over_ = true;
    reset();
  }

  // ---- far end (client_stream)
  const boost::asio::any_io_executor& get_executor() const { return ex_; }
  bool is_open() const { return !closed_; }
  bool gone() const { return gone_; }
  bool taken_over() const { return taken_over_; }
  // Pending read and write fail with operation_aborted (a deadline's on_expiry::cancel).
  void cancel();
  // The far end is done: pending operations abort, later ones fail; the near end is told.
  void close();

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (closed_ || gone_ || off_ < in_.size() || frame_off_ < frame_len_ || in_end_) {
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
  // A chunked body's read: the framing around what is there (see frame_chunks).
  std::size_t read_framed(char* out, std::size_t room, std::size_t& body);
  // Completes a waiting read with what is there now.
  void wake_reader();
  boost::system::error_code write_error() const {
    if (closed_) return boost::asio::error::bad_descriptor;
    return boost::asio::error::broken_pipe;  // gone
  }
  void complete(io_handler h, boost::system::error_code ec, std::size_t n);
  void abort_pending(boost::system::error_code ec);

  boost::asio::any_io_executor ex_;
  near_end* near_ = nullptr;
  std::string in_;  // the request's bytes fed and not read yet (from off_)
  std::size_t off_ = 0;
  bool in_end_ = false;  // no byte follows in_
  // Chunked framing (frame_chunks): in_ up to raw_end_ is the head, sent as it is; after it,
  // body bytes in chunks. frame_ holds framing not read yet ("size\r\n", "\r\n" or the last
  // chunk), chunk_left_ the body bytes the current chunk still carries.
  bool framed_ = false, last_sent_ = false;
  std::size_t raw_end_ = 0, chunk_left_ = 0;
  char frame_[24] = {};
  std::size_t frame_off_ = 0, frame_len_ = 0;
  bool closed_ = false;      // by the far end
  bool gone_ = false;        // reset by the near end
  bool taken_over_ = false;  // and answered there (take_over)
  std::optional<io_handler> read_, write_;
  boost::asio::mutable_buffer read_buf_;
  std::size_t written_ = 0;  // the size of the write waiting in write_
  std::optional<wait_handler> watch_;
};

}  // namespace ob::proxy
