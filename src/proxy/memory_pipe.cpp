#include "proxy/memory_pipe.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace ob::proxy {

namespace asio = boost::asio;
using boost::system::error_code;

void memory_pipe::complete(io_handler h, error_code ec, std::size_t n) {
  asio::post(ex_, [h = std::move(h), ec, n]() mutable { std::move(h)(ec, n); });
}

error_code memory_pipe::read_into(asio::mutable_buffer b, std::size_t& n) {
  n = 0;
  if (closed_) return asio::error::bad_descriptor;
  if (gone_) return asio::error::connection_reset;
  if (off_ < in_.size()) {
    n = std::min(b.size(), in_.size() - off_);
    std::memcpy(b.data(), in_.data() + off_, n);
    off_ += n;
    if (off_ == in_.size()) {
      std::string().swap(in_);  // the request is not kept for the answer's lifetime
      off_ = 0;
    }
    return {};
  }
  return asio::error::eof;
}

void memory_pipe::feed(std::string request) {
  in_ = std::move(request);
  off_ = 0;
  in_end_ = true;
  if (read_) {
    std::size_t n = 0;
    auto ec = read_into(read_buf_, n);
    auto h = std::move(*read_);
    read_.reset();
    complete(std::move(h), ec, n);
  }
}

void memory_pipe::writable() {
  if (!write_) return;
  auto h = std::move(*write_);
  write_.reset();
  complete(std::move(h), {}, written_);
}

void memory_pipe::abort_pending(error_code ec) {
  if (read_) {
    auto h = std::move(*read_);
    read_.reset();
    complete(std::move(h), ec, 0);
  }
  if (write_) {
    auto h = std::move(*write_);
    write_.reset();
    complete(std::move(h), ec, 0);
  }
}

void memory_pipe::reset() {
  near_ = nullptr;
  if (gone_) return;
  gone_ = true;
  abort_pending(asio::error::connection_reset);
  if (watch_) {
    auto h = std::move(*watch_);
    watch_.reset();
    asio::post(ex_, [h = std::move(h)]() mutable { std::move(h)(error_code()); });
  }
}

void memory_pipe::cancel() {
  abort_pending(asio::error::operation_aborted);
}

void memory_pipe::cancel_wait_gone() {
  if (!watch_) return;
  auto h = std::move(*watch_);
  watch_.reset();
  asio::post(ex_, [h = std::move(h)]() mutable { std::move(h)(asio::error::operation_aborted); });
}

void memory_pipe::close() {
  if (closed_) return;
  closed_ = true;
  abort_pending(asio::error::operation_aborted);
  cancel_wait_gone();
  std::string().swap(in_);
  if (auto* n = std::exchange(near_, nullptr)) n->far_closed();
}

}  // namespace ob::proxy
